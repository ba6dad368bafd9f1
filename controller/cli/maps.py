"""`boilerctl maps show|validate`: a device map as a table (or JSON), and map files checked.

`show` reads a map file, or with --site the map of one of the site's devices, whose address it
shows too. `validate` checks map files as check-config does; with --site it loads the site as
well, so its devices' maps must hold the points (and the rw access) the roles they play need.
Both read files only: no device is contacted.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from controller.cli.check_config import summary
from controller.config.loader import ConfigError, LoadedSite, check_files, load_file, load_site
from controller.config.maps import DataType, ModbusMap, ModbusPoint, OpcUaMap, OpcUaPoint
from controller.config.site import ModbusDevice, OpcUaDevice

T = TypeVar("T")
EXIT_ERROR = 2
# Off a terminal a table is as wide as its content needs, up to this: never wrapped to 80 columns.
MAX_WIDTH = 1000


@dataclass(frozen=True)
class _Shown:
    path: Path  # the map file
    device_map: ModbusMap | OpcUaMap
    device: ModbusDevice | OpcUaDevice | None  # with --site
    site: Path | None


def show(
    target: Annotated[
        str,
        typer.Argument(
            metavar="MAP_OR_DEVICE",
            help="A map file (plc_maps/*.yaml), or with --site one of the site's device ids.",
            show_default=False,
        ),
    ],
    site: Annotated[
        Path | None,
        typer.Option("--site", help="Site file: MAP_OR_DEVICE is one of its device ids."),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON document (the map as loaded), for scripts.")
    ] = False,
) -> None:
    """Show a device map: every point's address, type, scaling, unit, access, limits, expected
    range (commissioning's plausibility) and lease."""
    shown = _of_device(site, target) if site is not None else _of_file(Path(target))
    if as_json:
        typer.echo(json.dumps(_document(shown), indent=2, ensure_ascii=False))
        return
    for line in _header(shown):
        typer.echo(line)
    device_map = shown.device_map
    if isinstance(device_map, ModbusMap):
        _print_table(_modbus_table(device_map))
    else:
        _print_table(_opcua_table(device_map))


def validate(
    files: Annotated[
        list[Path],
        typer.Argument(metavar="FILE", help="Device maps (plc_maps/*.yaml).", show_default=False),
    ],
    site: Annotated[
        Path | None,
        typer.Option(
            "--site",
            help="Also this site file: its devices' maps must have what their roles need.",
        ),
    ] = None,
) -> None:
    """Check device maps: every problem is printed as FILE:LINE: FIELD: MESSAGE.

    Exit code 0 when all files are valid, 2 when any is not.
    """
    paths = [*files, site] if site is not None else files
    missing = [path for path in paths if not path.is_file()]
    for path in missing:
        typer.echo(f"maps validate: {_no_file(path)}", err=True)
    issues = check_files(path for path in paths if path not in missing)
    for issue in issues:
        typer.echo(str(issue), err=True)
    if missing or issues:
        raise typer.Exit(EXIT_ERROR)
    for path in paths:
        typer.echo(f"ok {path} ({summary(load_file(path))})")


# ---------------------------------------------------------------- what to show


def _of_file(path: Path) -> _Shown:
    if not path.is_file():
        _fail(_no_file(path))
    loaded = _loaded(lambda: load_file(path))
    if isinstance(loaded, LoadedSite):
        _fail(
            f"{path} is a site file: give --site {path} and one of its devices: "
            f"{', '.join(d.id for d in loaded.config.devices)}"
        )
    return _Shown(path, loaded, None, None)


def _of_device(site_path: Path, device_id: str) -> _Shown:
    site = _loaded(lambda: load_site(site_path))
    devices = {device.id: device for device in site.config.devices}
    device = devices.get(device_id)
    if device is None:
        _fail(f"no device {device_id!r} in {site_path}; its devices: {', '.join(devices)}")
    return _Shown(site.map_file(device_id), site.device_map(device_id), device, site_path)


def _loaded(load: Callable[[], T]) -> T:
    """`load()`, or its issues on stderr and exit 2."""
    try:
        return load()
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_ERROR) from None


def _no_file(path: Path) -> str:
    folder = path.parent
    if not folder.is_dir():
        return f"no file {path}: there is no directory {folder}"
    maps = sorted(p.name for p in folder.glob("*.yaml"))
    return f"no file {path}; YAML files in {folder}: {', '.join(maps) or 'none'}"


def _fail(message: str) -> NoReturn:
    typer.echo(f"maps show: {message}", err=True)
    raise typer.Exit(EXIT_ERROR)


# ---------------------------------------------------------------- text


def _header(shown: _Shown) -> list[str]:
    lines = []
    device = shown.device
    if isinstance(device, ModbusDevice):
        lines.append(
            f"device {device.id} of {shown.site}: modbus {device.host}:{device.port} "
            f"unit {device.unit_id}"
        )
    elif isinstance(device, OpcUaDevice):
        security = f", security {device.security.mode}" if device.security is not None else ""
        lines.append(f"device {device.id} of {shown.site}: opcua {device.endpoint}{security}")
    device_map = shown.device_map
    about = f" ({device_map.description})" if device_map.description else ""
    if isinstance(device_map, ModbusMap):
        layout = f"{device_map.addressing} addresses, byte order {device_map.order}"
    else:
        layout = f"namespace {device_map.namespace}"
    lines.append(
        f"map {shown.path}: {device_map.protocol} {device_map.device_type}{about}, {layout}, "
        f"{len(device_map.points)} points"
    )
    return lines


def _modbus_table(device_map: ModbusMap) -> Table:
    table = _table("table", "address", "type", "scale")
    for point in device_map.points:
        _add_row(table, point, point.table, point.address, _modbus_type(point), _scale(point))
    return table


def _opcua_table(device_map: OpcUaMap) -> Table:
    table = _table("node", "type")
    for point in device_map.points:
        node = "/".join(point.browse_path) if point.browse_path is not None else point.node_id
        _add_row(table, point, node, point.type)
    return table


def _table(*location: str) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    table.add_column("id", no_wrap=True)
    table.add_column("description")
    for name in location:
        table.add_column(name, no_wrap=True)
    for name in ("unit", "access", "limits", "expect", "lease"):
        table.add_column(name, no_wrap=True)
    return table


def _add_row(table: Table, point: ModbusPoint | OpcUaPoint, *location: object) -> None:
    limits = f"{point.limits.min:g} .. {point.limits.max:g}" if point.limits is not None else ""
    expect = f"{point.expect.min:g} .. {point.expect.max:g}" if point.expect is not None else ""
    lease = ""
    if point.lease and point.lease_timeout is not None:
        lease = f"yes ({point.lease_timeout:g} s)"
    cells = (
        point.id,
        point.description,
        *location,
        point.unit,
        point.access,
        limits,
        expect,
        lease,
    )
    table.add_row(*(Text(str(cell)) for cell in cells))  # Text: no rich markup in descriptions


def _modbus_type(point: ModbusPoint) -> str:
    if point.type is DataType.BIT:
        return f"bit {point.bit}"
    kind = f"string ({point.length} registers)" if point.type is DataType.STRING else point.type
    return f"{kind} {point.order}" if point.order is not None else str(kind)


def _scale(point: ModbusPoint) -> str:
    if point.type in (DataType.BOOL, DataType.BIT, DataType.STRING):
        return ""
    return f"{point.scale:g}" + (f" {point.offset:+g}" if point.offset else "")


def _print_table(table: Table) -> None:
    console = Console(highlight=False)
    if not console.is_terminal:  # a pipe or a file: as wide as the content, never wrapped
        natural = console.measure(table, options=console.options.update_width(MAX_WIDTH))
        console = Console(highlight=False, width=natural.maximum)
    console.print(table)


# ---------------------------------------------------------------- JSON


def _document(shown: _Shown) -> dict[str, Any]:
    """The map as loaded (every key, defaults filled), its file, and the device when --site."""
    return {
        "file": str(shown.path),
        "device": _device_json(shown.device) if shown.device is not None else None,
        "map": shown.device_map.model_dump(mode="json"),
    }


def _device_json(device: ModbusDevice | OpcUaDevice) -> dict[str, Any]:
    if isinstance(device, ModbusDevice):
        address: dict[str, Any] = {
            "host": device.host,
            "port": device.port,
            "unit_id": device.unit_id,
        }
    else:
        address = {"endpoint": device.endpoint}
    return {"id": device.id, "protocol": device.protocol, "map": device.map, **address}

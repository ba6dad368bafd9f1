"""`boilerctl run`: the controller daemon of one site, until SIGINT or SIGTERM."""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path
from typing import Annotated

import typer

from controller.config.loader import ConfigError, LoadedSite, load_site
from controller.config.site import ModbusDevice, OpcUaDevice
from controller.logs import LEVELS, configure_logging

# Where a device is reached instead of the site file's (run, commission).
AddressOption = Annotated[
    list[str] | None,
    typer.Option(
        "--address",
        metavar="DEVICE=HOST:PORT",
        help="Reach a Modbus device at another address than the site file's (repeatable).",
    ),
]
EndpointOption = Annotated[
    list[str] | None,
    typer.Option(
        "--endpoint",
        metavar="DEVICE=URL",
        help="Reach an OPC-UA device at another endpoint than the site file's (repeatable).",
    ),
]

EXIT_CONFIG = 2
_PROTOCOL = {ModbusDevice: "Modbus", OpcUaDevice: "OPC-UA"}


def run(
    site: Annotated[Path, typer.Option("--site", help="Site file (sites/*.yaml).")],
    read_only: Annotated[
        bool,
        typer.Option(
            "--read-only", help="Commissioning: read and compute, log each write, send none."
        ),
    ] = False,
    log_level: Annotated[
        str | None,
        typer.Option("--log-level", help=f"One of {', '.join(LEVELS)} (overrides the global one)."),
    ] = None,
    address: AddressOption = None,
    endpoint: EndpointOption = None,
    speed: Annotated[
        float,
        typer.Option(
            "--speed",
            min=0.001,
            help="Plant seconds per second: only against a simulated plant in accelerated time "
            "(`boilerctl sim serve --speed N`); a real plant runs at 1.",
        ),
    ] = 1.0,
) -> None:
    """Run the supervisory controller of a site until Ctrl-C or SIGTERM.

    Exit code 2 when the site file (or an override) is invalid; the PLCs' lease fallback takes
    over when the daemon stops.
    """
    if log_level is not None:
        if log_level not in LEVELS:
            raise typer.BadParameter(f"one of {', '.join(LEVELS)}", param_hint="--log-level")
        configure_logging(log_level)
    try:
        loaded = load_site(site)
        addresses = parse_addresses(loaded, address or [])
        endpoints = parse_endpoints(loaded, endpoint or [])
    except ConfigError as error:
        for issue in error.issues:
            typer.echo(str(issue), err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except ValueError as error:
        typer.echo(f"run: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    asyncio.run(_run(loaded, read_only, addresses, endpoints, speed))


def parse_addresses(site: LoadedSite, values: list[str]) -> dict[str, tuple[str, int]]:
    """{device: (host, port)} from DEVICE=HOST:PORT; ValueError names the bad one."""
    parsed: dict[str, tuple[str, int]] = {}
    for value in values:
        device, target = _split(site, value, ModbusDevice, "--address", "DEVICE=HOST:PORT")
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"--address {value}: expected DEVICE=HOST:PORT")
        parsed[device] = (host, int(port))
    return parsed


def parse_endpoints(site: LoadedSite, values: list[str]) -> dict[str, str]:
    """{device: URL} from DEVICE=opc.tcp://HOST:PORT[/PATH]; ValueError names the bad one."""
    parsed: dict[str, str] = {}
    for value in values:
        device, url = _split(site, value, OpcUaDevice, "--endpoint", "DEVICE=opc.tcp://HOST:PORT")
        if not url.startswith("opc.tcp://"):
            raise ValueError(f"--endpoint {value}: expected DEVICE=opc.tcp://HOST:PORT")
        parsed[device] = url
    return parsed


def _split(
    site: LoadedSite,
    value: str,
    kind: type[ModbusDevice] | type[OpcUaDevice],
    option: str,
    form: str,
) -> tuple[str, str]:
    """(device, target) of DEVICE=TARGET, the device being one of `kind` in the site."""
    device, sep, target = value.partition("=")
    if not sep or not device or not target:
        raise ValueError(f"{option} {value}: expected {form}")
    known = [d.id for d in site.config.devices if isinstance(d, kind)]
    if device not in known:
        raise ValueError(
            f"{option} {value}: no {_PROTOCOL[kind]} device {device!r} "
            f"in {site.path} (it has {', '.join(known)})"
        )
    return device, target


async def _run(
    site: LoadedSite,
    read_only: bool,
    addresses: dict[str, tuple[str, int]],
    endpoints: dict[str, str],
    speed: float = 1.0,
) -> None:
    from controller.api.endpoint import ApiAddressError, TokenFileError
    from controller.daemon import Daemon
    from controller.durable_file import FileBusyError
    from controller.fieldbus.opcua_security import OpcUaSecurityError
    from controller.historian.targets import SecretError

    try:
        daemon = Daemon(
            site, read_only=read_only, addresses=addresses, endpoints=endpoints, time_scale=speed
        )
    except SecretError as error:
        typer.echo(f"run: {site.path}: historian: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        await daemon.run(stop)
    # certificate files; a second daemon; the API's token or address
    except (OpcUaSecurityError, FileBusyError, TokenFileError, ApiAddressError) as error:
        typer.echo(f"run: {error}", err=True)
        raise typer.Exit(EXIT_CONFIG) from None

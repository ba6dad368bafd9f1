"""Load and check device maps (plc_maps/*.yaml) and site files (sites/*.yaml).

Every problem becomes a ConfigIssue naming the file, the line and the field. ruamel.yaml's
round-trip loader keeps the line of every key and list item; pydantic's errors are mapped back onto
those lines by walking their location through the YAML tree. Checks that span files or entries (a
device's map, a caisson's devices, duplicate addresses) are done here, once the models validate.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Hashable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Final, Generic, Literal, TypeVar, Union, get_args, get_origin

from pydantic import BaseModel, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.scalarbool import ScalarBoolean

from controller.alarms.model import Priority
from controller.config.maps import (
    POINT_ID_PATTERN,
    DataType,
    DeviceMap,
    FieldError,
    ModbusMap,
    ModbusPoint,
    OpcUaMap,
    OpcUaPoint,
)
from controller.config.roles import CAISSON_SKID, COMPUTE_MANAGER, HEAT_METER, PLANT_SKID, Role
from controller.config.site import (
    ENDPOINT_PATTERN,
    ID_PATTERN,
    PLANT_DEVICES,
    AlarmSpec,
    ModbusDevice,
    OpcUaDevice,
    SiteConfig,
    is_controller_alarm_name,
)

T = TypeVar("T")
M = TypeVar("M", bound=BaseModel)
E = TypeVar("E")
Loc = tuple[str | int, ...]

# The keys that tag the members of the models' discriminated unions (devices and maps by
# protocol; scenario events and weather by kind).
_DISCRIMINATORS: Final = ("protocol", "kind")
_PATTERN_MEANING: Final = {
    ID_PATTERN: "an id: lower-case letters, digits, '-' and '_', starting with a letter",
    POINT_ID_PATTERN: "a point id: lower-case letters, digits and '_', starting with a letter",
    ENDPOINT_PATTERN: "an OPC-UA endpoint like opc.tcp://192.0.2.10:4840",
}


@dataclass(frozen=True)
class ConfigIssue:
    path: Path
    line: int  # 1-based; 0 when the file could not be read at all
    field: str  # e.g. "caissons[1].skid"; empty when the issue concerns the whole file
    message: str

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}:"
        return f"{where} {self.field}: {self.message}" if self.field else f"{where} {self.message}"


class ConfigError(Exception):
    def __init__(self, issues: list[ConfigIssue]) -> None:
        super().__init__("\n".join(str(issue) for issue in issues))
        self.issues = issues


@dataclass(frozen=True)
class LoadedSite:
    path: Path
    config: SiteConfig
    maps: dict[str, ModbusMap | OpcUaMap]  # by map name, as the devices' `map` write it

    def device_map(self, device_id: str) -> ModbusMap | OpcUaMap:
        return self.maps[self.config.device(device_id).map]

    def map_file(self, device_id: str) -> Path:
        """The file of the device's map (KeyError for an unknown device)."""
        return map_file(self.path, self.config, self.config.device(device_id).map)


@dataclass(frozen=True)
class _Schema(Generic[T]):
    annotation: Any  # walked to suggest the keys a mapping may hold
    adapter: TypeAdapter[T]


_MAP_SCHEMA: Final = _Schema[ModbusMap | OpcUaMap](DeviceMap, TypeAdapter(DeviceMap))
_SITE_SCHEMA: Final = _Schema[SiteConfig](SiteConfig, TypeAdapter(SiteConfig))


def load_map(path: Path) -> ModbusMap | OpcUaMap:
    return _validate(path, _parse(path), _MAP_SCHEMA)


def load_site(path: Path) -> LoadedSite:
    return _load_site(path, _parse(path))


def load_document(path: Path, model: type[M]) -> tuple[M, Report]:
    """Any YAML file validated as `model`, and a Report to place the caller's own cross-checks."""
    tree = _parse(path)
    return _validate(path, tree, _Schema[M](model, TypeAdapter(model))), Report(path, tree)


def load_file(path: Path) -> LoadedSite | ModbusMap | OpcUaMap:
    """A site (top-level key `site`) or a device map (top-level key `points`)."""
    tree = _parse(path)
    if "site" in tree:
        return _load_site(path, tree)
    if "points" in tree:
        return _validate(path, tree, _MAP_SCHEMA)
    raise _file_error(
        path, 1, "neither a site (no top-level 'site:') nor a device map (no top-level 'points:')"
    )


def check_files(paths: Iterable[Path]) -> list[ConfigIssue]:
    """Every issue of every file, once (a site also reports the issues of the maps it uses)."""
    issues: list[ConfigIssue] = []
    for path in paths:
        try:
            load_file(path)
        except ConfigError as error:
            issues.extend(error.issues)
    return list(dict.fromkeys(issues))


# ---------------------------------------------------------------- reading and validating


def _file_error(path: Path, line: int, message: str) -> ConfigError:
    return ConfigError([ConfigIssue(path, line, "", message)])


def _parse(path: Path) -> CommentedMap:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise _file_error(path, 0, f"cannot read the file: {error.strerror or error}") from None
    except UnicodeDecodeError as error:
        line = error.object[: error.start].count(b"\n") + 1
        raise _file_error(path, line, "not UTF-8 text: save the file as UTF-8") from None
    try:
        tree = YAML(typ="rt").load(text)
    except MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark is not None else 1
        raise _file_error(path, line, f"invalid YAML: {error.problem or error.context}") from None
    except YAMLError as error:
        raise _file_error(path, 1, f"invalid YAML: {error}") from None
    if tree is None:
        raise _file_error(path, 1, "no YAML content: the file is empty or only comments")
    if not isinstance(tree, CommentedMap):
        raise _file_error(path, 1, "expected 'key: value' lines at the top level")
    return tree


def _plain(node: Any) -> Any:
    """The YAML tree as plain dicts, lists and scalars, so the models hold no ruamel types."""
    if isinstance(node, dict):
        return {_plain(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, ScalarBoolean):
        return bool(node)
    for kind in (bool, int, float, str):
        if isinstance(node, kind):
            return kind(node)
    return node


def _validate(path: Path, tree: CommentedMap, schema: _Schema[T]) -> T:
    try:
        return schema.adapter.validate_python(_plain(tree))
    except ValidationError as error:
        issues = [_pydantic_issue(path, tree, schema, detail) for detail in error.errors()]
        raise ConfigError(sorted(issues, key=lambda issue: issue.line)) from None


def _pydantic_issue(
    path: Path, tree: CommentedMap, schema: _Schema[Any], error: ErrorDetails
) -> ConfigIssue:
    loc: Loc = tuple(error["loc"])
    cause = error.get("ctx", {}).get("error")
    if isinstance(cause, FieldError):
        loc += cause.loc
    if error["type"] in ("union_tag_invalid", "union_tag_not_found"):
        loc += (_tag_key(error),)
    line, parts = _locate(tree, loc)
    return ConfigIssue(path, line, _field_name(parts), _message(error, schema))


def _message(error: ErrorDetails, schema: _Schema[Any]) -> str:
    kind, ctx, loc = error["type"], error.get("ctx", {}), error["loc"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key(str(loc[-1]), _allowed_keys(schema.annotation, loc[:-1]))
    if kind == "union_tag_invalid":
        return f"unknown {_tag_key(error)} {ctx['tag']!r}: write one of {ctx['expected_tags']}"
    if kind == "union_tag_not_found":
        return f"{_tag_key(error)} is missing: write {_tag_key(error)}: {_tag_names(schema, loc)}"
    if "error" in ctx:  # raised by our validators and quantity parsers: already says it all
        return str(ctx["error"])
    if kind == "string_pattern_mismatch" and ctx["pattern"] in _PATTERN_MEANING:
        return f"{error['input']!r} is not {_PATTERN_MEANING[ctx['pattern']]}"
    message = error["msg"][:1].lower() + error["msg"][1:]
    value = error["input"]
    if value is None or isinstance(value, str | int | float):
        message += f", got {value!r}"
    return message


def _unknown_key(key: str, allowed: list[str]) -> str:
    if close := difflib.get_close_matches(key, allowed, n=1):
        return f"unknown key {key!r}: did you mean {close[0]!r}?"
    if allowed:
        return f"unknown key {key!r}; allowed here: {', '.join(allowed)}"
    return f"unknown key {key!r}"


# ---------------------------------------------------------------- locations


def _locate(tree: CommentedMap, loc: Loc) -> tuple[int, list[str | int]]:
    """The line of the deepest node of `loc` that the file holds, and `loc` as the file spells it.

    pydantic's loc also holds the tag of a discriminated union member ("modbus") and "[key]" for a
    bad mapping key; neither is in the file. A missing key is reported at its parent's line.
    """
    node: Any = tree
    line = 1
    parts: list[str | int] = []
    for part in loc:
        if part == "[key]":
            continue
        if isinstance(node, dict) and part not in node and _is_tag_of(node, part):
            continue
        parts.append(part)
        position = _line_index(node, part)
        if position is None:
            node = None
        else:
            line, node = position + 1, node[part]
    return line, parts


def _line_index(node: Any, part: str | int) -> int | None:
    """0-based line of a key or item; None where ruamel kept none (absent, or merged by `<<`)."""
    if not isinstance(node, CommentedMap | CommentedSeq):
        return None
    position = (node.lc.data or {}).get(part)
    return None if position is None else int(position[0])


def _field_name(parts: Iterable[str | int]) -> str:
    name = ""
    for part in parts:
        if isinstance(part, int):
            name += f"[{part}]"
        else:
            name += f".{part}" if name else part
    return name


def _allowed_keys(annotation: Any, loc: Loc) -> list[str]:
    """The keys of the model at pydantic's `loc` under `annotation`; empty if not a model."""
    for part in loc:
        annotation = _step(_strip(annotation), part)
    model = _strip(annotation)
    if isinstance(model, type) and issubclass(model, BaseModel):
        return [info.alias or name for name, info in model.model_fields.items()]
    return []


def _strip(annotation: Any) -> Any:
    """`annotation` without Annotated metadata and without an optional None."""
    while True:
        members = [arg for arg in get_args(annotation) if arg is not NoneType]
        if get_origin(annotation) is Annotated:
            annotation = get_args(annotation)[0]
        elif _is_union(annotation) and len(members) == 1:
            annotation = members[0]
        else:
            return annotation


def _step(annotation: Any, part: str | int) -> Any:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        for name, info in annotation.model_fields.items():
            if (info.alias or name) == part:
                return info.annotation
        return None
    if _is_union(annotation):  # discriminated: pydantic's loc names the member by its tag
        return next((m for m in get_args(annotation) if part in _tags(_strip(m))), None)
    args = get_args(annotation)
    return args[-1] if args else None  # list[X], dict[K, X], tuple[..., X]: the item type


def _is_union(annotation: Any) -> bool:
    return get_origin(annotation) in (Union, UnionType)


def _tags(member: Any) -> tuple[object, ...]:
    if not (isinstance(member, type) and issubclass(member, BaseModel)):
        return ()
    for key in _DISCRIMINATORS:
        info = member.model_fields.get(key)
        if info is not None and get_origin(info.annotation) is Literal:
            return get_args(info.annotation)
    return ()


def _tag_key(error: ErrorDetails) -> str:
    """The union's tag key, from pydantic's context (it quotes it: "'kind'")."""
    return str(error.get("ctx", {}).get("discriminator", "kind")).strip("'")


def _is_tag_of(node: dict[Any, Any], part: str | int) -> bool:
    return any(node.get(key) == part for key in _DISCRIMINATORS)


def _tag_names(schema: _Schema[Any], loc: Loc) -> str:
    annotation = schema.annotation
    for part in loc:
        annotation = _step(_strip(annotation), part)
    members = get_args(_strip(annotation)) if annotation is not None else ()
    return " or ".join(str(tag) for member in members for tag in _tags(_strip(member)))


# ---------------------------------------------------------------- site cross-checks


@dataclass
class Report:
    """Issues found after validation (cross-references), each placed on its line of the file."""

    path: Path
    tree: CommentedMap
    issues: list[ConfigIssue] = field(default_factory=list)

    def raise_if_any(self) -> None:
        if self.issues:
            raise ConfigError(sorted(self.issues, key=lambda issue: (str(issue.path), issue.line)))

    def add(self, loc: Loc, message: str) -> None:
        line, parts = _locate(self.tree, loc)
        self.issues.append(ConfigIssue(self.path, line, _field_name(parts), message))

    def line(self, loc: Loc) -> int:
        return _locate(self.tree, loc)[0]


def _load_site(path: Path, tree: CommentedMap) -> LoadedSite:
    config = _validate(path, tree, _SITE_SCHEMA)
    report = Report(path, tree)
    maps = _load_device_maps(report, config)
    _check_unique(report, config)
    _check_caisson_types(report, config)
    _check_roles(report, config, maps)
    _check_alarms(report, config, maps)
    report.raise_if_any()
    return LoadedSite(path, config, maps)


def maps_directory(site_path: Path, config: SiteConfig) -> Path:
    """The site's maps_dir, which is relative to the site file."""
    return Path(os.path.normpath(site_path.parent / config.maps_dir))


def map_file(site_path: Path, config: SiteConfig, map_name: str) -> Path:
    """The file of the map a device names as `map: map_name`."""
    return maps_directory(site_path, config) / f"{map_name}.yaml"


def _load_device_maps(report: Report, config: SiteConfig) -> dict[str, ModbusMap | OpcUaMap]:
    """The maps the devices name, each loaded once; a broken map reports its own file's issues."""
    maps_dir = maps_directory(report.path, config)
    if not maps_dir.is_dir():
        report.add(
            ("maps_dir",), f"no directory {maps_dir} (maps_dir is relative to the site file)"
        )
        return {}
    loaded: dict[str, ModbusMap | OpcUaMap | None] = {}
    for index, device in enumerate(config.devices):
        map_path = map_file(report.path, config, device.map)
        if not map_path.is_file():
            available = ", ".join(sorted(p.stem for p in maps_dir.glob("*.yaml"))) or "none"
            report.add(
                ("devices", index, "map"),
                f"unknown map {device.map!r}: there is no {map_path} (maps there: {available})",
            )
            continue
        if device.map not in loaded:
            loaded[device.map] = _load_map_into(report, map_path)
        device_map = loaded[device.map]
        if device_map is not None and device_map.protocol != device.protocol:
            report.add(
                ("devices", index, "protocol"),
                f"device {device.id!r} has protocol {device.protocol} but its map "
                f"{device.map!r} is {device_map.protocol}",
            )
    return {name: device_map for name, device_map in loaded.items() if device_map is not None}


def _load_map_into(report: Report, path: Path) -> ModbusMap | OpcUaMap | None:
    try:
        return load_map(path)
    except ConfigError as error:
        report.issues.extend(error.issues)
        return None


def _repeats(entries: Iterable[tuple[int, E, Hashable]]) -> Iterator[tuple[int, E, E, int]]:
    """For each (index, entry, key) whose key was seen: index, entry, first entry, first index."""
    first: dict[Hashable, tuple[int, E]] = {}
    for index, entry, key in entries:
        if key in first:
            first_index, first_entry = first[key]
            yield index, entry, first_entry, first_index
        else:
            first[key] = index, entry


def _check_unique(report: Report, config: SiteConfig) -> None:
    _check_device_ids(report, config)
    _check_modbus_addresses(report, config)
    _check_opcua_endpoints(report, config)
    _check_caisson_ids(report, config)


def _check_device_ids(report: Report, config: SiteConfig) -> None:
    for index, device, _, first in _repeats((i, d, d.id) for i, d in enumerate(config.devices)):
        report.add(
            ("devices", index, "id"),
            f"duplicate device id {device.id!r} (first at line {report.line(('devices', first))})",
        )


def _check_modbus_addresses(report: Report, config: SiteConfig) -> None:
    modbus = [
        (i, d, (d.host.lower(), d.port, d.unit_id))
        for i, d in enumerate(config.devices)
        if isinstance(d, ModbusDevice)
    ]
    for index, device, other, first in _repeats(modbus):
        report.add(
            ("devices", index),
            f"devices {device.id!r} and {other.id!r} (line {report.line(('devices', first))}) "
            f"both use {device.host}:{device.port} unit {device.unit_id}: "
            f"change the port or the unit_id",
        )


def _check_opcua_endpoints(report: Report, config: SiteConfig) -> None:
    opcua = [
        (i, d, d.endpoint.rstrip("/"))
        for i, d in enumerate(config.devices)
        if isinstance(d, OpcUaDevice)
    ]
    for index, device, other, first in _repeats(opcua):
        report.add(
            ("devices", index, "endpoint"),
            f"devices {device.id!r} and {other.id!r} (line {report.line(('devices', first))}) "
            f"both use {device.endpoint}",
        )


def _check_caisson_ids(report: Report, config: SiteConfig) -> None:
    for index, caisson, _, first in _repeats((i, c, c.id) for i, c in enumerate(config.caissons)):
        report.add(
            ("caissons", index, "id"),
            f"duplicate caisson id {caisson.id!r} "
            f"(first at line {report.line(('caissons', first))})",
        )


def _check_caisson_types(report: Report, config: SiteConfig) -> None:
    for index, caisson in enumerate(config.caissons):
        if caisson.type not in config.caisson_types:
            report.add(
                ("caissons", index, "type"),
                f"unknown caisson type {caisson.type!r}; "
                f"caisson_types defines: {', '.join(config.caisson_types)}",
            )


def _role_uses(config: SiteConfig) -> Iterator[tuple[Loc, Role, str]]:
    """(where the site names the device, the role it plays there, the device id)."""
    for index, caisson in enumerate(config.caissons):
        yield ("caissons", index, "skid"), CAISSON_SKID, caisson.skid
        yield ("caissons", index, "compute"), COMPUTE_MANAGER, caisson.compute
        if caisson.heat_meter is not None:
            yield ("caissons", index, "heat_meter"), HEAT_METER, caisson.heat_meter
    yield ("plant", "skid"), PLANT_SKID, config.plant.skid
    yield ("plant", "heat_meter"), HEAT_METER, config.plant.heat_meter


def _check_roles(report: Report, config: SiteConfig, maps: dict[str, ModbusMap | OpcUaMap]) -> None:
    devices = {device.id: device for device in config.devices}
    first_use: dict[str, Loc] = {}
    for loc, role, device_id in _role_uses(config):
        device = devices.get(device_id)
        if device is None:
            report.add(loc, _unknown_device(config, role, device_id))
        elif device.protocol != role.protocol:
            report.add(
                loc,
                f"device {device_id!r} has protocol {device.protocol}, "
                f"but a {role.name} needs protocol {role.protocol}",
            )
        elif device_id in first_use:
            used = first_use[device_id]
            report.add(
                loc,
                f"device {device_id!r} is already used as {_field_name(used)} "
                f"(line {report.line(used)}): a device serves one role",
            )
        else:
            first_use[device_id] = loc
            device_map = maps.get(device.map)
            if device_map is not None and device_map.protocol == device.protocol:
                _check_role_points(report, loc, role, device, device_map)


def _unknown_device(config: SiteConfig, role: Role, device_id: str) -> str:
    candidates = dict.fromkeys(d.id for d in config.devices if d.protocol == role.protocol)
    return (
        f"unknown device {device_id!r}; {role.protocol} devices: {', '.join(candidates) or 'none'}"
    )


def _check_role_points(
    report: Report,
    loc: Loc,
    role: Role,
    device: ModbusDevice | OpcUaDevice,
    device_map: ModbusMap | OpcUaMap,
) -> None:
    points = {point.id: point for point in device_map.points}
    whose = f"map {device.map!r} of device {device.id!r}"
    if missing := [p for p in role.points if p not in points]:
        report.add(loc, f"{whose} lacks {_points(missing)} needed by a {role.name}")
    if read_only := [p for p in role.writes if p in points and not points[p].writable]:
        report.add(
            loc,
            f"{whose} has {_points(read_only)} read-only, but the controller writes "
            f"{'it' if len(read_only) == 1 else 'them'} on a {role.name}: declare access: rw",
        )


def _points(ids: list[str]) -> str:
    return ("point " if len(ids) == 1 else "points ") + ", ".join(repr(i) for i in ids)


# ---------------------------------------------------------------- alarm cross-checks


def _check_alarms(
    report: Report, config: SiteConfig, maps: dict[str, ModbusMap | OpcUaMap]
) -> None:
    """Each alarm's device, point, setpoint point and thresholds, against the device's map."""
    alarms = config.alarms
    for index, alarm, _, first in _repeats((i, a, a.name) for i, a in enumerate(alarms)):
        report.add(
            ("alarms", index, "name"),
            f"duplicate alarm name {alarm.name!r} (first at line {report.line(('alarms', first))})",
        )
    devices = {device.id: device for device in config.devices}
    roles = {device_id: role for _, role, device_id in _role_uses(config)}
    for index, alarm in enumerate(alarms):
        loc: Loc = ("alarms", index)
        places = alarm.places(config)
        if not places:
            report.add((*loc, "device"), f"no caisson has a {alarm.device}")
        checked: set[str] = set()
        for _, device_id in places:
            device = devices.get(device_id)
            if device is None:  # through a caisson or the plant: _check_roles has said it
                if alarm.scope == "plant" and alarm.device not in PLANT_DEVICES:
                    known = ", ".join((*PLANT_DEVICES, *devices))
                    report.add((*loc, "device"), f"unknown device {device_id!r}; write {known}")
                break
            device_map = maps.get(device.map)
            if device_map is None or device.map in checked:
                continue
            role = roles.get(device.id)
            if role is not None and not _plays(role, device, device_map):
                continue  # _check_roles has said what is wrong with it
            checked.add(device.map)
            if issue := _alarm_point_issue(alarm, device, device_map):
                report.add((*loc, *issue.loc), str(issue))
                break
    _check_consequences(report, alarms)


def _check_consequences(report: Report, alarms: list[AlarmSpec]) -> None:
    """What an alarm suppresses: alarms of its own scope (site alarms or the controller's), never
    a critical one, and no loop (two alarms suppressing each other would both be hidden)."""
    by_name = {alarm.name: alarm for alarm in alarms}
    for index, alarm in enumerate(alarms):
        for position, name in enumerate(alarm.suppresses):
            loc: Loc = ("alarms", index, "suppresses", position)
            other = by_name.get(name)
            if other is None:
                if not is_controller_alarm_name(name):
                    known = [a.name for a in alarms if a.scope == alarm.scope]
                    hint = _close(name, known) or (
                        ": name a site alarm of the same scope, or one the controller raises"
                    )
                    report.add(loc, f"no {alarm.scope} alarm {name!r} to suppress{hint}")
            elif other.scope != alarm.scope:
                report.add(
                    loc,
                    f"{name!r} is a {other.scope} alarm: a {alarm.scope} alarm suppresses alarms "
                    f"of its own {'caisson' if alarm.scope == 'caisson' else 'plant'}",
                )
            elif other.priority is Priority.CRITICAL:
                report.add(loc, f"{name!r} is critical: a critical alarm is never suppressed")
    loops: set[frozenset[str]] = set()
    for index, alarm in enumerate(alarms):
        cycle = _suppression_cycle(alarm.name, by_name)
        if cycle and frozenset(cycle) not in loops:
            loops.add(frozenset(cycle))
            report.add(
                ("alarms", index, "suppresses"),
                f"suppression loop {' → '.join(cycle)}: alarms that suppress each other would "
                "all be hidden at once",
            )


def _suppression_cycle(start: str, by_name: dict[str, AlarmSpec]) -> list[str]:
    """A path of `suppresses` from `start` back to itself, or []."""
    path = [start]

    def visit(name: str) -> bool:
        for nxt in by_name[name].suppresses if name in by_name else ():
            if nxt in by_name and by_name[nxt].priority is Priority.CRITICAL:
                continue  # refused on its own
            if nxt == start:
                path.append(nxt)
                return True
            if nxt in path or nxt not in by_name:
                continue
            path.append(nxt)
            if visit(nxt):
                return True
            path.pop()
        return False

    return path if visit(start) else []


def _plays(
    role: Role, device: ModbusDevice | OpcUaDevice, device_map: ModbusMap | OpcUaMap
) -> bool:
    points = {point.id for point in device_map.points}
    return device.protocol == role.protocol and all(p in points for p in role.points)


def _alarm_point_issue(
    alarm: AlarmSpec, device: ModbusDevice | OpcUaDevice, device_map: ModbusMap | OpcUaMap
) -> FieldError | None:
    points: dict[str, ModbusPoint | OpcUaPoint] = {p.id: p for p in device_map.points}
    whose = f"map {device.map!r} of device {device.id!r}"
    point = points.get(alarm.point)
    if point is None:
        return FieldError(
            f"{whose} has no point {alarm.point!r}{_close(alarm.point, points)}", ("point",)
        )
    bits = (DataType.BOOL, DataType.BIT)
    if alarm.kind == "discrete" and point.type not in bits:
        return FieldError(
            f"point {point.id!r} is of type {point.type}: a discrete alarm watches a bool",
            ("point",),
        )
    if alarm.kind != "discrete" and not point.type.is_numeric:
        hint = ": use kind: discrete" if point.type in bits else ""
        return FieldError(
            f"point {point.id!r} is of type {point.type}, not a number{hint}", ("point",)
        )
    try:
        alarm.thresholds(point.unit)
    except FieldError as error:
        return error
    if alarm.setpoint is None:
        return None
    setpoint = points.get(alarm.setpoint)
    if setpoint is None:
        return FieldError(
            f"{whose} has no point {alarm.setpoint!r}{_close(alarm.setpoint, points)}",
            ("setpoint",),
        )
    if not setpoint.type.is_numeric or setpoint.unit != point.unit:
        return FieldError(
            f"setpoint point {setpoint.id!r} ({setpoint.unit}) must be a number in the unit of "
            f"point {point.id!r} ({point.unit})",
            ("setpoint",),
        )
    return None


def _close(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f": did you mean {close[0]!r}?" if close else ""

"""`boilerctl dump-config`: the site configuration as the daemon will use it.

The site file loaded and validated, every default filled in and every quantity in the SI unit the
controller holds it in, shown next to it ("20000 W", "0.5 s"); with --json, plain SI numbers. The
device maps are named by file (`boilerctl maps show` shows them). Secrets: a secret's source (an
environment variable or a file) is shown by name, never read; any other value of a key named like
a secret (token, password, key, credential) is replaced by REDACTED.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from types import NoneType, UnionType
from typing import Annotated, Any, Final, Union, get_args, get_origin

import typer
from pydantic import BaseModel
from pydantic.fields import FieldInfo
from pydantic.functional_validators import BeforeValidator
from ruamel.yaml import YAML

from controller.cli.common import load_site_or_exit
from controller.config.loader import LoadedSite
from controller.config.site import SecretSource
from controller.config.units import SI_UNITS, Dimension, QuantityParser

EXIT_ERROR = 2
REDACTED: Final = "REDACTED"
_SECRET_NAME: Final = re.compile(
    r"(^|_)(token|password|passwd|passphrase|secret|key|credentials?)(_|$)"
)
_HEADER: Final = """\
# {site}: the site configuration as the controller loads it (boilerctl dump-config).
# Defaults are filled in. Quantities are in SI units, as the controller holds them: W, J, s, m,
# m2, m3, m3/s, Pa, J/K, K/W, W/K, B; temperatures in degC, temperature differences in K,
# fractions as a ratio (0.5 = 50 %). Secrets show their source only, never a value.
"""

Quantity = Callable[[float, Dimension], Any]


def dump_config(
    site: Annotated[
        Path,
        typer.Option("--site", envvar="BOILER_SITE", help="The site file."),
    ],
    as_json: Annotated[
        bool, typer.Option("--json", help="Print a JSON document (SI numbers), for scripts.")
    ] = False,
) -> None:
    """Print the site configuration the daemon would use: defaults filled in, units in SI.

    Exit code 2 when the site file (or a map it uses) is not valid.
    """
    loaded = load_site_or_exit(site)
    if as_json:
        document = {
            "site_file": str(site),
            "units": "SI",
            "config": _model(loaded.config, _si_number),
            "device_maps": _map_files(loaded),
        }
        typer.echo(json.dumps(document, indent=2, ensure_ascii=False))
        return
    typer.echo(_HEADER.format(site=site) + _yaml(loaded), nl=False)


def _yaml(loaded: LoadedSite) -> str:
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.representer.sort_base_mapping_type_on_output = False  # the models' order
    yaml.indent(mapping=2, sequence=4, offset=2)
    yaml.width = 4096  # no folded lines
    text = io.StringIO()
    yaml.dump(_model(loaded.config, _with_unit), text)
    text.write("# the map file of each device (boilerctl maps show FILE)\n")
    yaml.dump({"device_maps": _map_files(loaded)}, text)
    return text.getvalue()


def _map_files(loaded: LoadedSite) -> dict[str, str]:
    return {device.id: str(loaded.map_file(device.id)) for device in loaded.config.devices}


# ---------------------------------------------------------------- the model as plain data


def _model(model: BaseModel, quantity: Quantity) -> dict[str, Any]:
    """Every field of `model` by its name in the file, quantities through `quantity`."""
    data: dict[str, Any] = {}
    for name, info in type(model).model_fields.items():
        value = getattr(model, name)
        if _SECRET_NAME.search(name) and not isinstance(value, SecretSource | NoneType):
            data[info.alias or name] = REDACTED
        else:
            data[info.alias or name] = _value(value, _dimension(info), quantity)
    return data


def _value(value: Any, dimension: Dimension | None, quantity: Quantity) -> Any:
    if isinstance(value, BaseModel):
        return _model(value, quantity)
    if isinstance(value, dict):
        return {str(key): _value(item, dimension, quantity) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_value(item, dimension, quantity) for item in value]
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, float) and dimension is not None:
        return quantity(value, dimension)
    return value


def _dimension(info: FieldInfo) -> Dimension | None:
    """The dimension of a quantity field (also an optional one); None for other fields."""
    metadata = list(info.metadata)
    if get_origin(info.annotation) in (Union, UnionType):
        for member in get_args(info.annotation):
            if get_origin(member) is Annotated:
                metadata.extend(get_args(member)[1:])
    for item in metadata:
        if isinstance(item, BeforeValidator) and isinstance(item.func, QuantityParser):
            return item.func.dimension
    return None


def _si_number(value: float, dimension: Dimension) -> float:
    return value


def _with_unit(value: float, dimension: Dimension) -> str | float:
    unit = SI_UNITS[dimension]
    return f"{value:.10g} {unit}" if unit else value

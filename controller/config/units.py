"""Physical quantities written with their unit in configuration files ("20 kW", "65 degC").

Every quantity is converted to SI on load (W, J, m², m³, m³/s, s, Pa, K, degC for temperatures), so
the rest of the code never guesses a unit. A bare number where a quantity is expected is an error:
"20" could be W or kW, and a factor of 1000 is exactly the mistake this guards against.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Final

from pydantic import BeforeValidator


class Dimension(StrEnum):
    POWER = "power"
    ENERGY = "energy"
    TEMPERATURE = "temperature"
    TEMPERATURE_DIFFERENCE = "temperature difference"
    AREA = "area"
    VOLUME = "volume"
    VOLUME_FLOW = "volume flow"
    DURATION = "duration"
    PRESSURE = "pressure"
    LENGTH = "length"
    HEAT_CAPACITY = "heat capacity"
    THERMAL_RESISTANCE = "thermal resistance"
    THERMAL_CONDUCTANCE = "thermal conductance"
    FRACTION = "fraction"
    DATA_SIZE = "data size"


# unit → factor to SI, per dimension. Temperatures stay in degC (offset units are not scaled).
_UNITS: Final[dict[Dimension, dict[str, float]]] = {
    Dimension.POWER: {"W": 1.0, "kW": 1e3, "MW": 1e6},
    Dimension.ENERGY: {
        "J": 1.0,
        "kJ": 1e3,
        "MJ": 1e6,
        "GJ": 1e9,
        "Wh": 3.6e3,
        "kWh": 3.6e6,
        "MWh": 3.6e9,
    },
    Dimension.TEMPERATURE: {"degC": 1.0, "°C": 1.0},
    Dimension.TEMPERATURE_DIFFERENCE: {"K": 1.0},
    Dimension.AREA: {"m2": 1.0, "m²": 1.0},
    Dimension.VOLUME: {"L": 1e-3, "m3": 1.0, "m³": 1.0},
    Dimension.VOLUME_FLOW: {
        "L/s": 1e-3,
        "L/min": 1e-3 / 60,
        "L/h": 1e-3 / 3600,
        "m3/h": 1 / 3600,
        "m³/h": 1 / 3600,
    },
    Dimension.DURATION: {"ms": 1e-3, "s": 1.0, "min": 60.0, "h": 3600.0, "d": 86400.0},
    Dimension.PRESSURE: {"Pa": 1.0, "kPa": 1e3, "bar": 1e5},
    Dimension.LENGTH: {"mm": 1e-3, "cm": 1e-2, "m": 1.0, "km": 1e3},
    Dimension.HEAT_CAPACITY: {"J/K": 1.0, "kJ/K": 1e3, "MJ/K": 1e6},
    Dimension.THERMAL_RESISTANCE: {"K/W": 1.0, "K/kW": 1e-3},
    Dimension.THERMAL_CONDUCTANCE: {"W/K": 1.0, "kW/K": 1e3},
    Dimension.FRACTION: {"%": 1e-2},
    Dimension.DATA_SIZE: {
        "B": 1.0,
        "kB": 1e3,
        "MB": 1e6,
        "GB": 1e9,
        "KiB": 1024.0,
        "MiB": 2**20,
        "GiB": 2**30,
    },
}

# The unit each dimension's values are held in once loaded; a fraction is a bare ratio (0..1).
SI_UNITS: Final[dict[Dimension, str]] = {
    Dimension.POWER: "W",
    Dimension.ENERGY: "J",
    Dimension.TEMPERATURE: "degC",
    Dimension.TEMPERATURE_DIFFERENCE: "K",
    Dimension.AREA: "m2",
    Dimension.VOLUME: "m3",
    Dimension.VOLUME_FLOW: "m3/s",
    Dimension.DURATION: "s",
    Dimension.PRESSURE: "Pa",
    Dimension.LENGTH: "m",
    Dimension.HEAT_CAPACITY: "J/K",
    Dimension.THERMAL_RESISTANCE: "K/W",
    Dimension.THERMAL_CONDUCTANCE: "W/K",
    Dimension.FRACTION: "",
    Dimension.DATA_SIZE: "B",
}

_EXAMPLES: Final[dict[Dimension, str]] = {
    Dimension.POWER: "20 kW",
    Dimension.ENERGY: "150 kWh",
    Dimension.TEMPERATURE: "65 degC",
    Dimension.TEMPERATURE_DIFFERENCE: "10 K",
    Dimension.AREA: "312 m2",
    Dimension.VOLUME: "2 m3",
    Dimension.VOLUME_FLOW: "28.7 L/min",
    Dimension.DURATION: "10 s",
    Dimension.PRESSURE: "1.5 bar",
    Dimension.LENGTH: "20 m",
    Dimension.HEAT_CAPACITY: "150 kJ/K",
    Dimension.THERMAL_RESISTANCE: "0.05 K/W",
    Dimension.THERMAL_CONDUCTANCE: "4 W/K",
    Dimension.FRACTION: "30 % (or 0.3)",
    Dimension.DATA_SIZE: "512 MB",
}

_QUANTITY = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S.*?)?\s*$")


def parse_quantity(text: object, dimension: Dimension) -> float:
    """Return `text` ("20 kW") in SI units of `dimension`; ValueError names what was expected."""
    units = _UNITS[dimension]
    expected = f"expected a {dimension} like '{_EXAMPLES[dimension]}' (units: {', '.join(units)})"
    if isinstance(text, bool):
        raise ValueError(f"{expected}, got {text!r}")
    if isinstance(text, int | float):
        if dimension is Dimension.FRACTION and 0.0 <= text <= 1.0:
            return float(text)
        raise ValueError(f"{expected}, got the bare number {text!r}: the unit is missing")
    if not isinstance(text, str) or (match := _QUANTITY.match(text)) is None:
        raise ValueError(f"{expected}, got {text!r}")
    number, unit = float(match.group(1)), match.group(2)
    if unit is None:
        if dimension is Dimension.FRACTION and 0.0 <= number <= 1.0:
            return number
        raise ValueError(f"{expected}, got {text!r}: the unit is missing")
    if unit not in units:
        raise ValueError(f"{expected}, got unit {unit!r} in {text!r}")
    return number * units[unit]


@dataclass(frozen=True)
class QuantityParser:
    """The validator of a quantity field; its `dimension` tells a reader of the model (a config
    dump) what the SI value it holds measures."""

    dimension: Dimension

    def __call__(self, value: object) -> float:
        return parse_quantity(value, self.dimension)


def _quantity(dimension: Dimension) -> BeforeValidator:
    return BeforeValidator(QuantityParser(dimension))


Power = Annotated[float, _quantity(Dimension.POWER)]
Energy = Annotated[float, _quantity(Dimension.ENERGY)]
Temperature = Annotated[float, _quantity(Dimension.TEMPERATURE)]
TemperatureDifference = Annotated[float, _quantity(Dimension.TEMPERATURE_DIFFERENCE)]
Area = Annotated[float, _quantity(Dimension.AREA)]
Volume = Annotated[float, _quantity(Dimension.VOLUME)]
VolumeFlow = Annotated[float, _quantity(Dimension.VOLUME_FLOW)]
Duration = Annotated[float, _quantity(Dimension.DURATION)]
Pressure = Annotated[float, _quantity(Dimension.PRESSURE)]
Length = Annotated[float, _quantity(Dimension.LENGTH)]
HeatCapacity = Annotated[float, _quantity(Dimension.HEAT_CAPACITY)]
ThermalResistance = Annotated[float, _quantity(Dimension.THERMAL_RESISTANCE)]
ThermalConductance = Annotated[float, _quantity(Dimension.THERMAL_CONDUCTANCE)]
Fraction = Annotated[float, _quantity(Dimension.FRACTION)]
DataSize = Annotated[float, _quantity(Dimension.DATA_SIZE)]  # bytes


def point_unit_factor(unit: str) -> float:
    """SI value = point value × this factor, for a point's engineering unit ("%" → 0.01)."""
    for units in _UNITS.values():
        if unit in units:
            return units[unit]
    return 1.0  # dimensionless, counts, booleans, and units kept as they are (rpm, Hz, V, A)


# Engineering units a field-device point may carry (plc_maps). "1" is dimensionless.
POINT_UNITS: Final[frozenset[str]] = frozenset(
    {
        "degC",
        "K",
        "L/min",
        "m3/h",
        "m3",
        "W",
        "kW",
        "kWh",
        "MWh",
        "bar",
        "kPa",
        "%",
        "rpm",
        "s",
        "Hz",
        "V",
        "A",
        "1",
        "count",
        "bool",
    }
)

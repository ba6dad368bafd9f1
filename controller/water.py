"""Properties of the circulating water, taken constant over the 10–80 °C range of the plant."""

CP = 4186.0  # J/(kg·K)
DENSITY = 983.0  # kg/m³ at 60 °C
VOLUMETRIC_HEAT = CP * DENSITY  # J/(m³·K): heat flow [W] = VOLUMETRIC_HEAT · flow [m³/s] · ΔT [K]

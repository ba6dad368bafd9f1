"""Stratified buffer tank: equal layers, layer 0 at the top."""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

from controller.water import VOLUMETRIC_HEAT

FloatArray = NDArray[np.float64]


class StratifiedTank:
    """Two circuits pass through the tank: the caissons (in at the top, out at the bottom) and the
    load heat exchanger (out at the top, back at the bottom). Water moves between layers with the
    net flow, upwind; a layer colder than the one above it sinks to its level (the plume mixes
    down), which keeps the layers ordered and conserves heat exactly (equal volumes trade places).
    """

    def __init__(
        self,
        volume: float,
        layers: int,
        loss_coefficient: float,
        room: float,
        initial: float,
        dt: float,
    ) -> None:
        self.layer_volume = volume / layers
        self.temperature = np.full(layers, initial)
        self.loss_per_layer = loss_coefficient / layers
        self.room = room
        self.dt = dt
        self.losses = 0.0  # W lost to the room in the last step
        self.max_flow = 0.5 * self.layer_volume / dt  # m³/s a circuit may move (keeps it stable)

    @property
    def top(self) -> float:
        return float(self.temperature[0])

    @property
    def bottom(self) -> float:
        return float(self.temperature[-1])

    def stored(self) -> float:
        """Heat content above 0 °C, J."""
        return float(VOLUMETRIC_HEAT * self.layer_volume * self.temperature.sum())

    def step(
        self, source_flow: float, source_in: float, load_flow: float, load_return: float
    ) -> None:
        """source: the caissons' supply, into the top; load: the heat exchanger's primary circuit,
        from the top and back at the bottom."""
        self.losses = step_tank(
            self.temperature,
            self.layer_volume,
            self.loss_per_layer,
            self.room,
            self.dt,
            source_flow,
            source_in,
            load_flow,
            load_return,
        )


@njit(cache=True)
def step_tank(
    t: FloatArray,
    layer_volume: float,
    loss_per_layer: float,
    room: float,
    dt: float,
    source_flow: float,
    source_in: float,
    load_flow: float,
    load_return: float,
) -> float:
    """Advance the layers in place; return the heat lost to the room [W]."""
    n = len(t)
    net_down = source_flow - load_flow  # m³/s crossing every layer boundary downwards
    change = np.empty(n)  # flow·T in minus out of each layer, m³/s·K
    for k in range(n):
        change[k] = 0.0
    change[0] += source_flow * source_in - load_flow * t[0]
    change[n - 1] += load_flow * load_return - source_flow * t[n - 1]
    for k in range(n - 1):
        moved = net_down * (t[k] if net_down >= 0 else t[k + 1])
        change[k] -= moved
        change[k + 1] += moved
    losses = 0.0
    for k in range(n):
        loss = loss_per_layer * (t[k] - room)
        losses += loss
        t[k] += (change[k] - loss / VOLUMETRIC_HEAT) * dt / layer_volume
    for k in range(1, n):  # insertion sort, hottest first: colder water sinks to its level
        value = t[k]
        j = k - 1
        while j >= 0 and t[j] < value:
            t[j + 1] = t[j]
            j -= 1
        t[j + 1] = value
    return losses

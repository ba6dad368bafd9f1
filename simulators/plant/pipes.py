"""Plug-flow pipes: the delay is pipe volume / flow, whatever the flow does.

Each pipe keeps H(x) = ∫ T_in dx, the cumulative "volume × temperature" that has entered it, as a
function of the cumulative volume x pushed in. Water at the outlet entered when x was V earlier,
so the water leaving during a step that moves the pipe from x₀ to x₁ has the mean temperature
(H(x₁ − V) − H(x₀ − V)) / (x₁ − x₀). This is exact plug flow (no numerical diffusion beyond one
cell) and conserves energy exactly, because the outflow telescopes. H is sampled on a ring of
CELLS_PER_PIPE + 2 cells of V/CELLS_PER_PIPE each and interpolated linearly between them.
"""

from __future__ import annotations

import numpy as np
from numba import njit
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

CELLS_PER_PIPE = 64
RING = CELLS_PER_PIPE + 2  # the pipe's cells, one partly filled and one for interpolation


class PlugFlowPipes:
    def __init__(self, volumes: FloatArray, initial: FloatArray) -> None:
        """volumes [m³] and initial water temperature [°C] of each pipe."""
        self.volume = np.asarray(volumes, dtype=float)
        self.cell = self.volume / CELLS_PER_PIPE
        initial = np.asarray(initial, dtype=float)
        # Start full of water at `initial`: entered over x in [0, V], so H(x) = T0·x there.
        self.ring = initial[:, None] * np.arange(RING)[None, :] * self.cell[:, None]
        self.position = self.volume.copy()  # x: cumulative volume entered
        self.enthalpy_in = initial * self.volume  # H(x)
        self.enthalpy_out = np.zeros(len(self.volume))  # H(x − V)
        self.outlet = initial.copy()  # mean outflow temperature of the last step

    def advance(self, inlet: FloatArray, moved: FloatArray) -> FloatArray:
        """Push `moved` m³ of water at `inlet` °C into each pipe; return the outflow temperature."""
        advance_pipes(
            self.ring,
            self.cell,
            self.volume,
            self.position,
            self.enthalpy_in,
            self.enthalpy_out,
            self.outlet,
            inlet,
            moved,
        )
        return self.outlet

    def stored(self) -> FloatArray:
        """Volume × temperature held in each pipe [m³·K] (× ρ·c_p gives its heat content)."""
        return self.enthalpy_in - self.enthalpy_out


@njit(cache=True)
def advance_pipe(
    ring: FloatArray,
    cell: float,
    volume: float,
    state: FloatArray,
    inlet: float,
    moved: float,
) -> float:
    """One pipe. `state` holds (x, H(x), H(x − V), outlet temperature); returns the outlet."""
    position, enthalpy_in = state[0], state[1]
    end = position + moved
    j = int(position / cell) + 1
    while j * cell <= end:  # record H on the cell boundaries this step passes
        ring[j % RING] = enthalpy_in + inlet * (j * cell - position)
        j += 1
    ring[j % RING] = enthalpy_in + inlet * (j * cell - position)  # the partly filled cell
    out_at = (end - volume) / cell
    i = int(out_at)  # out_at >= 0: truncation is floor
    low = ring[i % RING]
    enthalpy_out = low + (out_at - i) * (ring[(i + 1) % RING] - low)
    if moved > 1e-12:
        state[3] = (enthalpy_out - state[2]) / moved  # else: the last water seen stays shown
    state[0] = end
    state[1] = enthalpy_in + inlet * moved
    state[2] = enthalpy_out
    return state[3]


@njit(cache=True)
def advance_pipes(
    ring: FloatArray,
    cell: FloatArray,
    volume: FloatArray,
    position: FloatArray,
    enthalpy_in: FloatArray,
    enthalpy_out: FloatArray,
    outlet: FloatArray,
    inlet: FloatArray,
    moved: FloatArray,
) -> None:
    state = np.empty(4)
    for p in range(len(volume)):
        state[0], state[1], state[2], state[3] = (
            position[p],
            enthalpy_in[p],
            enthalpy_out[p],
            outlet[p],
        )
        outlet[p] = advance_pipe(ring[p], cell[p], volume[p], state, inlet[p], moved[p])
        position[p], enthalpy_in[p], enthalpy_out[p] = state[0], state[1], state[2]

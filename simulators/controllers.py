"""The controllers a simulated plant can be run with, by name (`boilerctl sim run --controller`,
bench/closed_loop.py): none (the PLCs alone), the plain PI and staged-plant baselines
(simulators/baselines.py), and the supervisor (controller/control/supervisor.py)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.config.loader import LoadedSite
from controller.fieldbus.image import PointRef
from simulators.closed_loop import Controller

CONTROLLERS = ("none", "pi", "staged", "supervisor")
LABELS = {
    "none": "PLCs alone",
    "pi": "plain PI",
    "staged": "staged plant",
    "supervisor": "supervisor",
}


@dataclass(frozen=True)
class InTheLoop:
    controller: Controller | None  # None: the PLCs alone
    refs: frozenset[PointRef]  # the points it reads
    dispatch_mode: Callable[[], str] | None = None  # the supervisor's plant mode now


def controller_for(name: str, site: LoadedSite) -> InTheLoop:
    """A fresh controller of kind `name` (one of CONTROLLERS) for `site`."""
    if name == "none":
        return InTheLoop(None, frozenset())
    if name == "pi":
        from simulators.baselines import PlainPi

        pi = PlainPi(site)
        return InTheLoop(pi, pi.refs)
    if name == "staged":
        from simulators.baselines import StagedPlant

        staged = StagedPlant(site)
        return InTheLoop(staged, staged.refs)
    if name == "supervisor":
        from controller.control.supervisor import Supervisor

        supervisor = Supervisor(site)

        def mode() -> str:
            plan = supervisor.last_plan
            return "none" if plan is None else str(plan.mode.value)

        return InTheLoop(supervisor, supervisor.reader.refs, mode)
    raise ValueError(f"no controller {name!r}: choose one of {', '.join(CONTROLLERS)}")

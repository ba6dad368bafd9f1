"""Alarm load on the control benchmark's fault days: the supervisor and the alarm engine in the
loop of the in-process plant, one fault at a time.

For each scenario: every annunciation (an alarm newly shown to the operator), the EEMUA 191
figures (controller/alarms/metrics.py), and for each fault of the scenario the alarms raised
during it (from its start to 10 min after its end), to check that a single fault never floods and
that every fault raises at least one alarm naming the right caisson. The alarms raised outside
every fault window are false alarms; a healthy day (HEALTHY) has no fault window at all.

    .venv/bin/python bench/alarm_load.py [--scenario NAME ...] [--hours H] [--json FILE]
                                         [--without-cause-suppression]

By default the fault days and the healthy day; `--scenario` (repeatable) runs any bundled
scenario instead (simulators/scenarios/NAME.yaml). Designed suppression by cause (a pump fault
suppresses its consequences: controller/alarms/suppression.py) is on, as in the daemon;
`--without-cause-suppression` turns it off, to show what it saves. Each fault's row also lists
the consequences it suppressed: they are journaled, not annunciated.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from controller.alarms.metrics import alarm_load, is_annunciation  # noqa: E402
from controller.alarms.model import State, Transition  # noqa: E402
from controller.alarms.service import AlarmService  # noqa: E402
from controller.alarms.suppression import CauseSuppression  # noqa: E402
from controller.control.arbiter import Write  # noqa: E402
from controller.control.supervisor import ScanResult, Supervisor  # noqa: E402
from controller.fieldbus.image import PointRef, Sample  # noqa: E402
from controller.logs import configure_logging  # noqa: E402
from simulators.closed_loop import Outage, run_closed_loop  # noqa: E402
from simulators.run import ScenarioRun  # noqa: E402
from simulators.scenario import load_scenario  # noqa: E402

SCENARIOS = {
    "residential-fault-day": (
        Outage("c2-skid", 18 * 3600, 18 * 3600 + 1200),
        Outage("c2-compute", 18 * 3600, 18 * 3600 + 1200),
    ),
    "demo-faults": (),
}
HEALTHY = ("demo-winter-day",)  # the fault days' site on a day without faults
AFTER = timedelta(minutes=10)


class AlarmedSupervisor:
    """The supervisor, with the alarm engine told each scan (plant time as UTC)."""

    def __init__(self, supervisor: Supervisor, alarms: AlarmService, start: datetime) -> None:
        self.supervisor, self.alarms, self.start = supervisor, alarms, start

    def scan(self, snapshot: Mapping[PointRef, Sample], now: float) -> ScanResult:
        result = self.supervisor.scan(snapshot, now)
        self.alarms.scan(snapshot, result, self.start + timedelta(seconds=now), now)
        return result

    def confirm(self, write: Write, now: float) -> None:
        self.supervisor.confirm(write, now)


@dataclass(frozen=True)
class Fault:
    kind: str
    caisson: str
    start: datetime
    end: datetime


def run(name: str, hours: float | None, cause_suppression: bool = True) -> dict[str, Any]:
    loaded = load_scenario(ROOT / "simulators" / "scenarios" / f"{name}.yaml")
    scenario = loaded.scenario
    if hours is not None:
        scenario = scenario.model_copy(update={"duration": hours * 3600})
    start = scenario.start
    supervisor = Supervisor(loaded.site)
    alarms = AlarmService(loaded.site)
    alarms.keep = True
    if not cause_suppression:
        alarms.causes = CauseSuppression([], [])
    refs = set(supervisor.reader.refs)
    for instance in alarms.instances:
        refs.add(instance.ref)
        if instance.setpoint_ref is not None:
            refs.add(instance.setpoint_ref)
    scenario_run = ScenarioRun(scenario, loaded.site.config, loaded.path.parent)
    outages = SCENARIOS.get(name, ())
    run_closed_loop(
        scenario_run,
        loaded.site,
        AlarmedSupervisor(supervisor, alarms, start),
        sorted(refs),
        outages=outages,
    )
    end = start + timedelta(seconds=scenario.duration)
    faults = [
        Fault(
            e.kind,
            getattr(e, "caisson", ""),
            start + timedelta(seconds=e.at),
            start + timedelta(seconds=e.at + (getattr(e, "duration", None) or 0)),
        )
        for e in scenario.events
        if getattr(e, "caisson", None) and e.at < scenario.duration
    ]
    faults += [
        Fault(
            "link_lost",
            o.device.split("-")[0],
            start + timedelta(seconds=o.start),
            start + timedelta(seconds=o.end),
        )
        for o in outages
        if o.start < scenario.duration and o.device.endswith("-skid")
    ]
    sensor_alarms = {str(d.id) for d in alarms.sensors.definitions}
    return report(name, alarms.transitions, faults, start, end, sensor_alarms)


def report(
    name: str,
    transitions: list[Transition],
    faults: list[Fault],
    start: datetime,
    end: datetime,
    sensor_alarms: set[str],
) -> dict[str, Any]:
    load = alarm_load(transitions, start, end)
    shown = [t for t in transitions if is_annunciation(t)]
    outside = [t for t in shown if not any(f.start <= t.at <= f.end + AFTER for f in faults)]
    per_fault = []
    for fault in sorted(faults, key=lambda f: f.start):
        raised = [t for t in shown if fault.start <= t.at <= fault.end + AFTER]
        names = Counter(str(t.alarm) for t in raised)
        named = [t.at for t in raised if t.alarm.source == fault.caisson]
        hidden = Counter(
            str(t.alarm)
            for t in transitions
            if fault.start <= t.at <= fault.end + AFTER
            and t.after is State.SUPPRESSED
            and t.before is not State.SUPPRESSED
        )
        per_fault.append(
            {
                "fault": f"{fault.kind} {fault.caisson} at {fault.start:%H:%M}",
                "alarms": len(raised),
                "names_caisson": bool(named),
                "first_after_min": round((named[0] - fault.start).total_seconds() / 60, 1)
                if named
                else None,
                "flood": len(raised) >= 10
                and (raised[9].at - raised[0].at) <= timedelta(minutes=10),
                "raised": dict(names),
                "suppressed": dict(hidden),
            }
        )
    return {
        "scenario": name,
        "annunciations": load.annunciations,
        "per_10_min_max": load.per_10_min_max,
        "peak_hourly": load.peak_hourly,
        "floods": load.floods,
        "chattering": [str(a) for a in load.chattering],
        "priorities": {str(k): round(v, 3) for k, v in load.priorities.items()},
        "sensor_alarms": sum(1 for t in shown if str(t.alarm) in sensor_alarms),
        "outside_faults": [f"{t.alarm} at {t.at:%H:%M}" for t in outside],
        "faults": per_fault,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scenario", action="append", default=None, help="a bundled scenario (repeatable)"
    )
    parser.add_argument("--hours", type=float, default=None, help="shorten each scenario")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument(
        "--without-cause-suppression",
        action="store_true",
        help="turn designed suppression by cause off (the alarm load before it)",
    )
    args = parser.parse_args()
    configure_logging("warning", json_lines=False)
    names = args.scenario or [*SCENARIOS, *HEALTHY]
    results = [run(name, args.hours, not args.without_cause_suppression) for name in names]
    for result in results:
        print(f"## {result['scenario']}")
        print(
            f"annunciations {result['annunciations']}, max per 10 min "
            f"{result['per_10_min_max']}, peak hourly {result['peak_hourly']}, floods "
            f"{result['floods']}, chattering {result['chattering']}, "
            f"priorities {result['priorities']}"
        )
        print(
            f"sensor alarms {result['sensor_alarms']}, outside the fault windows "
            f"{result['outside_faults'] or 'none'}"
        )
        print("| fault | alarms | names the caisson (after) | flood | raised | suppressed |")
        print("|---|---|---|---|---|---|")
        for f in result["faults"]:
            raised = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in f["raised"].items())
            hidden = ", ".join(f"{k} ×{v}" if v > 1 else k for k, v in f["suppressed"].items())
            named = f"yes ({f['first_after_min']:g} min)" if f["names_caisson"] else "NO"
            print(
                f"| {f['fault']} | {f['alarms']} | {named} | "
                f"{'YES' if f['flood'] else 'no'} | {raised} | {hidden or '—'} |"
            )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

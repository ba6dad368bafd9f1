"""What the supervisor carries over a restart (carryover.py): its JSON both ways, the one-line
refusal of anything else, and the peak memory aged by the time the daemon was down. Pure."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from controller.config.loader import load_site
from controller.control.carryover import Carryover, aged_peaks, decode, encode
from controller.control.peak import PeakMemory
from controller.control.staging import UnitState
from controller.control.supervisor import Supervisor
from tests.plant_helpers import SITES

AT = datetime(2026, 12, 7, 21, 0, tzinfo=UTC)
PEAKS = PeakMemory(past=(40e3, 52e3, 30e3), current=35e3, elapsed=1200.0)
CARRIED = Carryover(AT, {"c1": 36000.0, "c2": 7200.5, "c3": 0.0}, PEAKS)


def test_what_is_encoded_decodes_to_the_same() -> None:
    assert decode(encode(CARRIED)) == CARRIED


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"version": 2}, "version 2"),
        ({"at": "yesterday"}, "yesterday"),
        ({"at": "2026-12-07T21:00:00"}, "no time zone"),
        ({"run_seconds": {"c1": "ten hours"}}, "run_seconds of c1"),
        ({"run_seconds": {"c1": -5}}, "below 0"),
        ({"run_seconds": {"c1": float("nan")}}, "not a number"),
        ({"peaks": {"past": [1.0] * 24, "current": 0, "elapsed": 0}}, "24 past hours"),
        ({"peaks": {"past": [], "current": True, "elapsed": 0}}, "peak is True"),
        ({"peaks": {"past": []}}, "'current'"),
        ({"run_seconds": []}, "mistyped"),
    ],
)
def test_anything_else_is_refused_in_one_line_naming_what(
    change: dict[str, object], named: str
) -> None:
    data = {**json.loads(encode(CARRIED)), **change}
    with pytest.raises(ValueError, match=r"^carryover: ") as error:
        decode(json.dumps(data))
    assert named in str(error.value)
    assert "\n" not in str(error.value)


def test_not_json_at_all_is_refused_too() -> None:
    with pytest.raises(ValueError, match=r"^carryover: "):
        decode("{run")


def test_the_peak_memory_ages_by_the_time_the_daemon_was_down() -> None:
    assert aged_peaks(CARRIED, AT) == PEAKS
    assert aged_peaks(CARRIED, AT - timedelta(hours=3)) == PEAKS  # a clock set back: no aging
    two_hours = aged_peaks(CARRIED, AT + timedelta(hours=2))
    assert two_hours.peak == 52e3  # the hours down count as hours without load
    assert two_hours.past[-2:] == (35e3, 0.0)
    assert aged_peaks(CARRIED, AT + timedelta(hours=20)).peak == 52e3  # 52 kW was 2 h ago
    assert aged_peaks(CARRIED, AT + timedelta(days=1, minutes=1)).peak == 0.0  # a day: forgotten


def test_the_supervisor_gives_and_takes_its_carryover_by_caisson_id() -> None:
    site = load_site(SITES / "demo.yaml")
    first = Supervisor(site)
    first.staging = type(first.staging)(
        units={0: UnitState(True, 5.0, 3600.0), 2: UnitState(False, 1.0, 60.0)}, carried={1: 90.0}
    )
    first.dispatch = type(first.dispatch)(peaks=PEAKS)
    carried = first.carryover(AT)
    assert carried == Carryover(AT, {"c1": 3600.0, "c2": 90.0, "c3": 60.0}, PEAKS)

    second = Supervisor(site)
    gone = Carryover(AT, {**carried.run_seconds, "c9": 5.0}, PEAKS)  # c9 left the site file
    second.take_over(gone, AT + timedelta(minutes=5))
    assert second.staging.carried == {0: 3600.0, 1: 90.0, 2: 60.0}
    assert second.staging.units == {}  # taken at each caisson's first sight
    assert second.dispatch.peaks == PEAKS.updated(0.0, 300.0)

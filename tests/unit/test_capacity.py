"""Where compute can go (controller/capacity.py): the demand model, the capacity now and ahead,
the forecast file; and the daemon's side (controller/capacity_feed.py)."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs

from controller.capacity import (
    HOT_WATER_WEIGHTS,
    STEP,
    Conditions,
    SiteModel,
    capacity,
    climate_temperature,
    demand,
    forecast_at,
    parse_forecast,
    tank_room,
)
from controller.capacity_feed import CapacityFeed, fields
from controller.config.loader import LoadedSite, load_site
from controller.control.inputs import CaissonInputs, Inputs, PlantInputs
from controller.control.interlocks import Interlock
from controller.control.supervisor import CaissonStatus
from controller.water import VOLUMETRIC_HEAT
from simulators.plant.loads import _HOT_WATER_WEIGHTS
from tests.plant_helpers import SITES, site_copy

PARIS = ZoneInfo("Europe/Paris")
NOON = datetime(2026, 1, 15, 11, 0, tzinfo=UTC)  # 12:00 in Paris, a Thursday


@pytest.fixture(scope="module")
def demo() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


def conditions(**changes: object) -> Conditions:
    base = Conditions(
        at=NOON,
        load=80e3,
        outdoor=0.0,
        available=60e3,
        capture=0.94,
        tank_room=0.0,
        it_power=50e3,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


# ---------------------------------------------------------------------- demand


def test_the_hot_water_profiles_are_the_simulated_plant_s() -> None:
    for profile, weights in _HOT_WATER_WEIGHTS.items():
        assert tuple(float(w) for w in HOT_WATER_WEIGHTS[profile]) == weights


def test_space_heating_follows_its_curve_and_hot_water_its_profile(demo: LoadedSite) -> None:
    loads = demo.config.loads
    assert loads.space_heating is not None
    assert loads.hot_water is not None
    seven = datetime(2026, 1, 15, 7, 30, tzinfo=PARIS)  # the morning peak
    weights = HOT_WATER_WEIGHTS[loads.hot_water.profile]
    hot_water = loads.hot_water.daily_energy * weights[7] / sum(weights) / 3600
    assert demand(loads, -10.0, seven) == pytest.approx(110e3 + hot_water)  # design point
    assert demand(loads, 1.0, seven) == pytest.approx(110e3 * 11 / 22 + hot_water)
    assert demand(loads, 15.0, seven) == pytest.approx(hot_water)  # above the heating limit
    assert demand(loads, -40.0, seven) == pytest.approx(110e3 * 1.5 + hot_water)  # capped


def test_the_warehouse_heats_to_its_occupied_setpoint_on_its_schedule() -> None:
    loads = load_site(SITES / "warehouse.yaml").config.loads
    w = loads.warehouse
    assert w is not None
    assert loads.hot_water is None
    monday_ten = datetime(2026, 1, 12, 10, 0, tzinfo=PARIS)
    sunday_ten = datetime(2026, 1, 18, 10, 0, tzinfo=PARIS)
    assert "mon" in w.occupancy.days
    assert "sun" not in w.occupancy.days
    span = w.occupied_setpoint - w.internal_gains - w.design_outdoor
    occupied = w.design_load * (w.occupied_setpoint - w.internal_gains - 0.0) / span
    set_back = w.design_load * max(w.unoccupied_setpoint - w.internal_gains, 0.0) / span
    assert demand(loads, 0.0, monday_ten) == pytest.approx(occupied)
    assert demand(loads, 0.0, sunday_ten) == pytest.approx(set_back)


def test_the_pool_is_covered_at_night() -> None:
    loads = load_site(SITES / "pool.yaml").config.loads
    p = loads.pool
    assert p is not None
    makeup = VOLUMETRIC_HEAT * p.makeup_daily / 86400 * (p.target - p.makeup_water)
    open_hour = datetime(2026, 1, 15, p.open_hours[0], 30, tzinfo=PARIS)
    night = datetime(2026, 1, 15, 3, 0, tzinfo=PARIS)
    hot = loads.hot_water
    assert hot is not None
    assert HOT_WATER_WEIGHTS[hot.profile][3] == 0
    assert demand(loads, 0.0, night) == pytest.approx(p.evaporation_loss * p.cover_factor + makeup)
    assert demand(loads, 0.0, open_hour) > p.evaporation_loss + makeup  # uncovered, showers


# ---------------------------------------------------------------------- now and ahead


def test_now_heat_driven_is_the_demand_over_the_capture_and_the_ceiling_adds_the_cooler(
    demo: LoadedSite,
) -> None:
    model = SiteModel.of(demo)
    report = capacity(model, conditions(available=400e3))
    assert report.heat_driven == pytest.approx(80e3 / 0.94)
    cooler = model.cooler_capacity * (model.cooler_water - 0.0) / model.cooler_difference
    assert cooler > 0
    assert report.ceiling == pytest.approx((80e3 + cooler) / 0.94)
    assert report.source == "persistence"
    small = capacity(model, conditions(available=40e3))  # a caisson out: less room
    assert (small.heat_driven, small.ceiling) == (40e3, 40e3)
    nothing = capacity(model, conditions(available=0.0, capture=0.0))
    assert (nothing.heat_driven, nothing.ceiling) == (0.0, 0.0)


def test_the_windows_average_the_steps_and_share_the_tank_s_room(demo: LoadedSite) -> None:
    model = SiteModel.of(demo)
    # Warm enough that only hot water is wanted: plenty of headroom for the tank's room.
    base = capacity(model, conditions(load=None, outdoor=15.0, available=60e3))
    one_hour, six_hours, day = base.windows
    assert [w.hours for w in base.windows] == [1.0, 6.0, 24.0]
    steps = base.steps[:4]
    assert one_hour.heat_driven == pytest.approx(sum(s.heat_driven for s in steps) / 4)
    assert day.demand == pytest.approx(demo.config.loads.hot_water.daily_energy / 86400, rel=0.02)  # type: ignore[union-attr]
    room = 3.6e6 * 10  # 10 kWh the tank can still take
    tank = capacity(model, conditions(load=None, outdoor=15.0, tank_room=room))
    assert tank.windows[0].heat_driven == pytest.approx(one_hour.heat_driven + room / 0.94 / 3600)
    assert tank.windows[2].heat_driven == pytest.approx(day.heat_driven + room / 0.94 / 86400)
    assert tank.heat_driven == base.heat_driven  # now: the steady demand only
    assert tank.tonight.heat_driven == base.tonight.heat_driven  # tonight: no tank
    assert six_hours.start == NOON
    assert len(base.steps) == 96


def test_tonight_is_the_coming_night_in_local_time(demo: LoadedSite) -> None:
    model = SiteModel.of(demo)
    noon = capacity(model, conditions()).tonight
    assert noon.start.astimezone(PARIS) == datetime(2026, 1, 15, 22, 0, tzinfo=PARIS)
    assert noon.hours == 8.0
    odd = capacity(model, conditions(at=NOON + timedelta(minutes=7, seconds=30)))
    assert odd.steps[0].start == NOON  # quarter hours, from the present one
    assert odd.tonight.start.astimezone(PARIS) == datetime(2026, 1, 15, 22, 0, tzinfo=PARIS)
    late = capacity(model, conditions(at=datetime(2026, 1, 15, 23, 0, tzinfo=UTC))).tonight
    assert late.start == datetime(2026, 1, 15, 23, 0, tzinfo=UTC)  # midnight in Paris
    assert late.hours == 6.0  # the rest of this night, to 06:00


def test_the_model_s_present_error_fades_ahead(demo: LoadedSite) -> None:
    model = SiteModel.of(demo)
    modelled = capacity(model, conditions(load=None))
    measured = capacity(model, conditions(load=modelled.demand + 20e3))
    gaps = [b.demand - a.demand for a, b in zip(modelled.steps, measured.steps, strict=True)]
    assert gaps[0] == pytest.approx(20e3 * 0.98, rel=0.01)  # 7.5 min in: e^(-7.5/360)
    assert gaps[24] == pytest.approx(20e3 * 0.37, rel=0.03)  # 6 h in
    assert all(a > b for a, b in itertools.pairwise(gaps))


def test_a_forecast_file_replaces_persistence_where_it_has_rows(demo: LoadedSite) -> None:
    model = SiteModel.of(demo)
    forecast = [(NOON, -10.0), (NOON + timedelta(hours=12), -10.0)]
    report = capacity(model, conditions(outdoor=5.0, forecast=forecast))
    assert report.source == "forecast file"
    assert report.steps[0].outdoor == -10.0
    assert report.steps[-1].outdoor == 5.0  # after its last row: persistence
    assert forecast_at(forecast, NOON + timedelta(hours=6)) == -10.0
    ramp = [(NOON, 0.0), (NOON + timedelta(hours=1), 4.0)]
    assert forecast_at(ramp, NOON + timedelta(minutes=15)) == pytest.approx(1.0)
    assert forecast_at(ramp, NOON - timedelta(seconds=1)) is None


def test_without_an_outdoor_reading_the_climate_stands_in(demo: LoadedSite) -> None:
    model = SiteModel.of(demo)
    report = capacity(model, conditions(outdoor=None))
    assert report.source == "climate"
    climate = demo.config.climate
    first = report.steps[0]
    middle = (first.start + STEP / 2).astimezone(PARIS)
    assert first.outdoor == pytest.approx(climate_temperature(climate, middle))
    # Mid January at 05:00: near the coldest of the year and of the day.
    coldest = climate_temperature(climate, datetime(2026, 1, 15, 5, 0, tzinfo=PARIS))
    expected = climate.annual_mean - climate.seasonal_amplitude - climate.daily_amplitude
    assert coldest == pytest.approx(expected, abs=0.05)


def test_the_tank_s_room_is_what_brings_every_layer_to_full() -> None:
    assert tank_room([65.0, 60.0, None, 55.0], 65.0, 2.0) == pytest.approx(
        VOLUMETRIC_HEAT * 2.0 * (0 + 5 + 10) / 3
    )
    assert tank_room([None, None], 65.0, 2.0) == 0.0
    assert tank_room([70.0], 65.0, 2.0) == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("2026-01-15T12:00:00+01:00,x", "f:1: expected 'timestamp,temperature'"),
        ("2026-01-15T12:00:00,1.0", "f:1: timestamp '2026-01-15T12:00:00' has no offset"),
        (
            "# comment\ntimestamp,temperature\n2026-01-15T12:00Z,1\n2026-01-15T11:00Z,2",
            "f:4: timestamps must increase from row to row",
        ),
        ("2026-01-15T12:00Z,nan", "f:1: temperature 'nan' is not a number"),
    ],
)
def test_a_bad_forecast_file_names_its_line(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^f:") as caught:
        parse_forecast(text, "f")
    assert str(caught.value).startswith(message)


def test_a_forecast_file_reads_with_a_header_and_comments() -> None:
    rows = parse_forecast(
        "timestamp,temperature\n# from the met office\n2026-01-15T12:00Z,-2.5", "f"
    )
    assert rows == [(datetime(2026, 1, 15, 12, 0, tzinfo=UTC), -2.5)]


# ---------------------------------------------------------------------- the daemon's side


def _inputs(demo: LoadedSite, outdoor: float | None = 0.0) -> Inputs:
    empty = CaissonInputs(**dict.fromkeys(f.name for f in dataclasses.fields(CaissonInputs)))
    caissons = tuple(dataclasses.replace(empty, it_power=15e3) for _ in demo.config.caissons)
    plant = PlantInputs(
        tank=(65.0, 60.0, 55.0, 50.0, 45.0, 40.0),
        outdoor=outdoor,
        building_supply=65.0,
        building_return=45.0,
        building_flow=1e-3,
        supply=65.0,
        ret=45.0,
        backup_heat=0.0,
    )
    return Inputs(caissons, plant)


def _status(name: str, *interlocks: Interlock, locked_out: bool = False) -> CaissonStatus:
    return CaissonStatus(
        name, True, 1, frozenset(interlocks), True, 65.0, 65.0, 55.0, 4e-4, 15e3, 0.7, 2e4,
        locked_out=locked_out,
    )  # fmt: skip


def test_the_feed_leaves_out_caissons_that_cannot_compute(demo: LoadedSite) -> None:
    feed = CapacityFeed(demo)
    inputs = _inputs(demo)
    feed.observe(inputs, 1.0)
    caissons = (_status("c1"), _status("c2", Interlock.LEAK), _status("c3", locked_out=True))
    report = feed.update(inputs, caissons, 65.0, NOON)
    assert report.available == 20e3
    assert report.it_power == 45e3
    measured = VOLUMETRIC_HEAT * 1e-3 * 20.0
    assert report.demand == pytest.approx(measured)
    assert report.tank_room == pytest.approx(
        VOLUMETRIC_HEAT * 2.0 * (0 + 5 + 10 + 15 + 20 + 25) / 6
    )
    names = dict(fields(report))
    assert names["available_kw"] == 20.0
    assert names["forecast"] == "persistence"
    assert {"heat_driven_1h_kw", "ceiling_6h_kw", "demand_24h_kw", "tonight_ceiling_kw"} <= set(
        names
    )
    assert feed.latest is report


def test_the_feed_reads_the_forecast_file_again_when_it_changes(tmp_path: Path) -> None:
    path = site_copy(tmp_path, "capacity: {forecast: weather.csv}\n")
    site = load_site(path)
    feed = CapacityFeed(site)
    inputs = _inputs(site, outdoor=5.0)
    feed.observe(inputs, 1.0)
    statuses = [_status(c.id) for c in site.config.caissons]
    with capture_logs() as logs:
        assert feed.update(inputs, statuses, 65.0, NOON).source == "persistence"  # no file yet
        assert feed.update(inputs, statuses, 65.0, NOON).source == "persistence"
    assert [e["event"] for e in logs] == ["forecast_unusable"]  # said once
    weather = tmp_path / "weather.csv"
    tomorrow = NOON + timedelta(days=1)
    weather.write_text(f"timestamp,temperature\n{NOON.isoformat()},-5\n{tomorrow.isoformat()},-5\n")
    report = feed.update(inputs, statuses, 65.0, NOON)
    assert report.source == "forecast file"
    assert report.steps[10].outdoor == -5.0
    weather.write_text("garbage")
    with capture_logs() as logs:
        assert feed.update(inputs, statuses, 65.0, NOON).source == "persistence"
    assert logs[0]["event"] == "forecast_unusable"
    assert f"{weather}:1: expected 'timestamp,temperature'" in logs[0]["error"]

"""The maintenance commands as an engineer uses them on a site's edge box: the installed
`boilerctl` talking to a running `boilerctl run` (a subprocess, its local API on a real socket)
that controls the demo plant simulated in this process on real sockets.

One plant and one daemon serve the whole module (a daemon takes seconds to take the plant over);
each test puts back what it changed. The restart test stops and starts that same daemon.
"""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import re
import signal
import stat
import struct
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from controller.api import models as m
from controller.api.client import EXIT_AUTH, EXIT_BAD_INPUT, EXIT_NO_DAEMON
from controller.api.server import ROUTES
from controller.config.loader import load_site
from tests.maintenance_helpers import (
    API,
    DEMO,
    PNG_SIGNATURE,
    Harness,
    boilerctl,
    caisson,
    clean_environment,
    gather_limited,
    override_of,
    running_harness,
    until,
    until_holds,
)

PUMP = "c1-skid.pump_speed_cmd"
SLUG = load_site(DEMO).config.site.slug


@pytest.fixture(scope="module")
async def harness(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Harness]:
    async with running_harness(tmp_path_factory.mktemp("maintenance")) as running:
        yield running
    # no request made the daemon fail (an HTTP 500, logged with its traceback)
    assert '"api_handler_failed"' not in running.log.read_text()


def table_rows(text: str) -> dict[str, list[str]]:
    """The rows of a table as `boilerctl` prints it off a terminal, by their first cell."""
    rows = {}
    for line in text.splitlines():
        if line.startswith("│"):
            cells = [cell.strip() for cell in line.strip("│").split("│")]
            rows[cells[0]] = cells
    return rows


def operator_entries(harness: Harness, since: int) -> list[tuple[str, str, str, str, str, str]]:
    """The operator entries journaled after the first `since`, as (source, name, before, after,
    user, reason)."""
    return [
        (e.source, e.name, e.before, e.after, e.user, e.reason) for e in harness.journal()[since:]
    ]


# ---------------------------------------------------------------------- no daemon


async def test_with_no_daemon_a_command_says_so_in_one_line(tmp_path: Path) -> None:
    fresh = tmp_path / "fresh-state"
    env = clean_environment(fresh)
    status, lockout = await asyncio.gather(
        boilerctl("status", "--site", str(DEMO), env=env),
        boilerctl("lockout", "c2", "-r", "pump swap", "--site", str(DEMO), env=env),
    )
    for run in (status, lockout):
        line = run.refused(EXIT_NO_DAEMON)
        assert line.startswith(f"boilerctl: no daemon running for site {SLUG}"), line
        assert str(fresh / f"{SLUG}.api") in line  # where it looked
        assert f"boilerctl run --site {DEMO}" in line  # and what to do
    assert not fresh.exists() or not any(fresh.iterdir())  # a command creates nothing


# ---------------------------------------------------------------------- the routine


async def test_the_maintenance_routine_of_the_demo_plant(harness: Harness, tmp_path: Path) -> None:
    h = harness
    ids = [c.id for c in h.site.config.caissons]
    assert ids == ["c1", "c2", "c3"]
    assert stat.S_IMODE(h.token_file.stat().st_mode) == 0o600
    since = len(h.journal())

    # A compute manager stops answering: the engineer finds the plant with an alarm.
    await h.plant.take_down("c3-compute")
    try:
        # status, as a table (the site from BOILER_SITE, as an engineer's profile sets it) and
        # as JSON: every caisson of the site
        table, document = await asyncio.gather(
            boilerctl("status", env={**h.env, "BOILER_SITE": str(DEMO)}),
            h.cli("status", "--json"),
        )
        rows = table_rows(table.ok().stdout)
        for caisson_id in ids:
            assert caisson_id in rows, table.stdout
            assert rows[caisson_id][1] == "auto"
            assert rows[caisson_id][2] == "remote"
        assert h.site.config.site.name in table.stdout
        assert "setpoints: outlet 65 degC" in table.stdout
        status = document.json()
        assert status["site_id"] == SLUG
        assert [c["id"] for c in status["caissons"]] == ids
        for c in status["caissons"]:
            assert (c["control_mode"], c["plc_mode"], c["locked_out"]) == ("auto", "remote", False)
        assert status["overrides"] == []

        async def c3_comm_lost_annunciated() -> bool:
            return (await h.alarm("c3.compute_comm_lost"))["state"] == "unacknowledged"

        await until(c3_comm_lost_annunciated, "c3.compute_comm_lost annunciated")
        listed = (await h.cli("alarms", "list", "--json")).json()["alarms"]
        raised = next(a for a in listed if a["alarm"] == "c3.compute_comm_lost")
        assert (raised["state"], raised["active"], raised["priority"]) == (
            "unacknowledged",
            True,
            "high",
        )
        assert all(a["state"] != "normal" for a in listed)  # without --all: the others only

        ack = await h.cli(
            "alarms", "ack", "c3.compute_comm_lost", "--user", "ann", "-r", "seen on the panel"
        )
        assert ack.ok().stdout.strip() == "1 alarm(s) acknowledged"
        listed = (await h.cli("alarms", "list", "--json")).json()["alarms"]
        acknowledged = next(a for a in listed if a["alarm"] == "c3.compute_comm_lost")
        assert (acknowledged["state"], acknowledged["active"]) == ("acknowledged", True)
    finally:
        await h.plant.bring_back("c3-compute")
    # the manager is back: reconnect now rather than after the driver's back-off
    assert (await h.cli("retry", "c3-compute", "--user", "ann", "-r", "manager back")).ok()
    await h.wait_status(
        lambda s: all(d["health"] == "ok" for d in s["devices"]), "c3-compute answers again"
    )

    async def c3_alarm_normal() -> bool:
        return (await h.alarm("c3.compute_comm_lost"))["state"] == "normal"

    await until(c3_alarm_normal, "c3.compute_comm_lost back to normal")

    # Lock c2 out for maintenance: caps to 0, its alarms suppressed by design.
    locked = await h.cli("lockout", "c2", "-r", "pump swap", "--user", "ann", "--json")
    assert locked.json()["changes"] == [{"target": "c2", "before": "auto", "after": "maintenance"}]
    await h.wait_status(lambda s: caisson(s, "c2")["cap_kw"] == 0, "c2's cap at 0")
    await until_holds(
        lambda: h.command("c2", "plc_cap") == 0 and h.command("c2", "compute_cap") == 0,
        "c2's PLC and compute manager capped at 0",
    )
    by_design = [
        a.name
        for a in h.site.config.alarms
        if a.scope == "caisson" and "lockout" in a.suppressed_in
    ]
    assert by_design

    async def c2_suppressed() -> dict[str, str] | None:
        _, answer = await h.api("GET", API + "/alarms?all=true")
        states = {a["alarm"]: a["state"] for a in answer["alarms"]}
        return states if all(states[f"c2.{n}"] == "suppressed" for n in by_design) else None

    await until(c2_suppressed, "c2's alarms suppressed")
    document, listing = await asyncio.gather(
        h.cli("status", "--json"), h.cli("alarms", "list", "--all", "--json")
    )
    status = document.json()
    c2 = caisson(status, "c2")
    assert (c2["control_mode"], c2["locked_out"], c2["cap_kw"]) == ("maintenance", True, 0.0)
    assert "lockout" in c2["interlocks"]
    for other in ("c1", "c3"):
        assert (caisson(status, other)["control_mode"], caisson(status, other)["locked_out"]) == (
            "auto",
            False,
        )
    listed = listing.json()["alarms"]
    states = {a["alarm"]: a["state"] for a in listed}
    for name in by_design:
        assert states[f"c2.{name}"] == "suppressed", name
        assert states[f"c1.{name}"] != "suppressed", name  # the lockout is c2's only
    assert states["c2.compute_comm_lost"] == "suppressed"  # the controller's own alarms too
    assert states["c2.leak"] == "normal"  # not suppressed: a leak is annunciated in maintenance

    # An override cannot power a locked-out caisson: the lockout wins, scan after scan.
    cycles = (await h.status())["cycles"]
    held = await h.cli(
        "override", "c2-skid.it_cap_cmd", "20", "--for", "1m", "-r", "try", "--user", "ann"
    )
    assert held.ok().stdout.startswith("c2-skid.it_cap_cmd: override 20 kW for 60 s")
    try:

        async def three_scans_at_0() -> bool:
            assert h.command("c2", "plc_cap") == 0
            assert h.command("c2", "compute_cap") == 0
            return (await h.status())["cycles"] >= cycles + 3

        await until(three_scans_at_0, "three scans with the override in force")
        assert caisson(await h.status(), "c2")["cap_kw"] == 0
    finally:
        await h.post("/overrides/release", user="ann", point="c2-skid.it_cap_cmd")

    # Hold c1's pump at 80 % for ten minutes.
    held = await h.cli("override", PUMP, "80", "--for", "10m", "-r", "flow test", "--user", "ann")
    assert held.ok().stdout.strip() == f"{PUMP}: override 80 % for 600 s (then back to automatic)"
    table, document = await asyncio.gather(h.cli("status"), h.cli("status", "--json"))
    override = override_of(document.json(), PUMP)
    assert override is not None
    assert (override["value"], override["unit"], override["user"]) == (80, "%", "ann")
    assert 540 < override["remaining_s"] <= 600
    row = table_rows(table.ok().stdout)[PUMP]
    assert row[1:3] == ["80 %", "ann"]
    assert re.fullmatch(r"(9|10) min \d\d s", row[3]), row
    await until_holds(lambda: abs(h.command("c1", "pump_speed") - 0.80) < 0.006, "c1's PLC at 80 %")

    async def image_at_80() -> bool:
        _, answer = await h.api("GET", API + f"/points?pattern={PUMP}")
        return abs(answer["points"][0]["value"] - 80) < 0.6

    await until(image_at_80, "the process image reads 80 % back")
    (point,) = (await h.cli("points", "read", PUMP, "--json")).json()["points"]
    assert point["value"] == pytest.approx(80, abs=0.6)
    assert (point["unit"], point["quality"], point["writable"]) == ("%", "good", True)

    released = await h.cli("release", PUMP, "--user", "ann")
    assert released.ok().stdout.strip() == f"{PUMP}: released, back to automatic"
    assert (await h.status())["overrides"] == []

    # The KPIs of the day so far, as a table and a plot.
    png = tmp_path / "day.png"
    table, document, too_far = await asyncio.gather(
        h.cli("kpi", "--png", str(png)),
        h.cli("kpi", "--json"),
        h.cli("kpi", "--period", "hour", "--ago", "5"),
    )
    for label in ("heat delivered", "IT energy", "ERF", "PUE", "hours computing", "in band"):
        assert label in table.ok().stdout, label
    assert f"plot written to {png}" in table.stdout
    data = png.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    assert data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 100
    assert height > 100
    assert len(data) > 5000  # curves and labels, not an empty canvas
    kpi = document.json()
    assert (kpi["period"], kpi["closed"]) == ("day", False)
    assert kpi["it_energy_kwh"] > 0
    assert kpi["running_h"] > 0
    assert 0 < kpi["coverage"] <= 1
    assert "--ago 5" in too_far.refused(EXIT_BAD_INPUT)

    unlocked = await h.cli("unlock", "c2", "-r", "pump swapped", "--user", "ann", "--json")
    assert unlocked.json()["changes"] == [
        {"target": "c2", "before": "maintenance", "after": "auto"}
    ]

    async def c2_alarms_back() -> bool:
        _, answer = await h.api("GET", API + "/alarms?all=true")
        return all(a["state"] != "suppressed" for a in answer["alarms"] if a["source"] == "c2")

    await until(c2_alarms_back, "c2's alarms no longer suppressed")
    c2 = caisson(await h.status(), "c2")
    assert (c2["control_mode"], c2["locked_out"]) == ("auto", False)
    assert "lockout" not in c2["interlocks"]

    # Each action is in the journal, with who, why, before and after.
    entries = operator_entries(h, since)
    assert len(entries) == 8, entries
    commanded = entries[5][2]  # what automatic control was commanding when the override came
    assert re.fullmatch(r"automatic [\d.]+ %", commanded), commanded
    expected = [
        ("c3", "compute_comm_lost", "unacknowledged", "acknowledged", "ann", "seen on the panel"),
        ("c3-compute", "retry", "", "", "ann", "manager back"),
        ("c2", "control_mode", "auto", "maintenance", "ann", "pump swap"),
        (
            "c2-skid",
            "override it_cap_cmd",
            "automatic 0 kW",
            "override 20 kW for 60 s",
            "ann",
            "try",
        ),
        ("c2-skid", "override it_cap_cmd", "override 20 kW by ann", "automatic", "ann", ""),
        (
            "c1-skid",
            "override pump_speed_cmd",
            commanded,
            "override 80 % for 600 s",
            "ann",
            "flow test",
        ),
        ("c1-skid", "override pump_speed_cmd", "override 80 % by ann", "automatic", "ann", ""),
        ("c2", "control_mode", "maintenance", "auto", "ann", "pump swapped"),
    ]
    assert entries == expected
    # ...which `alarms journal` and `alarms stats` read while the daemon runs
    journal, stats = await asyncio.gather(
        h.cli("alarms", "journal", "--all", "--json"), h.cli("alarms", "stats", "--json")
    )
    shown = [
        (e["source"], e["name"], e["before"], e["after"], e["user"], e["reason"])
        for e in journal.json()["entries"]
        if e["kind"] == "operator"
    ]
    assert shown[: len(expected)] == expected[::-1]  # newest first
    assert stats.json()["annunciations"] >= 1  # c3.compute_comm_lost


# ---------------------------------------------------------------------- overrides


async def test_an_override_expires_and_the_point_goes_back_to_automatic(harness: Harness) -> None:
    h = harness
    # The outlet loop drives the pump well below full speed on this winter morning, so a held
    # 100 % and its end are both visible at the PLC.
    assert h.command("c1", "pump_speed") < 0.95
    since = len(h.journal())
    held = await h.cli("override", PUMP, "100", "--for", "5s", "-r", "purge", "--user", "bob")
    assert held.ok().stdout.strip() == f"{PUMP}: override 100 % for 5 s (then back to automatic)"
    await until_holds(lambda: h.command("c1", "pump_speed") >= 0.995, "c1's PLC held at 100 %")
    await h.wait_status(lambda s: s["overrides"] == [], "the override ends by itself")
    entries = h.journal()[since:]
    assert [(e.source, e.name, e.after, e.user) for e in entries] == [
        ("c1-skid", "override pump_speed_cmd", "override 100 % for 5 s", "bob"),
        ("c1-skid", "override pump_speed_cmd", "automatic", ""),
    ]
    assert entries[1].message == f"{PUMP} override by bob expired: back to automatic"
    assert entries[1].before == "override by bob"
    await until_holds(
        lambda: h.command("c1", "pump_speed") < 0.99, "c1's pump under the loop again"
    )


async def test_a_second_operator_overrides_the_first_and_both_are_journaled(
    harness: Harness,
) -> None:
    h = harness
    since = len(h.journal())
    try:
        alice = await h.cli(
            "override", PUMP, "90", "--for", "10m", "-r", "balance", "--user", "alice"
        )
        alice.ok()
        bob = await h.cli(
            "override", PUMP, "95", "--for", "20m", "-r", "more flow", "--user", "bob"
        )
        bob.ok()
        status = (await h.cli("status", "--json")).json()
        assert [o["point"] for o in status["overrides"]] == [PUMP]
        override = status["overrides"][0]
        assert (override["value"], override["user"]) == (95, "bob")
        assert override["remaining_s"] > 600  # bob's lease, not alice's
        await until_holds(
            lambda: abs(h.command("c1", "pump_speed") - 0.95) < 0.006, "c1's PLC at 95 %"
        )
    finally:
        await h.post("/overrides/release", user="test", reason="clean-up", point=PUMP)
    entries = h.journal()[since:]
    assert [(e.user, e.reason, e.after) for e in entries[:2]] == [
        ("alice", "balance", "override 90 % for 600 s"),
        ("bob", "more flow", "override 95 % for 1200 s"),
    ]
    assert entries[0].before.startswith("automatic")
    assert entries[1].before == "override 90 % by alice"


# ---------------------------------------------------------------------- refusals


async def test_without_the_right_token_nothing_changes(harness: Harness, tmp_path: Path) -> None:
    h = harness
    missing = tmp_path / "missing.token"
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token\n")
    wrong.chmod(0o600)
    before_status = await h.status()
    before_journal = h.journal()
    refused_before = h.log.read_text().count('"api_refused"')
    runs = await gather_limited(
        [
            h.cli("set", "outlet", "61", "-r", "x", "--token-file", str(missing)),
            h.cli("lockout", "c2", "-r", "x", "--token-file", str(wrong)),
            h.cli("status", "--token-file", str(wrong)),
            h.cli("alarms", "ack", "*", "--token-file", str(wrong)),
            h.cli(
                "override",
                PUMP,
                "90",
                "--for",
                "10m",
                "-r",
                "x",
                env={**h.env, "BOILER_TOKEN_FILE": str(wrong)},
            ),
        ]
    )
    line = runs[0].refused(EXIT_AUTH)
    assert line.startswith(f"boilerctl: token file {missing}: No such file or directory"), line
    for run in runs[1:]:
        line = run.refused(EXIT_AUTH)
        assert line.startswith("boilerctl: wrong token"), line
    assert h.journal() == before_journal
    after_status = await h.status()
    for key in ("setpoints", "overrides"):
        assert after_status[key] == before_status[key], key
    assert [c["control_mode"] for c in after_status["caissons"]] == [
        c["control_mode"] for c in before_status["caissons"]
    ]
    # the daemon saw the four requests with the wrong token (the missing file sent none)
    await until_holds(
        lambda: h.log.read_text().count('"api_refused"') >= refused_before + 4,
        "the daemon logs the refusals",
    )


BAD_INPUT = [
    # (command, exit code, what its one line says)
    (["override", "c1-skid.nope", "50", "--for", "1m", "-r", "x"], 2, "no point 'nope' on c1-skid"),
    (["lockout", "c9", "-r", "x"], 2, "no caisson 'c9' (there are c1, c2, c3, plant)"),
    (["override", PUMP, "10", "--for", "10m", "-r", "x"], 2, f"{PUMP}: 10 % is outside 30..100 %"),
    (["set", "outlet", "75", "-r", "x"], 2, "75 degC is outside its limits 60..70 degC"),
    (["override", PUMP, "abc", "--for", "10m", "-r", "x"], 2, "'abc': expected a number"),
    (["alarms", "ack", "c9.nothing"], 2, "no alarm 'c9.nothing'"),
    (["alarms", "shelve", "c1.leak", "--for", "30m", "-r", "x"], 1, "critical alarms cannot be"),
    (["release", PUMP], 1, f"{PUMP} has no override to release"),
    (["retry", "nope"], 2, "no device 'nope'"),
    (["points", "read", "nothing.*"], 2, "no point matches 'nothing.*'"),
]

# The daemon's other refusals, sent as raw requests (a `boilerctl` process costs a second of CPU
# here; the commands above show that any refusal becomes one line and its exit code).
REFUSED_REQUESTS: list[tuple[str, dict[str, Any], int, str]] = [
    # (path, body without user and reason, HTTP status, what the error says)
    (
        "/overrides",
        {"point": "c1-skid.pump_speed_feedback", "value": 50, "for_s": 60},
        400,
        "c1-skid.pump_speed_feedback is not a point an operator can override",
    ),
    ("/overrides", {"point": "c9-skid.pump_speed_cmd", "value": 50, "for_s": 60}, 404, "c9-skid"),
    ("/overrides", {"point": PUMP, "value": 50, "for_s": 13 * 3600}, 400, "at most 12 h"),
    ("/overrides", {"point": PUMP, "value": 50, "unit": "degC", "for_s": 60}, 400, "not degC"),
    ("/overrides", {"point": PUMP, "value": 50, "for_s": 0}, 400, "for_s"),
    ("/setpoints", {"name": "outlet", "value": 66, "unit": "degF"}, 400, "in degC, not degF"),
    ("/setpoints", {"name": "nope", "value": 1}, 404, "no setpoint 'nope'"),
    ("/setpoints", {"name": "tank_reserve", "value": 5}, 400, "outside its limits 10..95 %"),
    ("/modes", {"target": "c9", "mode": "manual"}, 404, "no caisson 'c9'"),
    ("/modes", {"target": "c1", "mode": "turbo"}, 400, "mode"),
    ("/alarms/ack", {"alarms": ["c1.leak"]}, 409, "c1.leak is normal: nothing to acknowledge"),
    ("/alarms/ack", {"alarms": []}, 400, "alarms"),
    ("/alarms/shelve", {"alarm": "c9.nothing", "for_s": 60}, 404, "no alarm 'c9.nothing'"),
    # at most a day (docs/CLI.md), whoever asks: not only `boilerctl`, which checks it first
    ("/alarms/shelve", {"alarm": "c1.flow_lo", "for_s": 2 * 86400}, 400, "for_s"),
    ("/alarms/shelve", {"alarm": "c1.flow_lo", "for_s": 1e15}, 400, "for_s"),
    ("/alarms/unshelve", {"alarm": "c1.flow_lo"}, 409, "c1.flow_lo"),
    ("/devices/retry", {"device": "nope"}, 404, "no device 'nope'"),
    ("/overrides/release", {"point": PUMP}, 409, "has no override"),
]


async def test_bad_input_is_one_line_and_changes_nothing(harness: Harness) -> None:
    h = harness
    # the critical alarm the site defines, which a case above tries to shelve
    leak = next(a for a in h.site.config.alarms if a.name == "leak")
    assert leak.priority.value == "critical"
    before_journal = h.journal()
    before_status = await h.status()
    problems = []
    for path, body, code, says in REFUSED_REQUESTS:
        sent = json.dumps({"user": "eve", "reason": "x", **body}).encode()
        status, answer = await h.api("POST", API + path, sent)
        if status != code or set(answer) != {"error"} or says not in answer["error"]:
            problems.append(f"POST {path} {body}: {status} {answer}, expected {code} {says!r}")
    runs = await gather_limited([h.cli(*args) for args, _, _ in BAD_INPUT], limit=2)
    for (args, code, says), run in zip(BAD_INPUT, runs, strict=True):
        try:
            line = run.refused(code)
            assert line.startswith("boilerctl: "), line
            assert says in line, f"{says!r} not in {line!r}"
        except AssertionError as error:
            problems.append(f"{' '.join(args)}: {error}")
    assert not problems, "\n\n".join(problems)
    assert h.journal() == before_journal
    after_status = await h.status()
    for key in ("setpoints", "overrides"):
        assert after_status[key] == before_status[key], key


async def test_a_usage_error_is_exit_2_without_a_traceback(harness: Harness) -> None:
    h = harness
    before_journal = h.journal()
    runs = await gather_limited(
        [
            h.cli("mode", "c1", "abc", "-r", "x"),  # not a mode
            h.cli("set", "outlet", "66"),  # no reason
        ],
        limit=2,
    )
    for run in runs:
        assert run.code == EXIT_BAD_INPUT, str(run)
        assert "Traceback" not in run.stderr, str(run)
        assert "Usage: boilerctl" in run.stderr, str(run)
    assert h.journal() == before_journal


async def test_a_blank_reason_or_an_overlong_user_is_one_line_too(harness: Harness) -> None:
    h = harness
    before_journal = h.journal()
    runs = await gather_limited(
        [
            h.cli("set", "outlet", "66", "-r", ""),
            h.cli("lockout", "c2", "-r", "   "),
            h.cli("override", PUMP, "80", "--for", "1m", "-r", "x", "--user", "u" * 65),
        ]
    )
    assert h.journal() == before_journal
    for run in runs:
        run.refused(EXIT_BAD_INPUT)


# ---------------------------------------------------------------------- the other commands


async def test_setpoint_modes_retry_and_the_read_commands(harness: Harness) -> None:
    h = harness
    since = len(h.journal())
    try:
        changed = await h.cli("set", "outlet", "66", "-r", "colder week", "--user", "ann", "--json")
        assert changed.json() == {
            "changes": [{"target": "setpoint outlet", "before": "65 degC", "after": "66 degC"}],
            "message": "setpoint outlet: 65 degC → 66 degC",
        }
        status = (await h.cli("status", "--json")).json()
        assert (status["setpoints"]["outlet"], status["setpoint_units"]["outlet"]) == (66, "degC")
        # each caisson's outlet setpoint ramps toward the new value (1 K/min in the site file)
        await h.wait_status(
            lambda s: all(65 < c["setpoint_degc"] <= 66 for c in s["caissons"]),
            "the caissons' setpoints ramp toward 66 degC",
        )

        manual = await h.cli("mode", "plant", "manual", "-r", "valve work", "--user", "ann")
        assert manual.ok().stdout.strip() == "plant: auto → manual"
        await h.wait_status(lambda s: s["plant"]["control_mode"] == "manual", "plant in manual")
        assert (await h.cli("status", "--json")).json()["plant"]["control_mode"] == "manual"
        auto = await h.cli("mode", "plant", "auto", "-r", "valve done", "--user", "ann")
        assert auto.ok().stdout.strip() == "plant: manual → auto"
        await h.wait_status(lambda s: s["plant"]["control_mode"] == "auto", "plant in auto")

        retry = await h.cli("retry", "c3-compute", "--user", "ann")
        assert retry.ok().stdout.strip() == "c3-compute: trying to reconnect now"

        shelved = await h.cli("alarms", "shelve", "c1.flow_lo", "--for", "30m", "-r", "sensor swap")
        assert shelved.ok().stdout.startswith("c1.flow_lo shelved until ")
        listed = (await h.cli("alarms", "list", "--json")).json()["alarms"]
        flow_lo = next(a for a in listed if a["alarm"] == "c1.flow_lo")
        assert (flow_lo["state"], flow_lo["shelve_reason"]) == ("shelved", "sensor swap")
        until_ = datetime.fromisoformat(flow_lo["shelved_until"])
        assert timedelta(minutes=29) < until_ - datetime.now(UTC) <= timedelta(minutes=30)
        unshelved = await h.cli("alarms", "unshelve", "c1.flow_lo", "-r", "sensor back")
        assert unshelved.ok().stdout.strip() == "c1.flow_lo unshelved"
        assert (await h.alarm("c1.flow_lo"))["state"] == "normal"
    finally:
        await h.post("/modes", user="test", reason="clean-up", target="plant", mode="auto")
        await h.post("/setpoints", user="test", reason="clean-up", name="outlet", value=65)
    login = os.environ.get("SUDO_USER") or getpass.getuser()
    assert operator_entries(h, since)[:6] == [
        ("plant", "setpoint outlet", "65 degC", "66 degC", "ann", "colder week"),
        ("plant", "control_mode", "auto", "manual", "ann", "valve work"),
        ("plant", "control_mode", "manual", "auto", "ann", "valve done"),
        ("c3-compute", "retry", "", "", "ann", ""),
        ("c1", "flow_lo", "normal", "shelved", login, "sensor swap"),
        ("c1", "flow_lo", "shelved", "normal", login, "sensor back"),
    ]

    read, watch, points_watch = await gather_limited(
        [
            h.cli("points", "read", "c1-skid.*temp*", "--json"),
            h.cli("watch", "--count", "2", "--every", "0.5"),
            h.cli("points", "watch", "c1-skid.*_temp", "--count", "2", "--every", "0.5"),
        ]
    )
    points = {p["point"]: p for p in read.json()["points"]}
    assert {"c1-skid.inlet_temp", "c1-skid.outlet_temp"} <= set(points)
    assert all(name.startswith("c1-skid.") and "temp" in name for name in points)
    for p in points.values():
        assert p["quality"] == "good", p
        assert p["unit"], p
        assert p["value"] is not None, p
        assert p["timestamp"] is not None, p
    for name in ("c1-skid.inlet_temp", "c1-skid.outlet_temp"):
        assert points[name]["unit"] == "degC"
        assert 20 < points[name]["value"] < 90
    rows = table_rows(watch.ok().stdout)
    assert {"c1", "c2", "c3"} <= set(rows), watch.stdout
    rows = table_rows(points_watch.ok().stdout)
    assert {"c1-skid.inlet_temp", "c1-skid.outlet_temp"} <= set(rows), points_watch.stdout
    assert rows["c1-skid.outlet_temp"][2] == "degC"


# ---------------------------------------------------------------------- the API itself


async def test_the_openapi_document_and_raw_requests(harness: Harness) -> None:
    h = harness
    code, document = await h.api("GET", API + "/openapi.json", token=None)
    assert code == 200
    served = {
        (path, method) for path, operations in document["paths"].items() for method in operations
    }
    assert served == {(API + r.path, r.method.lower()) for r in ROUTES}
    schemas = document["components"]["schemas"]
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"
    for route in ROUTES:
        operation = document["paths"][API + route.path][route.method.lower()]
        assert operation["security"] == [{"token": []}]
        answer = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
        assert answer.removeprefix("#/components/schemas/") in schemas
        if route.body is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
            assert body == f"#/components/schemas/{route.body.__name__}"
            assert route.body.__name__ in schemas

    # every GET route answers what the document says
    for route in ROUTES:
        if route.method == "GET":
            code, answer = await h.api("GET", API + route.path)
            assert code == 200, (route.path, answer)
            route.answer.model_validate(answer)

    before = h.journal()
    valid = json.dumps({"user": "eve", "reason": "x", "name": "outlet", "value": 61}).encode()
    code, answer = await h.api("POST", API + "/setpoints", b"{not json")
    assert code == 400
    assert set(answer) == {"error"}
    assert isinstance(answer["error"], str)
    assert answer["error"]
    code, answer = await h.api("POST", API + "/setpoints", valid[:-1] + b', "colour": "red"}')
    assert code == 400
    assert "colour" in answer["error"]
    code, answer = await h.api("GET", API + "/status", token=None)
    assert code == 401
    assert answer["error"].startswith("no token")
    code, answer = await h.api("POST", API + "/setpoints", valid, token=None)
    assert code == 401
    code, answer = await h.api("POST", API + "/setpoints", valid, token="not-the-token")
    assert code == 401
    assert answer["error"].startswith("wrong token")
    m.ErrorAnswer.model_validate(answer)
    assert h.journal() == before
    assert (await h.status())["setpoints"]["outlet"] == 65


# ---------------------------------------------------------------------- restarts


async def test_settings_survive_a_restart_and_a_stopped_daemon_is_gone(harness: Harness) -> None:
    h = harness
    locked = await h.cli("lockout", "c3", "-r", "exchanger cleaning", "--user", "ann")
    locked.ok()
    changed = await h.cli("set", "outlet", "66", "-r", "colder week", "--user", "ann")
    changed.ok()
    try:
        assert await h.stop_daemon(signal.SIGTERM) == 0
        assert not h.address_file.exists()  # removed on the way out
        assert h.token_file.exists()  # kept: the next start uses the same token
        gone = (await h.cli("status")).refused(EXIT_NO_DAEMON)
        assert gone.startswith(f"boilerctl: no daemon running for site {SLUG}"), gone

        await h.start_daemon()
        # a second daemon of the site is refused, and leaves the first one's API alone
        second = await boilerctl("run", "--site", str(DEMO), env=h.env)
        assert "in use by another process" in second.refused(2)
        status = (await h.cli("status", "--json")).json()
        c3 = caisson(status, "c3")
        assert (c3["control_mode"], c3["locked_out"]) == ("maintenance", True)
        assert caisson(status, "c1")["control_mode"] == "auto"
        assert status["setpoints"]["outlet"] == 66
        await until_holds(lambda: h.command("c3", "plc_cap") == 0, "c3 still capped at 0")

        # killed, the daemon cannot remove its address: the next command finds nobody there
        assert await h.stop_daemon(signal.SIGKILL) == -signal.SIGKILL
        assert h.address_file.exists()
        stale = (await h.cli("status")).refused(EXIT_NO_DAEMON)
        assert "no daemon answers" in stale, stale
        await h.start_daemon()
        assert caisson(await h.status(), "c3")["control_mode"] == "maintenance"
    finally:
        if h.daemon is None:
            await h.start_daemon()
        await h.post("/modes", user="test", reason="clean-up", target="c3", mode="auto")
        await h.post("/setpoints", user="test", reason="clean-up", name="outlet", value=65)
    unlocked = await h.wait_status(
        lambda s: caisson(s, "c3")["control_mode"] == "auto" and s["setpoints"]["outlet"] == 65,
        "c3 back in service",
    )
    assert not caisson(unlocked, "c3")["locked_out"]
    log = h.log.read_text()
    assert log.count('"setting_restored"') >= 4  # mode/c3 and setpoint/outlet, twice
    assert "setting_not_restored" not in log
    # each start journals the configuration it loaded: the same files, so "unchanged"
    starts = h.journal("config")
    assert len(starts) >= 3
    assert "unchanged since the last start" in starts[-1].message
    assert starts[-1].before == starts[-1].after != ""

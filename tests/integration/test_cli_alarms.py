"""`boilerctl alarms list|stats` as a user runs them: the installed console script on a journal
file written by `Journal`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from controller.alarms.journal import Journal, journal_path
from controller.alarms.model import AlarmId, Priority, State, Transition
from controller.config.loader import load_site
from tests.plant_helpers import ROOT

BOILERCTL = Path(sys.executable).with_name("boilerctl")


def boilerctl(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BOILERCTL), *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        check=False,
        env=dict(os.environ, COLUMNS="200", **(env or {})),
    )


def annunciate(at: datetime, alarm: AlarmId, priority: Priority) -> Transition:
    return Transition(at, alarm, priority, State.NORMAL, State.UNACKNOWLEDGED, f"{alarm} high")


def write_journal(path: Path, now: datetime) -> None:
    """Over the last 7 days: a burst of 12 alarms 25 s apart 2 days ago (one flood of 550 s),
    each returning 30 minutes later, and an alarm raised 30 h ago and still active (stale);
    10 minutes ago, a shelve by an operator and a mode change."""
    burst = now - timedelta(days=2)
    transitions = []
    for k in range(12):
        raised = annunciate(burst + timedelta(seconds=25 * k), AlarmId("c1", f"a{k}"), Priority.LOW)
        cleared = replace(
            raised,
            at=raised.at + timedelta(minutes=30),
            before=State.UNACKNOWLEDGED,
            after=State.RETURNED_UNACKNOWLEDGED,
        )
        transitions += [raised, cleared]
    transitions.append(annunciate(now - timedelta(hours=30), AlarmId("c2", "leak"), Priority.HIGH))
    journal = Journal(path)
    try:
        journal.record_transitions(transitions)
        journal.record_transitions(
            [
                Transition(
                    now - timedelta(minutes=10),
                    AlarmId("c3", "outlet_temp_hi"),
                    Priority.MEDIUM,
                    State.UNACKNOWLEDGED,
                    State.SHELVED,
                    "c3 outlet 73 °C",
                    user="ann",
                    reason="sensor being replaced",
                    shelved_until=now + timedelta(hours=8),
                )
            ]
        )
        journal.record(
            "mode",
            now - timedelta(minutes=9),
            "plant",
            "plant_mode",
            "plant mode heat → store",
            before="heat",
            after="store",
        )
    finally:
        journal.close()


@pytest.fixture
def journal_file(tmp_path: Path) -> Path:
    path = tmp_path / "site.journal"
    write_journal(path, datetime.now(UTC))
    return path


def test_stats_as_json(journal_file: Path) -> None:
    result = boilerctl("alarms", "stats", "--journal", str(journal_file), "--json")
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert stats["journal"] == str(journal_file)
    assert stats["annunciations"] == 13  # the burst and the stale alarm; a shelve is not one
    assert stats["per_10_min_max"] == 12
    assert stats["peak_hourly"] == 12
    assert stats["floods"] == 1
    assert stats["time_in_flood_s"] == 550
    assert stats["stale"] == ["c2.leak"]
    assert stats["chattering"] == []
    assert stats["priorities"] == {"critical": 0, "high": 1 / 13, "medium": 0, "low": 12 / 13}
    assert stats["acceptable"] is True  # 550 s is 0.09 % of a week; 13 alarms: priorities unjudged
    assert stats["reasons"] == []


def test_stats_with_a_shorter_period(journal_file: Path) -> None:
    # the last 36 hours: no burst, but the stale alarm, raised within them
    result = boilerctl(
        "alarms", "stats", "--journal", str(journal_file), "--since", "36h", "--json"
    )
    assert result.returncode == 0, result.stderr
    stats = json.loads(result.stdout)
    assert (stats["annunciations"], stats["floods"], stats["stale"]) == (1, 0, ["c2.leak"])
    assert stats["priorities"]["high"] == 1


def test_stats_table(journal_file: Path) -> None:
    result = boilerctl("alarms", "stats", "--journal", str(journal_file))
    assert result.returncode == 0, result.stderr
    for text in ("per hour, peak", "time in flood", "9 min 10 s", "EEMUA 191", "acceptable"):
        assert text in result.stdout
    assert "stale: c2.leak" in result.stdout


def test_list_newest_first(journal_file: Path) -> None:
    result = boilerctl("alarms", "journal", "--journal", str(journal_file), "--since", "36h")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    shelve = next(i for i, line in enumerate(lines) if "outlet_temp_hi" in line)
    leak = next(i for i, line in enumerate(lines) if "leak" in line)
    assert shelve < leak  # newest first
    assert "ann / sensor being replaced" in lines[shelve]
    assert "unack → shelved" in lines[shelve]
    assert "normal → unack" in lines[leak]
    assert "plant_mode" not in result.stdout  # alarms only, by default
    assert "a11" not in result.stdout  # the burst is 2 days old

    # the default: the last 24 h, alarms only; --all adds the other entries
    result = boilerctl("alarms", "journal", "--journal", str(journal_file), "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)["entries"]
    assert [(e["kind"], e["name"]) for e in entries] == [("operator", "outlet_temp_hi")]
    result = boilerctl("alarms", "journal", "--journal", str(journal_file), "--all", "--json")
    assert result.returncode == 0, result.stderr
    entries = json.loads(result.stdout)["entries"]
    assert [(e["kind"], e["name"]) for e in entries] == [
        ("mode", "plant_mode"),
        ("operator", "outlet_temp_hi"),
    ]
    assert entries[1]["user"] == "ann"
    assert entries[1]["shelved_until"] is not None

    result = boilerctl(
        "alarms", "journal", "--journal", str(journal_file), "--since", "7d", "--json"
    )
    assert len(json.loads(result.stdout)["entries"]) == 26  # 24 of the burst, leak, shelve


def test_the_site_option_finds_the_journal_and_shows_local_time(tmp_path: Path) -> None:
    site = ROOT / "sites" / "demo.yaml"
    loaded = load_site(site)
    state = tmp_path / "state"
    path = journal_path(loaded, {"STATE_DIRECTORY": str(state)})
    now = datetime.now(UTC)
    write_journal(path, now)
    result = boilerctl(
        "alarms", "journal", "--site", str(site), "--json", env={"STATE_DIRECTORY": str(state)}
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["journal"] == str(path)
    result = boilerctl(
        "alarms", "journal", "--site", str(site), env={"STATE_DIRECTORY": str(state)}
    )
    assert result.returncode == 0, result.stderr
    assert loaded.config.site.timezone in result.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--journal", "missing.journal"], "alarms stats: missing.journal: no journal file"),
        (
            ["--journal", "x.journal", "--site", "sites/demo.yaml"],
            "alarms stats: give --site FILE or --journal FILE",
        ),
        ([], "alarms stats: give --site FILE or --journal FILE"),
        (["--journal", "J", "--since", "last week"], "alarms stats: --since last week: give"),
        (["--journal", "J", "--since", "0h"], "alarms stats: --since 0h: the duration must be"),
    ],
)
def test_one_line_errors(journal_file: Path, args: list[str], message: str) -> None:
    args = [str(journal_file) if a == "J" else a for a in args]
    result = boilerctl("alarms", "stats", *args)
    assert result.returncode == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message)


def test_a_file_that_is_not_a_journal(tmp_path: Path) -> None:
    other = tmp_path / "other.journal"
    other.write_text("not a database, just text long enough to be a file header..." * 20)
    result = boilerctl("alarms", "journal", "--journal", str(other))
    assert result.returncode == 2
    assert len(result.stderr.splitlines()) == 1
    assert "not a readable journal" in result.stderr

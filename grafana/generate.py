"""The dashboards of digital-boiler sites (five of a site, one of the fleet), generated with
grafana-foundation-sdk (its Grafana 11.6 flavour), written to grafana/dashboards/*.json. The JSON
is committed: after a change here, run `.venv/bin/python grafana/generate.py` and commit both (a
unit test fails while they differ).

Every query is raw InfluxQL on the historian's schema (docs/HISTORIAN.md) through the provisioned
data source `boiler-influxdb`; `$site` picks the plant on every dashboard. Panel descriptions are
written for the operator: what the panel shows, what normal looks like, what to do if it is not.

    .venv/bin/python grafana/generate.py           # write the files
    .venv/bin/python grafana/generate.py --check   # exit 1 if the committed files are stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

if __package__ in (None, ""):  # run as a script: import this folder as the `grafana` package
    sys.path[0] = str(Path(__file__).resolve().parent.parent)

from grafana_foundation_sdk.cog.encoder import JSONEncoder

from grafana import alarms, caisson, energy, fleet, health, overview
from grafana.influxql import DashboardQuery, dashboard_queries

DASHBOARDS_DIR = Path(__file__).resolve().parent / "dashboards"

__all__ = [
    "DashboardQuery",
    "dashboard_queries",
    "dashboards",
    "main",
    "render",
]


def dashboards() -> dict[str, dict[str, Any]]:
    """{file name: dashboard JSON} for grafana/dashboards/."""
    boards = [
        overview.board(),
        caisson.board(),
        alarms.board(),
        energy.board(),
        health.board(),
        fleet.board(),
    ]
    result: dict[str, dict[str, Any]] = {}
    for board in boards:
        built = board.build()
        document: dict[str, Any] = json.loads(json.dumps(built, cls=JSONEncoder))
        result[board.uid.removeprefix("boiler-") + ".json"] = document
    return result


def render(document: dict[str, Any]) -> str:
    """A dashboard's file content, byte for byte."""
    return json.dumps(document, sort_keys=True, indent=2) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if a committed file differs (write nothing)"
    )
    options = parser.parse_args(argv)
    generated = {name: render(document) for name, document in dashboards().items()}
    stale = sorted(
        name
        for name, text in generated.items()
        if not (DASHBOARDS_DIR / name).is_file()
        or (DASHBOARDS_DIR / name).read_text(encoding="utf-8") != text
    )
    extra = sorted(p.name for p in DASHBOARDS_DIR.glob("*.json") if p.name not in generated)
    if options.check:
        for name in stale:
            print(f"grafana/dashboards/{name} is stale: run .venv/bin/python grafana/generate.py")
        for name in extra:
            print(f"grafana/dashboards/{name} is not generated: remove it")
        return 1 if stale or extra else 0
    DASHBOARDS_DIR.mkdir(parents=True, exist_ok=True)
    for name in stale:
        (DASHBOARDS_DIR / name).write_text(generated[name], encoding="utf-8")
        print(f"wrote grafana/dashboards/{name}")
    for name in extra:
        print(f"grafana/dashboards/{name} is not generated: remove it if it is obsolete")
    return 0


if __name__ == "__main__":
    sys.exit(main())

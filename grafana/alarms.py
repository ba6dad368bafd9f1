"""Alarms and events: the journals (`boiler-alarms-events`)."""

from __future__ import annotations

from grafana.panels import (
    ALARM_STATES,
    COUNT,
    QUALITIES,
    Board,
    override,
    q,
    site_variable,
    stat_panel,
    table_panel,
    tag_variable,
    threshold_lines,
    thresholds,
    timeseries_panel,
    where,
)

ALARMS = "\"kind\" = 'alarm'"
KINDS = '"kind" =~ /^$kind$/'


def board() -> Board:
    board = Board(
        "boiler-alarms-events",
        "Alarms and events",
        "The journal of alarms, mode changes, operator actions and configuration reloads, the "
        "alarm rate against the EEMUA 191 flood limit, and the communication quality journal.",
        ["alarms"],
    )
    board.builder.time("now-24h", "now").refresh("1m").with_variable(site_variable())
    board.builder.annotations([])  # the journal is the content here: no markers
    board.builder.with_variable(
        tag_variable(
            "kind",
            "Kind",
            "Which events to list: alarm, mode, operator, config.",
            'SHOW TAG VALUES FROM "event" WITH KEY = "kind" WHERE "site" =~ /^$site$/',
        )
    )
    raised = f"{ALARMS} AND \"state\" = 'raised'"
    board.add(
        stat_panel(
            "Alarms raised",
            "How many alarms were raised in the time range. Steady operation: about one per "
            "10 minutes at most (EEMUA 191); many more means chattering or a flood: look at "
            "the rate and the journal.",
            COUNT,
            [q(f'SELECT count("message") FROM "event" {where(raised)}', alias="Raised")],
            colors=thresholds("green", (1, "orange")),
            height=6,
        ).no_value("0"),
        timeseries_panel(
            "Alarm rate per 10 minutes",
            "Alarms raised per 10 minutes. Normal: 0 or 1. Orange line (2): more than an "
            "operator can handle in steady state. Red line (10): an alarm flood; deal with the "
            "first alarm of the burst, the others usually follow from it.",
            COUNT,
            [
                q(
                    f'SELECT count("message") FROM "event" {where(raised)} '
                    "GROUP BY time(10m) fill(0)",
                    alias="Alarms raised",
                )
            ],
            bars=True,
            height=6,
        )
        .thresholds(thresholds("green", (2, "orange"), (10, "red")))
        .thresholds_style(threshold_lines())
        .min(0),
        table_panel(
            "Alarm states",
            "Each alarm seen in the time range and its latest state. Raised (red): still "
            "active; Cleared (green): returned to normal.",
            [
                q(
                    'SELECT last("state") AS "state", last("message") AS "message" '
                    f'FROM "event" {where(ALARMS)} '
                    'GROUP BY "name", "source"',
                    result_format="table",
                )
            ],
            width=8,
            height=6,
        ).override_by_name(
            "state",
            override(mappings=[ALARM_STATES], custom__cellOptions={"type": "color-text"}),
        ),
    )
    board.add(
        table_panel(
            "Alarm and event journal",
            "Every event in the time range, newest first: alarms (raised, cleared), plant and "
            "PLC mode changes (before, after), operator actions (user, reason) and "
            "configuration reloads. Source: the caisson or device concerned, empty for the "
            "plant. Filter with Kind above, or with the column filters.",
            [
                q(
                    'SELECT "kind", "name", "source", "state", "message", "user", "reason", '
                    f'"before", "after" FROM "event" {where(KINDS)} '
                    "ORDER BY time DESC LIMIT 1000",
                    result_format="table",
                )
            ],
            height=12,
        ).override_by_name(
            "state",
            override(mappings=[ALARM_STATES], custom__cellOptions={"type": "color-text"}),
        ),
    )
    board.add(
        table_panel(
            "Communication quality changes",
            "Every change of a point's quality, newest first: good, stale (its device stopped "
            "answering: the value shown elsewhere is the last good one) or bad, with the "
            "reason (comm_lost, sensor_fault, out_of_range…). Many points of one device at "
            "once: the link to that device; one point alone: its sensor.",
            [
                q(
                    'SELECT "device", "point", "quality", "reason" FROM "point_quality" '
                    f"{where()} ORDER BY time DESC LIMIT 1000",
                    result_format="table",
                )
            ],
            height=10,
        ).override_by_name(
            "quality",
            override(mappings=[QUALITIES], custom__cellOptions={"type": "color-text"}),
        ),
    )
    return board

"""Controller health: the controller itself (`boiler-controller-health`)."""

from __future__ import annotations

from grafana.panels import (
    BYTES,
    COUNT,
    DEVICE,
    EVERY,
    LINK_STATES,
    MS,
    SECONDS,
    TEXT,
    WRITES_PER_MINUTE,
    Board,
    increments,
    q,
    site_variable,
    stat_panel,
    state_panel,
    table_panel,
    tag_variable,
    threshold_lines,
    thresholds,
    timeseries_panel,
    where,
)


def board() -> Board:
    board = Board(
        "boiler-controller-health",
        "Controller health",
        "The supervisory controller itself: scan cycle time and overruns, the links to the "
        "field devices, the historian's spool and delivery, and writes to the devices (flash "
        "wear).",
        ["controller"],
    )
    board.builder.time("now-6h", "now").refresh("30s").with_variable(site_variable())
    board.builder.with_variable(
        tag_variable(
            "device",
            "Device",
            "The field devices to show (tag `device`).",
            'SHOW TAG VALUES FROM "device_health" WITH KEY = "device" WHERE "site" =~ /^$site$/',
        )
    )
    board.annotate_events()

    board.add(
        stat_panel(
            "Cycle time",
            "How long the last scan cycle took (read, decide, write). Normal: well under the "
            "cycle period (1 s by default). Orange above 500 ms, red above 1 s: cycles overrun; "
            "look for a slow device in Communication errors.",
            MS,
            [q(f'SELECT last("cycle_ms") FROM "controller" {where()}', alias="Cycle")],
            decimals=0,
            colors=thresholds("green", (500, "orange"), (1000, "red")),
            sparkline=True,
        ),
        stat_panel(
            "Overruns in range",
            "Scan cycles that took longer than the period, in the time range. Normal: 0. A few "
            "at start-up are expected (connections opening); regular overruns: a device answers "
            "too slowly or the edge box is overloaded.",
            COUNT,
            [
                q(
                    'SELECT sum("n") FROM (SELECT non_negative_difference("overruns") AS "n" '
                    f'FROM "controller" {where()})',
                    alias="Overruns",
                )
            ],
            colors=thresholds("green", (1, "orange")),
        ).no_value("0"),
        stat_panel(
            "Device links",
            "The controller's link to each field device now. OK (green); Suspect (orange): "
            "recent failures, retrying; Failed (red): its values are stale and control uses "
            "its safe behaviour. Failed: check the device's power and network.",
            TEXT,
            [
                q(
                    f'SELECT last("state") FROM "device_health" {where(DEVICE)} GROUP BY "device"',
                    alias="$tag_device",
                )
            ],
            text=True,
            mappings=[LINK_STATES],
            background=True,
            width=8,
        ),
        stat_panel(
            "Spool depth",
            "Points waiting in the historian's spool for the database. Normal: under one batch "
            "(5000 points). Growing: the database is slow or unreachable; nothing is lost "
            "while the spool has room.",
            COUNT,
            [q(f'SELECT last("spool_points") FROM "controller" {where()}', alias="Waiting")],
            colors=thresholds("green", (5000, "orange")),
            sparkline=True,
        ),
        stat_panel(
            "Oldest unsent point",
            "Age of the oldest point not yet in the database. Normal: a few seconds. Red "
            "above 5 minutes (the historian_spool_growing alarm): check the database and the "
            "network to it.",
            SECONDS,
            [q(f'SELECT last("spool_age_s") FROM "controller" {where()}', alias="Age")],
            decimals=0,
            colors=thresholds("green", (60, "orange"), (300, "red")),
        ),
    )
    board.add(
        timeseries_panel(
            "Scan cycle time",
            "Mean and longest scan cycle per interval. Normal: flat, far below the red line "
            "(1 s, the default period). Peaks touching it: overruns; a slow device or a busy "
            "edge box.",
            MS,
            [
                q(
                    'SELECT mean("cycle_ms") AS "mean", max("cycle_ms") AS "max" '
                    f'FROM "controller" {where()} {EVERY} fill(null)',
                    alias="$col",
                )
            ],
        )
        .min(0)
        .thresholds(thresholds("transparent", (1000, "red")))
        .thresholds_style(threshold_lines()),
        timeseries_panel(
            "Overruns, missed ticks and scan failures",
            "Per interval: cycles longer than the period, ticks skipped to catch up, and "
            "cycles whose scan failed. Normal: none after start-up.",
            COUNT,
            [
                q(
                    increments(
                        "controller",
                        {
                            "overruns": "Overruns",
                            "missed_ticks": "Missed ticks",
                            "scan_failures": "Scan failures",
                        },
                        where(),
                    ),
                    alias="$col",
                )
            ],
            bars=True,
        ).min(0),
    )
    board.add(
        timeseries_panel(
            "Communication errors per device",
            "Communication errors with each device per interval (timeouts, refused "
            "connections, exception replies, mismatched or bad frames). Normal: none. A steady "
            "trickle from one device: a flaky link or a gateway short of connections.",
            COUNT,
            [
                q(
                    increments(
                        "device_health", {"comm_errors": "errors"}, where(DEVICE), ', "device"'
                    ),
                    alias="$tag_device",
                )
            ],
            bars=True,
        ).min(0),
        state_panel(
            "Device link state",
            "Each device's link over time: OK (green), Suspect (orange), Failed (red). A red "
            "band is a stretch when that device's values were stale.",
            [
                q(
                    f'SELECT last("state") FROM "device_health" {where(DEVICE)} '
                    f'{EVERY}, "device" fill(null)',
                    alias="$tag_device",
                )
            ],
            mappings=[LINK_STATES],
            unit=TEXT,
        ),
    )
    board.add(
        timeseries_panel(
            "Historian spool: points waiting",
            "Points in the spool not yet accepted by the database. Normal: near 0, a batch at "
            "most. A ramp: the database is unreachable or refuses the data (see the alarms).",
            COUNT,
            [
                q(
                    f'SELECT max("spool_points") FROM "controller" {where()} {EVERY} fill(null)',
                    alias="Points waiting",
                )
            ],
            width=8,
        ).min(0),
        timeseries_panel(
            "Historian spool: size on disk",
            "The spool file's compressed data. It is capped (spool_limit, 256 MB by default): "
            "at the cap the oldest data is evicted and alarmed.",
            BYTES,
            [
                q(
                    f'SELECT max("spool_bytes") FROM "controller" {where()} {EVERY} fill(null)',
                    alias="Spool size",
                )
            ],
            width=8,
        ).min(0),
        timeseries_panel(
            "Historian: oldest unsent point",
            "Age of the oldest point waiting. Red line: 5 minutes, when historian_spool_growing "
            "is raised.",
            SECONDS,
            [
                q(
                    f'SELECT max("spool_age_s") FROM "controller" {where()} {EVERY} fill(null)',
                    alias="Oldest point",
                )
            ],
            width=8,
        )
        .min(0)
        .thresholds(thresholds("transparent", (300, "red")))
        .thresholds_style(threshold_lines()),
    )
    board.add(
        timeseries_panel(
            "Historian delivery",
            "Per interval: points accepted by the database, failed requests, points dropped, "
            "evicted from a full spool, or rejected by the database (malformed; kept aside "
            "for export). Normal: only Sent. Evicted or rejected points are data lost to "
            "Grafana: read the alarm.",
            COUNT,
            [
                q(
                    increments(
                        "controller",
                        {
                            "historian_sent_points": "Sent",
                            "historian_failures": "Failed requests",
                            "historian_dropped_points": "Dropped",
                            "spool_evicted_points": "Evicted",
                            "spool_rejected_points": "Rejected",
                        },
                        where(),
                    ),
                    alias="$col",
                )
            ],
            bars=True,
        ).min(0),
        timeseries_panel(
            "Writes to field devices",
            "Per interval: the writes the controller sent to all devices (setpoints, lease "
            "renewals, heartbeats), and per device the writes that failed or were skipped "
            "(after a failure, or while the device was still busy with earlier writes). "
            "Normal: a steady rate and no failures; failures: see Device link state.",
            COUNT,
            [
                q(
                    increments("controller", {"writes_sent": "Writes sent"}, where()),
                    "A",
                    alias="$col",
                ),
                q(
                    increments(
                        "device_health",
                        {"write_failures": "failed", "writes_skipped": "skipped"},
                        where(DEVICE),
                        ', "device"',
                    ),
                    "B",
                    alias="$tag_device $col",
                ),
            ],
            bars=True,
        ).min(0),
    )
    board.add(
        table_panel(
            "Register writes since start (flash wear)",
            "Writes to each device register since the controller started, heartbeats "
            "excluded, most written first. Registers kept in flash wear out after 100 000 to "
            "300 000 writes: a register climbing fast here is written too often (deadband or "
            "rate limit too tight).",
            [
                q(
                    f'SELECT last("count") AS "writes" FROM "register_writes" {where(DEVICE)} '
                    'GROUP BY "device", "point"',
                    result_format="table",
                )
            ],
            unit=COUNT,
            width=12,
            height=9,
            sort_by="writes",
        ),
        timeseries_panel(
            "Register write rate",
            "Writes per minute to each register. Normal: low and steady (setpoint changes, "
            "lease renewals). A register written every cycle: flash wear; widen its deadband.",
            WRITES_PER_MINUTE,
            [
                q(
                    'SELECT non_negative_derivative(last("count"), 1m) FROM "register_writes" '
                    f'{where(DEVICE)} {EVERY}, "device", "point" fill(none)',
                    alias="$tag_device $tag_point",
                )
            ],
            height=9,
        ).min(0),
    )
    return board

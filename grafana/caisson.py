"""Caisson detail: one caisson, or several to compare (`boiler-caisson-detail`)."""

from __future__ import annotations

from grafana_foundation_sdk.builders import dashboard as dashboard_builders
from grafana_foundation_sdk.models import dashboard as model

from grafana.panels import (
    CAISSON,
    CELSIUS,
    COUNT,
    DEVICE,
    EVERY,
    FLAG,
    HOURS,
    KELVIN,
    KW,
    LINK_STATES,
    LPM,
    PERCENT,
    PLC_MODES,
    QUALITIES,
    RUNNING,
    TEXT,
    Board,
    dashed,
    empty_as,
    override,
    q,
    site_variable,
    stat_panel,
    state_panel,
    table_panel,
    tag_variable,
    threshold_lines,
    thresholds,
    thresholds_json,
    timeseries_panel,
    value_map,
    where,
    with_band,
)

CHIP_MARGIN_K = 3.0  # the margin the supervisor's chip_margin interlock keeps (interlocks.py)


def chip_margin_colours() -> dashboard_builders.ThresholdsConfig:
    return thresholds("red", (0, "orange"), (CHIP_MARGIN_K, "green"))


def board() -> Board:
    board = Board(
        "boiler-caisson-detail",
        "Caisson detail",
        "One caisson (or several, to compare): water temperatures, flow, pump, IT power and "
        "its cap, chip temperature and margin, lease state, interlocks and the communication "
        "with its devices.",
        ["caisson"],
    )
    board.builder.time("now-3h", "now").refresh("30s").with_variable(site_variable())
    board.builder.with_variable(
        tag_variable(
            "caisson",
            "Caisson",
            "The caisson(s) to show (tag `caisson`).",
            'SHOW TAG VALUES FROM "caisson_control" WITH KEY = "caisson" WHERE "site" =~ /^$site$/',
        )
    )
    board.builder.with_variable(
        tag_variable(
            "device",
            "Device",
            "The caisson's field devices (skid PLC, compute manager, heat meter) for the "
            "communication panels.",
            'SHOW TAG VALUES FROM "caisson_skid", "compute_manager", "heat_meter" '
            'WITH KEY = "device" WHERE "site" =~ /^$site$/ AND "caisson" =~ /^$caisson$/',
        )
    )
    board.annotate_events()

    board.add(
        stat_panel(
            "Lease state",
            "The caisson PLC's mode, as the PLC reports it. Remote (green): the supervisor's "
            "lease is held and the PLC follows its setpoints. Local (orange): switched to local "
            "on site, or starting. Local safe (red): the lease expired (no heartbeat for the "
            "lease timeout): pump at its safe speed, IT power capped. Red: check the "
            "communication panels below and Controller health.",
            TEXT,
            [
                q(
                    f'SELECT last("plc_mode") FROM "caisson_skid" {where(CAISSON)} '
                    'GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            mappings=[PLC_MODES],
            background=True,
            width=6,
        ),
        with_band(
            stat_panel(
                "Outlet temperature",
                "Water leaving the caisson, latest reading. Normal: green, in the site's band "
                "(its site file's setpoints). Orange: above the band (low flow?). Red: below "
                "(caisson idle or capped).",
                CELSIUS,
                [
                    q(
                        f'SELECT last("outlet_temp") FROM "caisson_skid" {where(CAISSON)} '
                        'GROUP BY "caisson"',
                        alias="$tag_caisson",
                    )
                ],
                decimals=1,
                background=True,
            )
        ),
        stat_panel(
            "Flow",
            "Water flow through the caisson, latest reading. About 29 L/min carries 20 kW at a "
            "10 K rise. Falling towards the PLC's low-flow limit: the PLC will cut IT power; "
            "check the pump and valves.",
            LPM,
            [
                q(
                    f'SELECT last("flow") FROM "caisson_skid" {where(CAISSON)} GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            decimals=1,
            sparkline=True,
        ),
        stat_panel(
            "IT power and cap",
            "Compute power now (skid meter) and the cap the supervisor commands. Power well "
            "below the cap: the caisson lacks jobs or throttles.",
            KW,
            [
                q(
                    f'SELECT last("it_power") FROM "caisson_skid" {where(CAISSON)} '
                    'GROUP BY "caisson"',
                    "A",
                    alias="$tag_caisson power",
                ),
                q(
                    f'SELECT last("cap_kw") FROM "caisson_control" {where(CAISSON)} '
                    'GROUP BY "caisson"',
                    "B",
                    alias="$tag_caisson cap",
                ),
            ],
            decimals=1,
            width=5,
        ),
        stat_panel(
            "Chip margin",
            "How far the hottest chip is below its throttling temperature (the site file's "
            "chips.throttle), as the controller computes it each cycle. "
            "Normal: 3 K or more. Orange (under 3 K): the supervisor's chip_margin interlock "
            "caps IT power to keep the chips from throttling; a hot inlet or low flow is the "
            "usual cause. Red (0 or less): the chips throttle and jobs slow down.",
            KELVIN,
            [
                q(
                    f'SELECT last("chip_margin_k") FROM "caisson_control" '
                    f'{where(CAISSON)} GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            decimals=1,
            colors=chip_margin_colours(),
            background=True,
            width=5,
        ),
    )
    board.add(
        with_band(
            timeseries_panel(
                "Water temperatures",
                "Inlet and outlet water temperatures and the outlet setpoint. Normal: the outlet "
                "sits on its setpoint inside the band, the inlet 5-15 K below. Outlet far from "
                "the setpoint for minutes: the outlet loop is saturated (pump at a limit); see "
                "Pump speed. Dotted, 'heat balance': the outlet the caisson's heat balance "
                "gives, on the outlet while its sensor is healthy; where the outlet goes flat and "
                "the dotted line leaves it, the sensor reads frozen and the pump follows the "
                "dotted line: check the sensor. "
                "Gaps: the skid did not answer.",
                CELSIUS,
                [
                    q(
                        'SELECT mean("inlet_temp") AS "inlet", mean("outlet_temp") AS "outlet" '
                        f'FROM "caisson_skid" {where(CAISSON)} {EVERY}, "caisson" fill(null)',
                        "A",
                        alias="$tag_caisson $col",
                    ),
                    q(
                        f'SELECT mean("setpoint_c") FROM "caisson_control" {where(CAISSON)} '
                        f'{EVERY}, "caisson" fill(null)',
                        "B",
                        alias="$tag_caisson setpoint",
                    ),
                    q(
                        f'SELECT mean("outlet_estimate_c") FROM "caisson_control" '
                        f'{where(CAISSON)} {EVERY}, "caisson" fill(null)',
                        "C",
                        alias="$tag_caisson heat balance",
                    ),
                ],
            )
            .override_by_query("B", override(custom__lineStyle=dashed()))
            .override_by_query("C", override(custom__lineStyle={"dash": [2, 6], "fill": "dot"}))
        ),
        timeseries_panel(
            "Flow",
            "Water flow through the caisson. Normal: steady, following the pump speed. A drop "
            "with the pump still running: a closed valve, air or a blocked filter.",
            LPM,
            [
                q(
                    f'SELECT mean("flow") FROM "caisson_skid" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    alias="$tag_caisson",
                )
            ],
            width=6,
        ).min(0),
        timeseries_panel(
            "Pump speed",
            "The pump drive's speed feedback and the speed the supervisor commands. Normal: "
            "feedback follows the command. Feedback far from the command: the drive is "
            "faulted, in local, or the PLC is in local safe (pump at its safe speed).",
            PERCENT,
            [
                q(
                    f'SELECT mean("pump_speed_feedback") FROM "caisson_skid" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "A",
                    alias="$tag_caisson feedback",
                ),
                q(
                    f'SELECT mean("pump_speed_cmd_pct") FROM "caisson_control" '
                    f'{where(CAISSON)} {EVERY}, "caisson" fill(null)',
                    "B",
                    alias="$tag_caisson command",
                ),
            ],
            width=6,
        )
        .min(0)
        .max(100)
        .override_by_query("B", override(custom__lineStyle=dashed())),
    )
    board.add(
        timeseries_panel(
            "IT power and cap",
            "Compute power (skid meter), the cap the supervisor commands (dashed) and the power "
            "the compute manager could use with its queued jobs. Normal: power at or under the "
            "cap. Power at the cap while more is available: the plant has no use for more heat.",
            KW,
            [
                q(
                    f'SELECT mean("it_power") FROM "caisson_skid" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "A",
                    alias="$tag_caisson IT power",
                ),
                q(
                    f'SELECT mean("cap_kw") FROM "caisson_control" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "B",
                    alias="$tag_caisson cap",
                ),
                q(
                    f'SELECT mean("available_power") FROM "compute_manager" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "C",
                    alias="$tag_caisson available",
                ),
            ],
        )
        .min(0)
        .override_by_query("B", override(custom__lineStyle=dashed()))
        .override_by_query("C", override(custom__lineStyle={"dash": [2, 6], "fill": "dot"})),
        timeseries_panel(
            "Chip margin to throttling",
            "Throttling temperature (the site file's chips.throttle) minus the hottest chip's "
            "temperature, as the controller computes it each cycle. "
            "Normal: above the orange line (3 K, the margin the supervisor's chip_margin "
            "interlock keeps by capping IT power). Near 0: the chips are about to throttle and "
            "jobs run slower; the inlet is too hot or the flow too low for this load.",
            KELVIN,
            [
                q(
                    f'SELECT min("chip_margin_k") FROM "caisson_control" '
                    f'{where(CAISSON)} {EVERY}, "caisson" fill(null)',
                    alias="$tag_caisson",
                )
            ],
            width=6,
        )
        .thresholds(thresholds("red", (0, "orange"), (CHIP_MARGIN_K, "transparent")))
        .thresholds_style(threshold_lines()),
        timeseries_panel(
            "Hottest chip temperature",
            "The hottest chip of the caisson, from its compute manager. Normal: stable, a few "
            "kelvin under the throttling temperature. Rising with a steady "
            "outlet: the cold plates may be fouled.",
            CELSIUS,
            [
                q(
                    f'SELECT max("chip_temp_max") FROM "compute_manager" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    alias="$tag_caisson",
                )
            ],
            width=6,
        ),
    )
    board.add(
        state_panel(
            "Lease, interlocks and throttling",
            "Over time: the PLC's mode (Remote green, Local orange, Local safe red), whether "
            "the caisson runs, the number of active supervisory interlocks (0 is normal) and "
            "whether the chips throttle. A red band: read the alarm markers and the Active "
            "interlocks panel.",
            [
                q(
                    f'SELECT last("plc_mode") FROM "caisson_skid" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "A",
                    alias="$tag_caisson PLC mode",
                ),
                q(
                    f'SELECT last("running") FROM "caisson_control" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "B",
                    alias="$tag_caisson running",
                ),
                q(
                    f'SELECT last("interlock_count") FROM "caisson_control" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "C",
                    alias="$tag_caisson interlocks",
                ),
                q(
                    f'SELECT last("throttling") FROM "compute_manager" {where(CAISSON)} '
                    f'{EVERY}, "caisson" fill(null)',
                    "D",
                    alias="$tag_caisson chips throttling",
                ),
            ],
            mappings=[PLC_MODES],
            width=16,
        )
        .override_by_query("B", override(mappings=[RUNNING]))
        .override_by_query(
            "C",
            override(
                mappings=[value_map({"0": ("None", "green")})],
                thresholds=thresholds_json([("green", None), ("red", 1)]),
            ),
        )
        .override_by_query("D", override(mappings=[FLAG])),
        stat_panel(
            "Active interlocks",
            "The supervisory interlocks holding the caisson now: inputs_lost (a critical "
            "measurement is stale: safe pump speed and cap), low_flow, pump_fault (cap 0, pump "
            "full), leak, plc_trip (cap 0, out of dispatch), overtemp_1..3 (caps cut in stages "
            "before the PLC trips), chip_margin (cap keeping the chips from throttling), "
            "lockout (maintenance). None is normal; each releases once its cause has gone.",
            TEXT,
            [
                q(
                    f'SELECT last("interlocks") FROM "caisson_control" {where(CAISSON)} '
                    'GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            text=True,
            mappings=[
                empty_as("None", "green"),
                model.RegexMap(
                    options=model.DashboardRegexMapOptions(
                        pattern=".+", result=model.ValueMappingResult(color="red", index=1)
                    )
                ),
            ],
            background=True,
            width=8,
            height=8,
        ),
    )
    board.add(
        stat_panel(
            "Run hours",
            "Hours each caisson has been staged on, over every run of the controller (kept "
            "across restarts). Staging starts the caisson with the fewest hours and stops the "
            "one with the most, and a resting caisson 12 h behind a running one takes over "
            "(the site file's staging.rotate_after): normally the hours stay within about that "
            "of one another. One far behind: it has been unavailable (interlocks, lockout, a "
            "lost link); look at its Lease, interlocks and throttling history.",
            HOURS,
            [
                q(
                    f'SELECT last("run_hours") FROM "caisson_control" {where(CAISSON)} '
                    'GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            decimals=1,
            width=24,
        ),
    )
    board.add(
        state_panel(
            "Device link state",
            "The controller's link to each of the caisson's devices: OK, Suspect (recent "
            "failures, retrying) or Failed (values are stale, control uses its safe behaviour). "
            "Failed for more than a minute: check the device's power and network.",
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
        timeseries_panel(
            "Communication errors",
            "Communication errors with each device per interval (timeouts, refused "
            "connections, exception replies, bad frames). Normal: none. A steady trickle: a "
            "flaky link or a gateway near its connection limit; a burst: a reboot.",
            COUNT,
            [
                q(
                    f'SELECT non_negative_difference(last("comm_errors")) FROM "device_health" '
                    f'{where(DEVICE)} {EVERY}, "device" fill(none)',
                    alias="$tag_device",
                )
            ],
            bars=True,
        ).min(0),
    )
    board.add(
        table_panel(
            "Point quality changes",
            "Every change of a point's quality on these devices, newest first: good, stale "
            "(the device stopped answering; the value is not fresh) or bad (with the reason). "
            "A point going bad alone (sensor_fault, out_of_range): check that sensor. Every "
            "point of a device going stale together: the link to the device.",
            [
                q(
                    'SELECT "device", "point", "quality", "reason" FROM "point_quality" '
                    f"{where(DEVICE)} ORDER BY time DESC LIMIT 500",
                    result_format="table",
                )
            ],
            height=9,
        ).override_by_name(
            "quality",
            override(mappings=[QUALITIES], custom__cellOptions={"type": "color-text"}),
        ),
    )
    return board

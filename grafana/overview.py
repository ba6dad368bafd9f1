"""Plant overview: the site at a glance (`boiler-plant-overview`)."""

from __future__ import annotations

from grafana.panels import (
    CELSIUS,
    EVERY,
    KW,
    NUMBER,
    PERCENT,
    PLANT_METER,
    PLANT_MODES,
    PLC_MODES,
    TEXT,
    Board,
    color,
    dashed,
    erf_colours,
    gauge_panel,
    override,
    pue_colours,
    q,
    site_variable,
    stat_panel,
    state_panel,
    thresholds,
    timeseries_panel,
    today,
    where,
    with_band,
)


def board() -> Board:
    board = Board(
        "boiler-plant-overview",
        "Plant overview",
        "The site at a glance: plant mode, supply temperature against the site's band, heat "
        "delivered against demand, the buffer tank, every caisson's state, today's ERF and PUE.",
        ["overview"],
    )
    board.builder.time("now-6h", "now").refresh("30s").with_variable(site_variable())
    board.annotate_events()

    board.add(
        stat_panel(
            "Plant mode",
            "What the plant dispatch does with the heat now. Heat delivery: compute follows "
            "the building's demand. Store: the buffer tank is being charged. Reject: the tank "
            "is full and the dry cooler takes the surplus. Shed: the heat cannot go anywhere, "
            "so compute power is being reduced. Safe: the plant's own measurements are "
            "unusable and every caisson runs at its PLC's safe cap. Safe for more than a few "
            "minutes: see Controller health (a silent plant skid?) and Alarms and events.",
            TEXT,
            [q(f'SELECT last("mode") FROM "plant_control" {where()}', alias="Plant mode")],
            text=True,
            mappings=[PLANT_MODES],
            background=True,
        ),
        with_band(
            stat_panel(
                "Supply temperature",
                "Plant supply temperature to the building loop, latest reading, coloured by the "
                "site's band (its site file's setpoints, 60-70 °C by default). Normal: green, in "
                "the band. Red (below it): hot water is not safe from legionella; check that "
                "caissons run and the backup boiler is enabled. Orange (above it): check caisson "
                "flows and the dry cooler.",
                CELSIUS,
                [
                    q(
                        f'SELECT last("plant_supply_temp") FROM "plant_skid" {where()}',
                        alias="Supply",
                    )
                ],
                decimals=1,
                background=True,
                sparkline=True,
            )
        ),
        stat_panel(
            "Heat delivered",
            "Heat flowing to the building now (caissons and backup boiler together), from the "
            "building circuit's flow and temperatures. Compare with Heat demand: both should "
            "be close in steady operation.",
            KW,
            [
                q(
                    f'SELECT last("delivered_kw") FROM "plant_control" {where()}',
                    alias="Delivered",
                )
            ],
            decimals=1,
            sparkline=True,
            width=3,
        ),
        stat_panel(
            "Heat demand",
            "The building's heat load as the controller sees it: the building circuit's flow "
            "and temperatures (backup heat included), smoothed over about 5 minutes, or the "
            "heating curve when those sensors fail. The plant dispatch sizes compute power on "
            "it. It should track Heat delivered with a few minutes' lag.",
            KW,
            [q(f'SELECT last("load_kw") FROM "plant_control" {where()}', alias="Demand")],
            decimals=1,
            sparkline=True,
            width=3,
        ),
        gauge_panel(
            "Tank state of charge",
            "How charged the buffer tank is: the share of its layers between the building's "
            "return temperature (0 %) and the outlet setpoint (100 %). Red below 15 %: no "
            "reserve for a demand peak, the backup boiler will cover it. Orange above 90 %: "
            "nearly full, the next surplus goes to the dry cooler or compute is shed.",
            PERCENT,
            [q(f'SELECT last("soc_pct") FROM "plant_control" {where()}', alias="Tank")],
            colors=thresholds("red", (15, "green"), (90, "orange")),
            minimum=0,
            maximum=100,
            width=4,
        ),
        stat_panel(
            "Today's ERF",
            "Energy reuse factor since local midnight: heat reused on site / electricity "
            "(compute, pumps, fans). Shown for today whatever the time range. Heating season: "
            "0.9 or more is good. Low in summer (little demand) is expected; low in winter "
            "means heat is dumped: see Energy and KPIs.",
            NUMBER,
            [q(today({"erf": "ERF"}))],
            decimals=2,
            colors=erf_colours(),
            width=3,
        ),
        stat_panel(
            "Today's PUE",
            "Power usage effectiveness since local midnight: all electricity / compute "
            "electricity. Normal: 1.01-1.05 (pumps and dry-cooler fans are small). Above 1.1: "
            "check for pumps or fans running at high speed.",
            NUMBER,
            [q(today({"pue": "PUE"}))],
            decimals=3,
            colors=pue_colours(),
            width=3,
        ),
    )
    board.add(
        stat_panel(
            "Caisson PLC mode",
            "Who drives each caisson. Remote (green): the PLC follows the supervisor, whose "
            "lease it keeps renewing. Local (orange): the PLC ignores the supervisor (switched "
            "to local on site, or starting). Local safe (red): the supervisor's lease expired; "
            "the pump runs at its safe speed and IT power is capped. Red: check Controller "
            "health for communication errors with that caisson.",
            TEXT,
            [
                q(
                    f'SELECT last("plc_mode") FROM "caisson_control" {where()} GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            mappings=[PLC_MODES],
            background=True,
            width=8,
            height=5,
        ),
        with_band(
            stat_panel(
                "Caisson outlet temperature",
                "Water leaving each caisson, latest reading. Normal: green, in the site's band, "
                "near the outlet setpoint. Orange: hotter than the band; the PLC warns a few "
                "kelvin above and cuts IT power on over-temperature. Red: too cold to heat hot "
                "water (caisson idle or flow too high).",
                CELSIUS,
                [
                    q(
                        f'SELECT last("outlet_temp") FROM "caisson_skid" {where()} '
                        'GROUP BY "caisson"',
                        alias="$tag_caisson",
                    )
                ],
                decimals=1,
                background=True,
                width=8,
                height=5,
            )
        ),
        stat_panel(
            "Caisson IT power",
            "Electric power of each caisson's servers, from its skid meter; nearly all of it "
            "becomes heat in the water. 0 kW while the plant needs heat: the caisson is tripped, "
            "idle or capped; see Caisson detail.",
            KW,
            [
                q(
                    f'SELECT last("it_power") FROM "caisson_skid" {where()} GROUP BY "caisson"',
                    alias="$tag_caisson",
                )
            ],
            decimals=1,
            width=8,
            height=5,
        ),
    )
    board.add(
        with_band(
            timeseries_panel(
                "Supply temperature and the site's band",
                "Plant supply to the building loop, building supply after the heat exchanger, "
                "and the top of the buffer tank, over the site's band (shaded green). Normal: the "
                "plant supply stays in the band. Long stretches in red (below it): hot water is "
                "at legionella risk; "
                "check the caissons run and the backup boiler. Gaps: the plant skid did not "
                "answer (see Controller health).",
                CELSIUS,
                [
                    q(
                        'SELECT mean("plant_supply_temp") AS "Plant supply", '
                        'mean("building_supply_temp") AS "Building supply", '
                        'mean("tank_temp_top") AS "Tank top" '
                        f'FROM "plant_skid" {where()} {EVERY} fill(null)',
                        alias="$col",
                    )
                ],
            )
        ),
        timeseries_panel(
            "Heat delivered against demand",
            "Heat delivered to the building (from the building circuit's flow and "
            "temperatures), the caissons' heat (the plant heat meter on their circuit), the "
            "demand the dispatch works with (dashed: the building load, smoothed), and the "
            "backup boiler's part. Normal: delivered and demand follow each other, backup only "
            "in cold spells or peaks. Backup high while caissons are capped or idle: see "
            "Caisson detail. Delivered and demand apart for hours: a building-circuit sensor "
            "reads wrong.",
            KW,
            [
                q(
                    f'SELECT mean("delivered_kw") FROM "plant_control" {where()} '
                    f"{EVERY} fill(null)",
                    "A",
                    alias="Delivered to the building",
                ),
                q(
                    f'SELECT mean("power") FROM "heat_meter" {where(PLANT_METER)} '
                    f"{EVERY} fill(null)",
                    "D",
                    alias="Caissons' heat (heat meter)",
                ),
                q(
                    f'SELECT mean("load_kw") FROM "plant_control" {where()} {EVERY} fill(null)',
                    "B",
                    alias="Demand (estimate)",
                ),
                q(
                    f'SELECT mean("backup_heat") FROM "plant_skid" {where()} {EVERY} fill(null)',
                    "C",
                    alias="Backup boiler",
                ),
            ],
        )
        .override_by_query("A", override(color=color("green"), custom__lineWidth=2))
        .override_by_query("B", override(color=color("blue"), custom__lineStyle=dashed()))
        .override_by_query("C", override(color=color("orange")))
        .override_by_query("D", override(color=color("red"))),
    )
    board.add(
        state_panel(
            "Plant mode and caisson PLC modes",
            "The plant mode and each caisson PLC's mode over time. Normal: Heat delivery or "
            "Store for the plant, Remote for every caisson. Red bands: the plant went to Safe or "
            "a caisson lost its lease (Local safe); the alarm markers show why.",
            [
                q(
                    f'SELECT last("mode") FROM "plant_control" {where()} {EVERY} fill(null)',
                    "A",
                    alias="Plant",
                ),
                q(
                    f'SELECT last("plc_mode") FROM "caisson_control" {where()} '
                    f'{EVERY}, "caisson" fill(null)',
                    "B",
                    alias="$tag_caisson PLC",
                ),
            ],
            mappings=[PLANT_MODES, PLC_MODES],
        ),
        timeseries_panel(
            "Buffer tank and dry cooler",
            "Buffer tank state of charge and the dry cooler's duty. Normal: the tank charges "
            "when demand is low and discharges in peaks; the dry cooler runs only with the "
            "tank nearly full. Dry cooler running with the tank low: heat is wasted; check the "
            "plant mode.",
            PERCENT,
            [
                q(
                    'SELECT mean("soc_pct") AS "Tank state of charge", '
                    'mean("dry_cooler_pct") AS "Dry cooler" '
                    f'FROM "plant_control" {where()} {EVERY} fill(null)',
                    alias="$col",
                )
            ],
        )
        .min(0)
        .max(100),
    )
    board.add(
        with_band(
            timeseries_panel(
                "Caisson outlet temperatures",
                "Water leaving each caisson. Normal: each line flat near the outlet setpoint, "
                "inside the green band. A line dropping: that caisson stopped or lost IT power. "
                "A line rising into orange: its flow is too low; see Caisson detail.",
                CELSIUS,
                [
                    q(
                        f'SELECT mean("outlet_temp") FROM "caisson_skid" {where()} '
                        f'{EVERY}, "caisson" fill(null)',
                        alias="$tag_caisson",
                    )
                ],
            )
        ),
        timeseries_panel(
            "IT power per caisson",
            "Compute power of each caisson, stacked, against the total the plant dispatch "
            "asks for (dashed). Normal: the stack follows the target. Stack below target: "
            "caissons are capped, tripped or have no jobs.",
            KW,
            [
                q(
                    f'SELECT mean("it_power") FROM "caisson_skid" {where()} '
                    f'{EVERY}, "caisson" fill(null)',
                    "A",
                    alias="$tag_caisson",
                ),
                q(
                    f'SELECT mean("it_target_kw") FROM "plant_control" {where()} '
                    f"{EVERY} fill(null)",
                    "B",
                    alias="Dispatch target",
                ),
            ],
            stacked=True,
        ).override_by_query(
            "B",
            override(
                color=color("text"),
                custom__stacking={"group": "target", "mode": "none"},
                custom__lineStyle=dashed(),
                custom__fillOpacity=0,
            ),
        ),
    )
    return board

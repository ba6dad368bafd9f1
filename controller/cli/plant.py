"""The maintenance commands on the running daemon: status, watch, points, set, override, release,
mode, lockout, unlock, retry, reset-trip. Each is one request to the daemon's local API (never a
connection of its own to a field device); every change is journaled by the daemon with the user
and reason."""

from __future__ import annotations

import time
from typing import Annotated
from zoneinfo import ZoneInfo

import typer

from controller.api import models as m
from controller.api.client import ApiClient, ClientError
from controller.cli import views
from controller.cli.live import current_level, live_view
from controller.cli.remote import (
    JsonOption,
    OptionalReason,
    ReasonOption,
    SiteOption,
    TokenOption,
    UserOption,
    act,
    build,
    console,
    daemon,
    emit,
    fail,
    parse_duration,
    parse_value,
    user_name,
)
from controller.control.operator import PLANT, ControlMode

EveryOption = Annotated[
    float, typer.Option("--every", min=0.2, help="Seconds between two refreshes.")
]
CountOption = Annotated[
    int | None, typer.Option("--count", min=1, help="Stop after this many refreshes.")
]


def status(site: SiteOption, token_file: TokenOption = None, as_json: JsonOption = False) -> None:
    """The site now: plant mode, each caisson, overrides in force, devices and alarms."""
    with daemon(site, token_file) as client:
        answer = client.get("/status", m.Status)
    emit(answer, as_json, lambda: console().print(views.status_view(answer, _zone(answer))))


def watch(
    site: SiteOption,
    token_file: TokenOption = None,
    every: EveryOption = 1.0,
    count: CountOption = None,
) -> None:
    """`status`, refreshed until Ctrl-C (or --count refreshes)."""
    with daemon(site, token_file) as client:
        _live(client, every, count, lambda: _status_view(client))


def points_read(
    site: SiteOption,
    pattern: Annotated[str, typer.Argument(help="DEVICE.POINT, wildcards allowed: 'c1-*.temp*'.")],
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """The process image's points matching PATTERN: value, unit, quality, time acquired."""
    with daemon(site, token_file) as client:
        answer = client.get("/points", m.Points, {"pattern": pattern})
        zone = _zone(client.get("/status", m.Status))
    emit(answer, as_json, lambda: console().print(views.points_table(answer, zone)))


def points_watch(
    site: SiteOption,
    pattern: Annotated[str, typer.Argument(help="DEVICE.POINT, wildcards allowed.")],
    token_file: TokenOption = None,
    every: EveryOption = 1.0,
    count: CountOption = None,
) -> None:
    """The points matching PATTERN, refreshed until Ctrl-C (or --count refreshes)."""
    with daemon(site, token_file) as client:
        zone = _zone(client.get("/status", m.Status))
        _live(
            client,
            every,
            count,
            lambda: views.points_table(client.get("/points", m.Points, {"pattern": pattern}), zone),
        )


def set_setpoint(
    site: SiteOption,
    name: Annotated[str, typer.Argument(help="outlet (degC) or tank_reserve (%).")],
    value: Annotated[str, typer.Argument(help="The new value, optionally with its unit.")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change a setpoint, within its engineering limits (a reason is required)."""
    number, unit = parse_value(value, name)
    request = build(
        m.SetpointRequest, user=user_name(user), reason=reason, name=name, value=number, unit=unit
    )
    act("/setpoints", request, site, token_file, as_json)


def override(
    site: SiteOption,
    point: Annotated[str, typer.Argument(help="DEVICE.POINT of a writable point.")],
    value: Annotated[str, typer.Argument(help="In the point's unit (80 for 80 %), or on/off.")],
    lease: Annotated[str, typer.Option("--for", help="How long: 90s, 10m, 2h (at most 12 h).")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Hold a writable point at VALUE for a while; then it goes back to automatic by itself.

    The interlocks still win, and a pump is never held below its minimum speed. A later
    override of the same point by anyone replaces this one (both are journaled).
    """
    number, unit = parse_value(value, point)
    seconds = parse_duration(lease, "--for")
    request = build(
        m.OverrideRequest,
        user=user_name(user),
        reason=reason,
        point=point,
        value=number,
        unit=unit,
        for_s=seconds,
    )
    act("/overrides", request, site, token_file, as_json)


def release(
    site: SiteOption,
    point: Annotated[str, typer.Argument(help="DEVICE.POINT of an override in force.")],
    reason: OptionalReason = "",
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """End an override now: the point goes back to automatic."""
    request = build(m.ReleaseRequest, user=user_name(user), reason=reason, point=point)
    act("/overrides/release", request, site, token_file, as_json)


def mode(
    site: SiteOption,
    target: Annotated[str, typer.Argument(help="A caisson id, or 'plant'.")],
    new_mode: Annotated[
        ControlMode, typer.Argument(metavar="MODE", help="auto, manual, maintenance.")
    ],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the control mode of a caisson or of the plant.

    auto: the controllers run. manual: outputs frozen where they are, moved by overrides.
    maintenance: locked out — caps to 0, out of dispatch, alarms suppressed by design.
    """
    request = build(
        m.ModeRequest, user=user_name(user), reason=reason, target=target, mode=new_mode
    )
    act("/modes", request, site, token_file, as_json)


def lockout(
    site: SiteOption,
    caisson: Annotated[str, typer.Argument(help="The caisson to lock out.")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Maintenance lockout of a caisson: caps to 0, out of dispatch, its alarms suppressed. It
    stays locked out across daemon restarts until `unlock`."""
    if caisson == PLANT:
        fail("lockout takes a caisson; for the whole plant: boilerctl mode plant maintenance")
    request = build(
        m.ModeRequest,
        user=user_name(user),
        reason=reason,
        target=caisson,
        mode=ControlMode.MAINTENANCE,
    )
    act("/modes", request, site, token_file, as_json)


def unlock(
    site: SiteOption,
    caisson: Annotated[str, typer.Argument(help="The caisson to return to service.")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Return a locked-out caisson to automatic control."""
    if caisson == PLANT:
        fail("unlock takes a caisson; for the whole plant: boilerctl mode plant auto")
    request = build(
        m.ModeRequest, user=user_name(user), reason=reason, target=caisson, mode=ControlMode.AUTO
    )
    act("/modes", request, site, token_file, as_json)


def retry(
    site: SiteOption,
    device: Annotated[str, typer.Argument(help="The device id (site file).")],
    reason: OptionalReason = "",
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reconnect to a device now instead of waiting out its backoff (after fixing a cable)."""
    request = build(m.RetryRequest, user=user_name(user), reason=reason, device=device)
    act("/devices/retry", request, site, token_file, as_json)


def reset_trip(
    site: SiteOption,
    caisson: Annotated[str, typer.Argument(help="The caisson whose PLC trips to reset.")],
    reason: ReasonOption,
    user: UserOption = None,
    token_file: TokenOption = None,
    as_json: JsonOption = False,
) -> None:
    """Reset a caisson's PLC trips after the repair (a leak or a pump fault stays tripped until
    then); says which trips cleared.

    Refused (exit 1) while a trip's cause is still there: a wet drip tray, a drive in fault, the
    outlet at its trip level, low flow with the pump running. After a leak or pump fault the PLC
    restarts the pump and proves the flow before it lets IT power back.
    """
    request = build(m.TripResetRequest, user=user_name(user), reason=reason, caisson=caisson)
    act("/trips/reset", request, site, token_file, as_json)


# ---------------------------------------------------------------- shared


def _zone(status: m.Status) -> ZoneInfo:
    return ZoneInfo(status.timezone)


def _status_view(client: ApiClient) -> views.RenderableType:
    answer = client.get("/status", m.Status)
    return views.status_view(answer, _zone(answer))


def _live(client: ApiClient, every: float, count: int | None, render: views.ViewFactory) -> None:
    """Refresh `render()` every `every` s until Ctrl-C or `count` views; off a terminal each view
    is printed in turn (a log of views). On a terminal, logs show above the view, never through
    it. A daemon that goes away ends it with its line."""
    out = console()
    shown = 0
    try:
        if out.is_terminal:
            with live_view(render, current_level(), None) as refresh:
                refresh()
                shown += 1
                while count is None or shown < count:
                    time.sleep(every)
                    refresh()
                    shown += 1
            return
        out.print(render())
        shown += 1
        while count is None or shown < count:
            time.sleep(every)
            out.print(render())
            shown += 1
    except KeyboardInterrupt:
        return
    except ClientError as error:
        fail(str(error), error.code)

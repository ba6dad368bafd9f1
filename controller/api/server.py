"""The local API over HTTP (aiohttp), on a loopback address or a Unix socket, in the daemon's loop.

Every route but the OpenAPI document needs `Authorization: Bearer <token>`. Requests and answers
are the pydantic models of `models.py`; the OpenAPI document is built from the same route table,
so it cannot drift from what is served. Handlers are quick and most never await the field
devices: an action changes the supervisor's state, which the next scan applies. A trip reset is
the exception: a command to the PLC itself, written at once and read back (a few seconds at most).
"""

from __future__ import annotations

import hmac
import inspect
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from controller.api import models as m
from controller.api.endpoint import Address, ApiAddressError
from controller.api.operations import ApiError, Operations

log = structlog.get_logger(__name__)

PREFIX = "/api/v1"
OPENAPI = f"{PREFIX}/openapi.json"
MAX_BODY = 64 * 1024


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    answer: type[BaseModel]
    call: Callable[[Operations, Any], BaseModel | Awaitable[BaseModel]]
    body: type[BaseModel] | None = None  # JSON body (POST)
    query: type[BaseModel] | None = None  # query string (GET)


class PointsQuery(m.Model):
    pattern: str = "*"  # fnmatch over DEVICE.POINT


class AlarmsQuery(m.Model):
    all: bool = False  # also the alarms in NORMAL


ROUTES = (
    Route("GET", "/status", "Site, plant and caissons now", m.Status, lambda o, _: o.status()),
    Route(
        "GET",
        "/points",
        "The process image's points matching a pattern",
        m.Points,
        lambda o, q: o.points(q.pattern),
        query=PointsQuery,
    ),
    Route(
        "GET",
        "/alarms",
        "The alarms not in NORMAL (all of them with all=true)",
        m.Alarms,
        lambda o, q: o.alarms(q.all),
        query=AlarmsQuery,
    ),
    Route("GET", "/kpi", "KPIs of the open and recent periods, trend", m.Kpi, lambda o, _: o.kpi()),
    Route(
        "GET",
        "/capacity",
        "Where compute can go: IT power the site can take now and ahead",
        m.Capacity,
        lambda o, _: o.capacity(),
    ),
    Route(
        "POST",
        "/alarms/ack",
        "Acknowledge alarms",
        m.ActionAnswer,
        lambda o, b: o.acknowledge(b),
        m.AckRequest,
    ),
    Route(
        "POST",
        "/alarms/shelve",
        "Shelve an alarm for a while",
        m.ActionAnswer,
        lambda o, b: o.shelve(b),
        m.ShelveRequest,
    ),
    Route(
        "POST",
        "/alarms/unshelve",
        "Unshelve an alarm",
        m.ActionAnswer,
        lambda o, b: o.unshelve(b),
        m.UnshelveRequest,
    ),
    Route(
        "POST",
        "/setpoints",
        "Change a setpoint within its limits",
        m.ActionAnswer,
        lambda o, b: o.set_setpoint(b),
        m.SetpointRequest,
    ),
    Route(
        "POST",
        "/overrides",
        "Hold a writable point at a value for a while (a lease)",
        m.ActionAnswer,
        lambda o, b: o.override(b),
        m.OverrideRequest,
    ),
    Route(
        "POST",
        "/overrides/release",
        "End an override now",
        m.ActionAnswer,
        lambda o, b: o.release(b),
        m.ReleaseRequest,
    ),
    Route(
        "POST",
        "/modes",
        "Control mode of a caisson or the plant (auto, manual, maintenance)",
        m.ActionAnswer,
        lambda o, b: o.set_mode(b),
        m.ModeRequest,
    ),
    Route(
        "POST",
        "/trips/reset",
        "Reset a caisson's PLC trips once their causes have gone",
        m.ActionAnswer,
        lambda o, b: o.reset_trip(b),
        m.TripResetRequest,
    ),
    Route(
        "POST",
        "/devices/retry",
        "Reconnect to a device now, without waiting its backoff",
        m.ActionAnswer,
        lambda o, b: o.retry(b),
        m.RetryRequest,
    ),
)


def openapi_document() -> dict[str, Any]:
    models: list[type[BaseModel]] = [m.ErrorAnswer]
    for route in ROUTES:
        models += [route.answer] + ([route.body] if route.body else [])
    _, schemas = models_json_schema(
        [(model, "validation") for model in dict.fromkeys(models)],
        ref_template="#/components/schemas/{model}",
    )
    error = {
        "description": "Refused: one line saying why",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorAnswer"}}},
    }
    paths: dict[str, dict[str, Any]] = {}
    for route in ROUTES:
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": f"{route.method.lower()}{route.path.replace('/', '_')}",
            "security": [{"token": []}],
            "responses": {
                "200": {
                    "description": "OK",
                    "content": {
                        "application/json": {
                            "schema": {"$ref": f"#/components/schemas/{route.answer.__name__}"}
                        }
                    },
                },
                **dict.fromkeys(("400", "401", "404", "409"), error),
            },
        }
        if route.body is not None:
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {
                        "schema": {"$ref": f"#/components/schemas/{route.body.__name__}"}
                    }
                },
            }
        if route.query is not None:
            operation["parameters"] = [
                {
                    "name": name,
                    "in": "query",
                    "required": False,
                    "schema": route.query.model_json_schema()["properties"][name],
                }
                for name in route.query.model_fields
            ]
        paths.setdefault(PREFIX + route.path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": "boilerctl local API", "version": "1"},
        "paths": paths,
        "components": {
            "schemas": schemas.get("$defs", {}),
            "securitySchemes": {"token": {"type": "http", "scheme": "bearer"}},
        },
    }


def build_app(operations: Operations, token: str) -> web.Application:
    app = web.Application(client_max_size=MAX_BODY, middlewares=[_errors, _auth(token)])
    document = openapi_document()

    async def openapi(_: web.Request) -> web.Response:
        return web.json_response(document)

    app.router.add_get(OPENAPI, openapi)
    for route in ROUTES:
        app.router.add_route(route.method, PREFIX + route.path, _handler(operations, route))
    return app


def _handler(operations: Operations, route: Route) -> Callable[[web.Request], Any]:
    async def handle(request: web.Request) -> web.Response:
        argument: BaseModel | None = None
        try:
            if route.body is not None:
                argument = route.body.model_validate_json(await request.read())
            elif route.query is not None:
                argument = route.query.model_validate(dict(request.query))
        except ValidationError as error:
            raise ApiError(400, _validation_message(error)) from None
        answer = route.call(operations, argument)
        if inspect.isawaitable(answer):  # an action on a device: awaits its answer
            answer = await answer
        return web.Response(text=answer.model_dump_json(), content_type="application/json")

    return handle


def _validation_message(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "body"
    more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
    return f"{where}: {first['msg']}{more}"


def _error(status: int, message: str) -> web.Response:
    return web.Response(
        status=status,
        text=m.ErrorAnswer(error=message).model_dump_json(),
        content_type="application/json",
    )


@web.middleware
async def _errors(request: web.Request, handler: Any) -> web.StreamResponse:
    try:
        response: web.StreamResponse = await handler(request)
        return response
    except ApiError as error:
        return _error(error.status, str(error))
    except web.HTTPRequestEntityTooLarge:
        return _error(413, f"request body over {MAX_BODY} bytes")
    except web.HTTPException as error:
        return _error(error.status, f"{request.method} {request.path}: {error.reason}")
    except Exception:
        log.exception("api_handler_failed", method=request.method, path=request.path)
        return _error(500, f"{request.method} {request.path}: internal error (see the daemon log)")


def _auth(token: str) -> Any:
    expected = f"Bearer {token}".encode()

    @web.middleware
    async def auth(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.path != OPENAPI:
            given = request.headers.get("Authorization", "").encode()
            if not hmac.compare_digest(given, expected):
                reason = "wrong token" if given else "no token"
                log.warning("api_refused", path=request.path, reason=reason)
                return _error(401, f"{reason}: send Authorization: Bearer <the site's token file>")
        response: web.StreamResponse = await handler(request)
        return response

    return auth


class ApiServer:
    """Serves the app on TCP or a Unix socket; `address` once started."""

    def __init__(self, app: web.Application, host: str, port: int, socket: Path | None) -> None:
        self.runner = web.AppRunner(app, access_log=None, handle_signals=False)
        self.host, self.port, self.socket = host, port, socket
        self.address: Address | None = None

    async def start(self) -> Address:
        """ApiAddressError when the address cannot be bound (in use, no permission)."""
        await self.runner.setup()
        try:
            if self.socket is not None:
                self.socket.parent.mkdir(parents=True, exist_ok=True)
                self.socket.unlink(missing_ok=True)  # a socket a killed daemon left behind
                site: web.BaseSite = web.UnixSite(self.runner, str(self.socket))
                await site.start()
                self.socket.chmod(0o600)  # the token aside, only its owner may connect
                self.address = Address(socket=str(self.socket))
            else:
                site = web.TCPSite(self.runner, self.host, self.port)
                await site.start()
                port = self.runner.addresses[0][1]  # the port bound (port 0: a free one)
                host = f"[{self.host}]" if ":" in self.host else self.host
                self.address = Address(url=f"http://{host}:{port}")
        except OSError as error:
            await self.runner.cleanup()
            where = f"unix:{self.socket}" if self.socket else f"{self.host}:{self.port}"
            raise ApiAddressError(
                f"local API: cannot listen on {where}: {error.strerror or error}"
            ) from None
        except BaseException:
            await self.runner.cleanup()
            raise
        return self.address

    async def stop(self) -> None:
        await self.runner.cleanup()
        if self.socket is not None:
            self.socket.unlink(missing_ok=True)

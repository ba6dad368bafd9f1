"""The local API's parts: the token and address files, the minute trend, the OpenAPI document, and
the server's authentication and error mapping as `boilerctl` meets them over a real socket (TCP
on loopback and a Unix socket) with a small stand-in for the daemon's operations."""

from __future__ import annotations

import asyncio
import http.client
import json
import os
import re
import stat
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast

import pytest

from controller.api import models as m
from controller.api.client import (
    EXIT_AUTH,
    EXIT_BAD_INPUT,
    EXIT_NO_DAEMON,
    EXIT_REFUSED,
    ApiClient,
    ClientError,
)
from controller.api.endpoint import (
    Address,
    TokenFileError,
    address_path,
    ensure_token,
    read_address,
    read_token,
    remove_address,
    token_path,
    write_address,
)
from controller.api.operations import ApiError, Operations
from controller.api.server import OPENAPI, PREFIX, ROUTES, ApiServer, build_app, openapi_document
from controller.config.loader import LoadedSite, load_site
from controller.control.operator import ControlMode
from controller.daemon import configuration_digest
from controller.trend import Minute, MinuteTrend
from tests.plant_helpers import SITES

TOKEN = "s3cret-token"

# ---------------------------------------------------------------- token file


def test_ensure_token_makes_a_private_token_once(tmp_path: Path) -> None:
    path = tmp_path / "state" / "site.token"  # its directory is made too
    token = ensure_token(path)
    assert len(token) >= 32
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert path.read_text() == token + "\n"
    assert ensure_token(path) == token  # the next start reads it
    assert read_token(path) == token


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604])
def test_a_token_file_others_can_read_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "site.token"
    path.write_text("abc\n")
    path.chmod(mode)
    with pytest.raises(TokenFileError) as refused:
        ensure_token(path)
    message = str(refused.value)
    assert message == (
        f"token file {path} can be read by others (mode {mode:04o}): chmod 600 {path}"
    )
    assert path.read_text() == "abc\n"  # left as it was


def test_an_empty_token_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "site.token"
    path.write_text(" \n")
    path.chmod(0o600)
    with pytest.raises(TokenFileError, match=f"token file {path} is empty: delete it"):
        ensure_token(path)
    with pytest.raises(TokenFileError, match="is empty"):
        read_token(path)


def test_a_missing_token_file_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "site.token"
    with pytest.raises(TokenFileError, match=f"^token file {path}: No such file or directory$"):
        read_token(path)


# ---------------------------------------------------------------- address file


@pytest.mark.parametrize(
    "address",
    [Address(url="http://127.0.0.1:41234"), Address(socket="/run/boilerctl/site.sock")],
    ids=["tcp", "unix"],
)
def test_the_address_file_round_trips(tmp_path: Path, address: Address) -> None:
    path = tmp_path / "state" / "site.api"
    assert read_address(path) is None  # no daemon has started
    write_address(path, address)
    assert read_address(path) == address
    assert json.loads(path.read_text())["pid"] == os.getpid()
    assert [p.name for p in path.parent.iterdir()] == ["site.api"]  # no partial file left
    remove_address(path)
    assert not path.exists()
    assert read_address(path) is None
    remove_address(path)  # stopping twice is fine


@pytest.mark.parametrize(
    "text",
    ['{"url": "http://127.0.0.1:41', "", "\x00\x01garbage", "[1, 2]", "null", '"http://x"'],
    ids=["half-written", "empty", "binary", "list", "null", "string"],
)
def test_a_garbage_address_file_reads_as_none(tmp_path: Path, text: str) -> None:
    path = tmp_path / "site.api"
    path.write_text(text)
    assert read_address(path) is None


@pytest.mark.parametrize(
    "document",
    [{}, {"pid": 12}, {"url": None, "socket": None}, {"url": 5}, {"socket": ["a"]}],
    ids=["empty", "pid-only", "nulls", "number", "list"],
)
def test_an_address_file_without_an_address_reads_as_none(
    tmp_path: Path, document: dict[str, Any]
) -> None:
    path = tmp_path / "site.api"
    path.write_text(json.dumps(document))
    assert read_address(path) is None


def test_str_of_an_address() -> None:
    assert str(Address(url="http://127.0.0.1:1")) == "http://127.0.0.1:1"
    assert str(Address(socket="/tmp/x.sock")) == "unix:/tmp/x.sock"


# ---------------------------------------------------------------- minute trend

T0 = datetime(2026, 1, 15, 10, 0, tzinfo=UTC)


def at(minute: int, second: float) -> datetime:
    return T0 + timedelta(minutes=minute, seconds=second)


def test_minute_averages_ignore_missing_values() -> None:
    trend = MinuteTrend()
    assert trend.points() == []
    trend.add(at(0, 0), 60.0, 10e3, None)
    trend.add(at(0, 20), None, 20e3, None)
    trend.add(at(0, 59.9), 62.0, None, None)
    assert trend.points() == [Minute(T0, 61.0, 15e3, None)]  # the minute in progress
    trend.add(at(1, 0), 70.0, 1e3, 5e3)  # rollover: minute 0 is closed
    assert list(trend.minutes) == [Minute(T0, 61.0, 15e3, None)]
    assert trend.points() == [Minute(T0, 61.0, 15e3, None), Minute(at(1, 0), 70.0, 1e3, 5e3)]
    trend.add(at(3, 30), None, None, None)  # a gap: minute 2 never had a value
    assert trend.points() == [
        Minute(T0, 61.0, 15e3, None),
        Minute(at(1, 0), 70.0, 1e3, 5e3),
        Minute(at(3, 0), None, None, None),
    ]
    assert [p.at for p in trend.points(since=at(1, 0))] == [at(1, 0), at(3, 0)]


def test_the_trend_keeps_at_most_keep_closed_minutes() -> None:
    trend = MinuteTrend(keep=3)
    for minute in range(10):
        trend.add(at(minute, 30), float(minute), None, None)
    assert [p.supply for p in trend.minutes] == [6.0, 7.0, 8.0]
    assert [p.supply for p in trend.points()] == [6.0, 7.0, 8.0, 9.0]  # and the open one


# ---------------------------------------------------------------- OpenAPI document


def refs(node: object) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref":
                yield value
            else:
                yield from refs(value)
    elif isinstance(node, list):
        for item in node:
            yield from refs(item)


def test_the_openapi_document_describes_every_route() -> None:
    document = openapi_document()
    json.dumps(document)  # serialisable as served
    assert document["openapi"].startswith("3.")
    paths = document["paths"]
    assert sum(len(methods) for methods in paths.values()) == len(ROUTES)
    for route in ROUTES:
        operation = paths[PREFIX + route.path][route.method.lower()]
        ok = operation["responses"]["200"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": f"#/components/schemas/{route.answer.__name__}"}
        assert {"400", "401", "404", "409"} <= set(operation["responses"])
        assert operation["security"] == [{"token": []}]
        if route.body is not None:
            body = operation["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{route.body.__name__}"}
            assert route.method == "POST"
        else:
            assert "requestBody" not in operation
        if route.query is not None:
            names = [p["name"] for p in operation["parameters"]]
            assert names == list(route.query.model_fields)
    operation_ids = [op["operationId"] for ops in paths.values() for op in ops.values()]
    assert len(set(operation_ids)) == len(operation_ids)
    schemas = document["components"]["schemas"]
    found = list(refs(document))
    assert found
    for ref in found:
        assert ref.startswith("#/components/schemas/"), ref
        assert ref.removeprefix("#/components/schemas/") in schemas, ref
    assert document["components"]["securitySchemes"]["token"]["scheme"] == "bearer"


def test_request_bodies_reference_the_right_models() -> None:
    paths = openapi_document()["paths"]
    expected = {
        "/alarms/ack": m.AckRequest,
        "/alarms/shelve": m.ShelveRequest,
        "/alarms/unshelve": m.UnshelveRequest,
        "/setpoints": m.SetpointRequest,
        "/overrides": m.OverrideRequest,
        "/overrides/release": m.ReleaseRequest,
        "/modes": m.ModeRequest,
        "/devices/retry": m.RetryRequest,
    }
    for path, model in expected.items():
        body = paths[PREFIX + path]["post"]["requestBody"]["content"]["application/json"]
        assert body["schema"]["$ref"] == f"#/components/schemas/{model.__name__}"
    schemas = openapi_document()["components"]["schemas"]
    assert set(schemas["OverrideRequest"]["required"]) == {
        "user",
        "reason",
        "point",
        "value",
        "for_s",
    }
    assert schemas["ModeRequest"]["properties"]["mode"] == {
        "$ref": "#/components/schemas/ControlMode"
    }
    assert set(schemas["ControlMode"]["enum"]) == {"auto", "manual", "maintenance"}


# ---------------------------------------------------------------- the server over sockets


class FakeOperations:
    """The few operations the tests call; refusals as the real ones make them."""

    def __init__(self) -> None:
        self.calls: list[object] = []

    def points(self, pattern: str) -> m.Points:
        self.calls.append(pattern)
        return m.Points(points=[])

    def set_setpoint(self, request: m.SetpointRequest) -> m.ActionAnswer:
        self.calls.append(request)
        if request.name == "flow":
            raise ApiError(404, "no setpoint 'flow' (there are outlet, tank_reserve)")
        if request.name == "crash":
            raise RuntimeError("a bug")
        change = m.Change(target=f"setpoint {request.name}", before="65", after=f"{request.value}")
        return m.ActionAnswer(changes=[change], message="done")

    def set_mode(self, request: m.ModeRequest) -> m.ActionAnswer:
        self.calls.append(request)
        raise ApiError(409, f"{request.target} is locked out by the site file: edit it")


@pytest.fixture
def operations() -> FakeOperations:
    return FakeOperations()


@pytest.fixture
async def tcp_server(operations: FakeOperations) -> AsyncIterator[ApiServer]:
    server = ApiServer(build_app(cast(Operations, operations), TOKEN), "127.0.0.1", 0, None)
    await server.start()
    yield server
    await server.stop()


def client(server: ApiServer, token: str = TOKEN) -> ApiClient:
    assert server.address is not None
    return ApiClient(server.address, token, "demo", timeout=10.0)


SETPOINT = m.SetpointRequest(user="alice", reason="test", name="outlet", value=66.0)


async def call(function: Any, *args: Any) -> Any:
    """A blocking client call, off the loop that serves it."""
    return await asyncio.to_thread(function, *args)


async def code_of(function: Any, *args: Any) -> tuple[int, str]:
    with pytest.raises(ClientError) as refused:
        await call(function, *args)
    return refused.value.code, str(refused.value)


def raw(
    server: ApiServer,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, bytes]:
    assert server.address is not None
    assert server.address.url is not None
    host, port = server.address.url.removeprefix("http://").rsplit(":", 1)
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request(method, path, body=body, headers=headers or {})
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def one_line_error(payload: bytes) -> str:
    document = json.loads(payload)
    assert set(document) == {"error"}
    error = document["error"]
    assert isinstance(error, str)
    assert error
    assert "\n" not in error
    return error


async def test_an_accepted_action_and_a_query_reach_the_operations(
    tcp_server: ApiServer, operations: FakeOperations
) -> None:
    assert tcp_server.address is not None
    assert tcp_server.address.url is not None
    assert tcp_server.address.url.startswith("http://127.0.0.1:")
    answer = await call(client(tcp_server).post, "/setpoints", SETPOINT, m.ActionAnswer)
    assert answer.changes == [m.Change(target="setpoint outlet", before="65", after="66.0")]
    points = await call(client(tcp_server).get, "/points", m.Points, {"pattern": "c1-*"})
    assert points == m.Points(points=[])
    assert operations.calls == [SETPOINT, "c1-*"]


async def test_a_wrong_or_missing_token_is_refused_with_exit_code_4(
    tcp_server: ApiServer, operations: FakeOperations
) -> None:
    code, message = await code_of(
        client(tcp_server, "wrong").post, "/setpoints", SETPOINT, m.ActionAnswer
    )
    assert code == EXIT_AUTH
    assert message.startswith("wrong token")
    code, _ = await code_of(client(tcp_server, TOKEN + "x").get, "/points", m.Points)
    assert code == EXIT_AUTH
    status, payload = await call(raw, tcp_server, "GET", PREFIX + "/points")
    assert status == 401
    assert one_line_error(payload).startswith("no token")
    status, _ = await call(
        raw, tcp_server, "GET", PREFIX + "/points", None, {"Authorization": TOKEN}
    )
    assert status == 401  # the token without "Bearer"
    assert operations.calls == []  # nothing reached the daemon


async def test_the_openapi_document_is_served_without_a_token(tcp_server: ApiServer) -> None:
    status, payload = await call(raw, tcp_server, "GET", OPENAPI)
    assert status == 200
    assert json.loads(payload) == json.loads(json.dumps(openapi_document()))


async def test_refusals_map_to_exit_codes(
    tcp_server: ApiServer, operations: FakeOperations
) -> None:
    api = client(tcp_server)
    unknown = m.SetpointRequest(user="alice", reason="test", name="flow", value=1.0)
    assert await code_of(api.post, "/setpoints", unknown, m.ActionAnswer) == (
        EXIT_BAD_INPUT,
        "no setpoint 'flow' (there are outlet, tank_reserve)",
    )
    mode = m.ModeRequest(user="alice", reason="test", target="c3", mode=ControlMode.AUTO)
    assert await code_of(api.post, "/modes", mode, m.ActionAnswer) == (
        EXIT_REFUSED,
        "c3 is locked out by the site file: edit it",
    )
    crash = m.SetpointRequest(user="alice", reason="test", name="crash", value=1.0)
    assert await code_of(api.post, "/setpoints", crash, m.ActionAnswer) == (
        EXIT_REFUSED,
        "POST /api/v1/setpoints: internal error (see the daemon log)",
    )
    # A body the route's model refuses (validated by the server): bad input, one line.
    wrong_model = m.ReleaseRequest(user="alice", point="c1-skid.pump_speed_cmd")
    code, message = await code_of(api.post, "/setpoints", wrong_model, m.ActionAnswer)
    assert code == EXIT_BAD_INPUT
    assert re.fullmatch(r"reason: .+ \(and 3 more\)", message), message
    # An unknown route.
    code, message = await code_of(api.get, "/nowhere", m.Points)
    assert (code, message) == (EXIT_BAD_INPUT, "GET /api/v1/nowhere: Not Found")


async def test_a_body_that_is_not_json_is_a_400_in_one_line(
    tcp_server: ApiServer, operations: FakeOperations
) -> None:
    auth = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    status, payload = await call(raw, tcp_server, "POST", PREFIX + "/setpoints", b"{not json", auth)
    assert status == 400
    assert "json" in one_line_error(payload).lower()
    status, payload = await call(raw, tcp_server, "POST", PREFIX + "/setpoints", b"", auth)
    assert status == 400
    one_line_error(payload)
    status, payload = await call(
        raw, tcp_server, "POST", PREFIX + "/setpoints", b"[" + b"1," * 40_000 + b"1]", auth
    )
    assert status == 413
    assert one_line_error(payload) == "request body over 65536 bytes"
    assert operations.calls == []


async def test_a_stopped_server_is_exit_code_3(operations: FakeOperations) -> None:
    server = ApiServer(build_app(cast(Operations, operations), TOKEN), "127.0.0.1", 0, None)
    await server.start()
    api = client(server)
    await call(api.get, "/points", m.Points)
    await server.stop()
    code, message = await code_of(api.get, "/points", m.Points)
    assert code == EXIT_NO_DAEMON
    assert message == f"no daemon answers at {server.address} for site demo (it has stopped)"


async def test_the_unix_socket_is_private_and_serves_the_same_api(
    tmp_path: Path, operations: FakeOperations
) -> None:
    socket = tmp_path / "run" / "api.sock"
    socket.parent.mkdir()
    socket.write_text("left behind by a killed daemon")
    server = ApiServer(build_app(cast(Operations, operations), TOKEN), "127.0.0.1", 0, socket)
    address = await server.start()
    try:
        assert address == Address(socket=str(socket))
        assert stat.S_ISSOCK(socket.stat().st_mode)
        assert stat.S_IMODE(socket.stat().st_mode) == 0o600
        api = client(server)
        answer = await call(api.post, "/setpoints", SETPOINT, m.ActionAnswer)
        assert answer.message == "done"
        code, _ = await code_of(client(server, "wrong").get, "/points", m.Points)
        assert code == EXIT_AUTH
        mode = m.ModeRequest(user="alice", reason="test", target="c3", mode=ControlMode.AUTO)
        code, _ = await code_of(api.post, "/modes", mode, m.ActionAnswer)
        assert code == EXIT_REFUSED
    finally:
        await server.stop()
    assert not socket.exists()
    code, message = await code_of(api.get, "/points", m.Points)
    assert code == EXIT_NO_DAEMON
    assert f"unix:{socket}" in message


# ---------------------------------------------------------------- finding the daemon


@pytest.fixture(scope="module")
def demo_site() -> LoadedSite:
    return load_site(SITES / "demo.yaml")


def test_the_client_finds_the_daemon_from_the_state_directory(
    tmp_path: Path, demo_site: LoadedSite
) -> None:
    environ = {"STATE_DIRECTORY": str(tmp_path)}
    with pytest.raises(ClientError) as refused:
        ApiClient.for_site(demo_site, environ)
    assert refused.value.code == EXIT_NO_DAEMON
    assert str(refused.value).startswith(f"no daemon running for site {demo_site.config.site.slug}")
    address = Address(url="http://127.0.0.1:41234")
    write_address(address_path(demo_site, environ), address)
    with pytest.raises(ClientError) as refused:
        ApiClient.for_site(demo_site, environ)  # no token file
    assert refused.value.code == EXIT_AUTH
    token = ensure_token(token_path(demo_site, environ))
    found = ApiClient.for_site(demo_site, environ)
    assert (found.address, found.token, found.site_name) == (
        address,
        token,
        demo_site.config.site.slug,
    )
    other = tmp_path / "elsewhere.token"
    other.write_text("other\n")
    assert ApiClient.for_site(demo_site, environ, token_file=other).token == "other"


def test_the_configuration_digest_changes_with_any_file(tmp_path: Path) -> None:
    site, device_map = tmp_path / "site.yaml", tmp_path / "skid.yaml"
    site.write_text("site: a\n")
    device_map.write_text("points: []\n")
    first = configuration_digest([site, device_map])
    assert configuration_digest([site, device_map]) == first
    device_map.write_text("points: [x]\n")
    assert configuration_digest([site, device_map]) != first


def test_the_api_does_not_import_the_daemon() -> None:
    """Operations takes a narrow interface (operations.Host), not the Daemon class: the API loads,
    reads and changes without the daemon."""
    probe = (
        "import sys, controller.api.server, controller.api.operations; "
        "print(sorted(m for m in sys.modules if m == 'controller.daemon'))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"

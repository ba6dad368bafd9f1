"""Logs: ours and the libraries' in one format, JSON when not on a terminal."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from controller.logs import configure_logging


@pytest.fixture
def json_logs() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    configure_logging("info", json_lines=True, stream=stream)
    yield stream
    configure_logging("warning", json_lines=False)  # what tests/conftest.py sets


def test_library_and_own_logs_are_json_lines_with_a_level_and_a_utc_time(
    json_logs: io.StringIO,
) -> None:
    structlog.get_logger("controller.test").info("modbus connected", host="127.0.0.1", port=502)
    logging.getLogger("asyncua.client.ua_client").warning("keep-alive late")
    logging.getLogger("asyncua.client.ua_client").info("session renewed")  # below its threshold
    lines = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["modbus connected", "keep-alive late"]
    assert lines[0]["port"] == 502
    assert lines[1]["logger"] == "asyncua.client.ua_client"
    assert {line["level"] for line in lines} == {"info", "warning"}
    assert all(line["timestamp"].endswith("Z") for line in lines)


def test_an_unknown_level_is_refused() -> None:
    with pytest.raises(ValueError, match="log level must be one of debug, info, warning, error"):
        configure_logging("loud")

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


def test_meaningless_library_warnings_are_debug_out_of_the_terminal() -> None:
    """asyncua's "Received data for unknown subscription" at every session start: not shown on a
    terminal at info, in the JSON logs at debug (as a debug line)."""
    unknown = "Received data for unknown subscription %s active are %s"
    session = logging.getLogger("asyncua.client.ua_session.UaSession")
    terminal = io.StringIO()
    try:
        configure_logging("info", json_lines=False, stream=terminal)
        session.warning(unknown, 79, "dict_keys([78])")
        session.warning("Publish answer late")  # a warning that matters still shows
        assert "unknown subscription" not in terminal.getvalue()
        assert "Publish answer late" in terminal.getvalue()

        debug = io.StringIO()
        configure_logging("debug", json_lines=True, stream=debug)
        session.warning(unknown, 79, "dict_keys([78])")
        (line,) = [json.loads(text) for text in debug.getvalue().splitlines()]
        assert (
            line["event"] == "Received data for unknown subscription 79 active are dict_keys([78])"
        )
        assert (line["level"], line["logger"]) == ("debug", "asyncua.client.ua_session.UaSession")
    finally:
        configure_logging("warning", json_lines=False)

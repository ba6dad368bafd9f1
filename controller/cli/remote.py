"""What the commands that talk to the running daemon share: options, the client, errors, parsing."""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, NoReturn, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich.console import Console

from controller.api import models as m
from controller.api.client import EXIT_BAD_INPUT, ApiClient, ClientError
from controller.cli.common import load_site_or_exit, span_seconds

SiteOption = Annotated[
    Path,
    typer.Option("--site", envvar="BOILER_SITE", help="Site file of the running daemon."),
]
TokenOption = Annotated[
    Path | None,
    typer.Option(
        "--token-file",
        envvar="BOILER_TOKEN_FILE",
        help="The daemon's token file (default: <state directory>/<site id>.token).",
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]
UserOption = Annotated[
    str | None, typer.Option("--user", help="Who acts, for the journal (default: your login).")
]
ReasonOption = Annotated[
    str, typer.Option("--reason", "-r", help="Why: kept in the journal with the change.")
]
OptionalReason = Annotated[str, typer.Option("--reason", "-r", help="Why, for the journal.")]

M = TypeVar("M", bound=BaseModel)
_OPTIONS = {"reason": "--reason", "user": "--user", "for_s": "--for"}
_VALUE = re.compile(r"^\s*([-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?)\s*(\S*)\s*$")


def fail(message: str, code: int = EXIT_BAD_INPUT) -> NoReturn:
    typer.echo(f"boilerctl: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def daemon(site: Path, token_file: Path | None) -> Iterator[ApiClient]:
    """The client of the site's daemon; any refusal becomes one line and its exit code."""
    loaded = load_site_or_exit(site)
    try:
        yield ApiClient.for_site(loaded, os.environ, token_file)
    except ClientError as error:
        fail(str(error), error.code)


def build(model: type[M], **fields: object) -> M:
    """A request, or one line and exit 2 naming the option at fault (a blank --reason...)."""
    try:
        return model.model_validate(fields)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "request"
        option = _OPTIONS.get(field, field)
        fail(f"{option}: {first['msg'].lower()}")


def act(path: str, request: BaseModel, site: Path, token_file: Path | None, as_json: bool) -> None:
    """Send an action to the daemon; print what it did (its message, or the JSON answer)."""
    with daemon(site, token_file) as client:
        answer = client.post(path, request, m.ActionAnswer)
    emit(answer, as_json, lambda: typer.echo(answer.message))


def user_name(given: str | None) -> str:
    """The engineer acting: --user, else the login behind sudo, else the login."""
    if given is not None and given.strip():
        return given.strip()
    return os.environ.get("SUDO_USER") or getpass.getuser()


def parse_duration(text: str, option: str) -> float:
    """Seconds of "90s", "10m", "10min", "2h", "1d"; a bad one exits 2 in one line."""
    seconds = span_seconds(text)
    if seconds is None or seconds <= 0:
        fail(f"{option} {text}: give a positive duration with its unit: 90s, 10m, 2h, 1d")
    return seconds


def parse_value(text: str, what: str) -> tuple[float, str | None]:
    """(number, unit or None) of "66", "66 degC", "80%", "on"/"off"; a bad one exits 2."""
    lowered = text.strip().lower()
    if lowered in ("on", "true", "yes"):
        return 1.0, None
    if lowered in ("off", "false", "no"):
        return 0.0, None
    match = _VALUE.match(text)
    if match is None:
        fail(f"{what} {text!r}: expected a number, optionally with its unit (66 degC, 80 %)")
    return float(match.group(1)), match.group(2) or None


def emit(answer: BaseModel, as_json: bool, show: Callable[[], None]) -> None:
    """JSON for scripts, else the human view."""
    if as_json:
        typer.echo(answer.model_dump_json(indent=2))
    else:
        show()


def console() -> Console:
    """Rich on a terminal; a wide plain console off one (pipes, tests), so tables do not fold."""
    return Console() if Console().is_terminal else Console(width=200, no_color=True)


def dump(document: object) -> str:
    return json.dumps(document, indent=2, ensure_ascii=False)

"""What an HTTP answer means to the writer, Retry-After, secrets, and the historian's section of
a site file. The wire itself is exercised against real servers in tests/integration."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from pathlib import Path

import pytest

from controller.config.loader import ConfigError, load_site
from controller.config.site import Historian, InfluxV2Target, SecretSource
from controller.historian.targets import (
    Failure,
    SecretError,
    V1Target,
    V2Target,
    build_target,
    classify,
    read_secret,
    retry_after_seconds,
)
from tests.plant_helpers import site_copy


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, Failure.MALFORMED),
        (401, Failure.REFUSED),
        (403, Failure.REFUSED),
        (404, Failure.REFUSED),
        (413, Failure.TOO_LARGE),
        (422, Failure.REFUSED),
        (429, Failure.UNREACHABLE),
        (500, Failure.UNREACHABLE),
        (503, Failure.UNREACHABLE),
    ],
)
def test_an_answer_is_classified_by_its_status(status: int, kind: Failure) -> None:
    error = classify(status, "database not found", None)
    assert error.kind is kind
    assert error.status == status
    assert str(error) == f"HTTP {status}: database not found"


def test_retry_after_in_seconds_or_as_a_date() -> None:
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds(" 2.5 ") == 2.5
    assert retry_after_seconds("-3") == 0.0
    now = datetime(2026, 11, 22, 6, 0, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds(date, now=now.timestamp()) == pytest.approx(90.0)
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None
    assert classify(429, "", "12").retry_after == 12.0


def test_secrets_come_from_a_file_or_the_environment_and_errors_name_the_source(
    tmp_path: Path,
) -> None:
    (tmp_path / "token").write_text("s3cret\n")
    assert read_secret(SecretSource(file="token"), tmp_path, {}) == "s3cret"
    assert read_secret(SecretSource(env="TOKEN"), tmp_path, {"TOKEN": "abc"}) == "abc"
    assert read_secret(None, tmp_path, {}) is None
    with pytest.raises(SecretError, match=r"^environment variable TOKEN is not set$"):
        read_secret(SecretSource(env="TOKEN"), tmp_path, {})
    with pytest.raises(SecretError, match=r"missing: cannot read the secret file"):
        read_secret(SecretSource(file="missing"), tmp_path, {})


def test_a_secret_never_shows_in_a_target_s_repr_or_description() -> None:
    config = InfluxV2Target(api="v2", url="http://db:8086", org="o", bucket="b")
    target = build_target(config, Path("."), {})
    assert isinstance(target, V2Target)
    with_token = V2Target(config, token="t0ken-value")
    assert "t0ken-value" not in repr(with_token) + with_token.describe
    v1 = V1Target(
        Historian.model_validate(
            {"target": {"api": "v1", "url": "http://db:8086", "database": "d", "username": "u"}}
        ).target,  # type: ignore[arg-type]
        password="pa55word",
    )
    assert "pa55word" not in repr(v1) + v1.describe


@pytest.mark.parametrize(
    ("historian", "field", "message"),
    [
        ("historian: {spool_limit: 512}\n", "historian.spool_limit", "unit is missing"),
        ("historian: {target: {api: v3, url: 'http://x'}}\n", "historian.target", "v3"),
        (
            "historian: {target: {api: v1, url: 'influx:8086', database: d}}\n",
            "historian.target.v1.url",
            "pattern",
        ),
        (
            "historian: {target: {api: v2, url: 'http://x', org: o, bucket: b, token: {}}}\n",
            "historian.target.v2.token",
            "give `env`",
        ),
        (
            "historian: {target: {api: v1, url: 'http://x', database: d, pasword: x}}\n",
            "historian.target.v1.pasword",
            "",
        ),
    ],
)
def test_a_bad_historian_section_names_its_field(
    tmp_path: Path, historian: str, field: str, message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_site(site_copy(tmp_path, historian))
    text = "\n".join(str(issue) for issue in caught.value.issues)
    assert field in text, text
    assert message in text, text


def test_run_refuses_a_missing_secret_in_one_line(tmp_path: Path) -> None:
    site = site_copy(
        tmp_path,
        "historian:\n  target: {api: v2, url: 'http://127.0.0.1:9', org: o, bucket: b,"
        " token: {env: BOILER_TEST_NO_SUCH_TOKEN}}\n",
    )
    result = subprocess.run(
        [str(Path(sys.executable).with_name("boilerctl")), "run", "--site", str(site)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"run: {site}: historian: environment variable BOILER_TEST_NO_SUCH_TOKEN is not set"
    )

"""Log lines: JSON in production, readable in development, secrets masked in both.

The renderer is chosen when the settings load, so the lines are produced by a
child process started with LOG_FORMAT set and read back from its stderr.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from ispsupport.logs import REDACTED, redact_secrets

ROOT = Path(__file__).resolve().parents[2]

PASSWORD = "s3cret-Pa55"
ACCESS_TOKEN = "tok-9f8e7d6c5b4a"

_EMIT = f"""
import logging
import structlog
from ispsupport import boot

boot.setup()
structlog.get_logger("x").info(
    "login", username="ana", password={PASSWORD!r}, access_token={ACCESS_TOKEN!r}
)
structlog.get_logger("x").debug("below the level, never shown")
logging.getLogger("django").warning("disk %s is full", "/var")
logging.getLogger("django.server").error("broken pipe from %s", "127.0.0.1")
"""


def emit_lines(*, log_format: str, debug: str) -> list[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(
        DEBUG=debug,
        SECRET_KEY="logging-tests-secret-key-0b1c2d3e4f5a6b7c8d9e0f1a2b3c4d5e6f",
        ALLOWED_HOSTS="suporte.example.com",
        LOG_FORMAT=log_format,
        LOG_LEVEL="info",
    )
    result = subprocess.run(
        [sys.executable, "-c", _EMIT],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert (result.returncode, result.stdout) == (0, ""), result.stderr
    return result.stderr.splitlines()


def _pop_timestamp(line: dict[str, object], started: datetime) -> None:
    stamp = line.pop("timestamp")
    assert isinstance(stamp, str)
    assert stamp.endswith("Z")
    moment = datetime.fromisoformat(stamp)
    assert moment.utcoffset() == timedelta(0)
    assert started <= moment <= datetime.now(UTC)


@pytest.mark.parametrize("debug", ["false", "true"])
def test_json_format_writes_one_object_per_line_with_secrets_masked(debug: str) -> None:
    started = datetime.now(UTC)

    lines = emit_lines(log_format="json", debug=debug)

    records = [json.loads(line) for line in lines]
    for record in records:
        _pop_timestamp(record, started)
    assert records == [
        {
            "event": "login",
            "level": "info",
            "logger": "x",
            "username": "ana",
            "password": REDACTED,
            "access_token": REDACTED,
        },
        {"event": "disk /var is full", "level": "warning", "logger": "django"},
        {"event": "broken pipe from 127.0.0.1", "level": "error", "logger": "django.server"},
    ]
    output = "\n".join(lines)
    assert PASSWORD not in output
    assert ACCESS_TOKEN not in output


def test_console_format_is_readable_and_still_masked() -> None:
    lines = emit_lines(log_format="console", debug="true")

    stamp = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d+Z"
    assert len(lines) == 3, lines
    assert re.fullmatch(
        stamp + r" \[info\s+\] login\s+\[x\] "
        r"access_token=\[redacted\] password=\[redacted\] username=ana",
        lines[0],
    ), lines[0]
    assert re.fullmatch(stamp + r" \[warning\s+\] disk /var is full\s+\[django\]", lines[1])
    assert re.fullmatch(
        stamp + r" \[error\s+\] broken pipe from 127\.0\.0\.1\s+\[django\.server\]", lines[2]
    )
    for line in lines:
        with pytest.raises(json.JSONDecodeError):
            json.loads(line)
    output = "\n".join(lines)
    assert PASSWORD not in output
    assert ACCESS_TOKEN not in output


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "PASSWORD",
        "db_password",
        "passwd",
        "token",
        "access_token",
        "refresh_token",
        "secret",
        "client_secret",
        "authorization",
        "Authorization",
        "api_key",
        "api-key",
        "apikey",
        "cookie",
        "set_cookie",
        "signature",
        "credentials",
        "fernet_keys",
        "X-Hub-Signature-256",
    ],
)
def test_redact_secrets_masks_secret_looking_keys(key: str) -> None:
    event = {"event": "request", key: "do-not-log-me"}

    assert redact_secrets(None, "info", event) == {"event": "request", key: REDACTED}


def test_redact_secrets_leaves_ordinary_keys_and_the_message_alone() -> None:
    event = {
        "event": "password reset for ana",
        "username": "ana",
        "user_id": 7,
        "phone": "+5511999990000",
        "conversation_id": 42,
        "status": "open",
        "path": "/api/v1/conversations/",
        "level": "info",
    }

    assert redact_secrets(None, "info", dict(event)) == event


def test_redact_secrets_keeps_counts_and_words_that_only_contain_a_secret_word() -> None:
    event = {"event": "gemini_answer", "prompt_tokens": 812, "total_tokens": 930, "passage": "x"}

    assert redact_secrets(None, "info", dict(event)) == event


def test_redact_secrets_masks_inside_nested_values() -> None:
    event = {
        "event": "graph_api_call",
        "headers": {"Authorization": "Bearer EAAG-secret", "Content-Type": "application/json"},
        "attempts": [{"access_token": "EAAG-secret", "status": 401}],
    }

    assert redact_secrets(None, "info", event) == {
        "event": "graph_api_call",
        "headers": {"Authorization": REDACTED, "Content-Type": "application/json"},
        "attempts": [{"access_token": REDACTED, "status": 401}],
    }

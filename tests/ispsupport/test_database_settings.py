"""The database's time limits from the environment: pool wait, statement
timeout, the webhook's deadline, TCP keepalives; and that they reach
PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest
from django.conf import settings
from django.db import OperationalError, connection, transaction

from tests.ispsupport.test_settings import (
    PASSWORD,
    POSTGRES_URL,
    PRODUCTION,
    child_env,
    load_settings,
    run_python,
)

NEW_VARS = ("DATABASE_STATEMENT_TIMEOUT", "DATABASE_WEBHOOK_TIMEOUT")


def _env(**values: str) -> dict[str, str]:
    return {**PRODUCTION, "DATABASE_URL": POSTGRES_URL, **dict.fromkeys(NEW_VARS, ""), **values}


def _options(**values: str) -> dict[str, Any]:
    return load_settings("DATABASES", **_env(**values))["DATABASES"]["default"]["OPTIONS"]


def test_defaults() -> None:
    loaded = load_settings(
        "DATABASES", "DATABASE_STATEMENT_TIMEOUT", "DATABASE_WEBHOOK_TIMEOUT", **_env()
    )

    options = loaded["DATABASES"]["default"]["OPTIONS"]
    assert options["pool"]["timeout"] == 2.0
    assert options["options"] == "-c statement_timeout=30000"
    assert (loaded["DATABASE_STATEMENT_TIMEOUT"], loaded["DATABASE_WEBHOOK_TIMEOUT"]) == (30.0, 2.0)
    assert {key: options[key] for key in options if key.startswith(("keepalives", "tcp_"))} == {
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
    }


@pytest.mark.parametrize(
    ("value", "sent"),
    [("5", "-c statement_timeout=5000"), ("0.25", "-c statement_timeout=250"), ("0", None)],
)
def test_statement_timeout_in_seconds_zero_for_none(value: str, sent: str | None) -> None:
    assert _options(DATABASE_STATEMENT_TIMEOUT=value).get("options") == sent


def test_the_urls_own_options_win() -> None:
    options = _options(DATABASE_URL=f"{POSTGRES_URL}?sslmode=require&options=-c%20search_path%3Dx")

    assert (options["sslmode"], options["options"]) == ("require", "-c search_path=x")


def test_one_off_commands_run_without_a_statement_timeout() -> None:
    """A migration's index build or a purge's count may rightly take minutes."""
    probe = "from django.conf import settings; print(settings.DATABASES['default']['OPTIONS'])"

    one_off = run_python("manage.py", "shell", "-c", probe, env=child_env(**_env()))

    assert one_off.returncode == 0, one_off.stderr
    assert "statement_timeout" not in one_off.stdout
    assert "'tcp_user_timeout': 10000" in one_off.stdout


@pytest.mark.parametrize(
    ("values", "message"),
    [
        (
            {"DATABASE_STATEMENT_TIMEOUT": "30s"},
            "DATABASE_STATEMENT_TIMEOUT must be a number (got '30s')",
        ),
        (
            {"DATABASE_STATEMENT_TIMEOUT": "-1"},
            "DATABASE_STATEMENT_TIMEOUT must be at least 0 (got -1.0)",
        ),
        (
            {"DATABASE_WEBHOOK_TIMEOUT": "soon"},
            "DATABASE_WEBHOOK_TIMEOUT must be a number (got 'soon')",
        ),
        (
            {"DATABASE_WEBHOOK_TIMEOUT": "0"},
            "DATABASE_WEBHOOK_TIMEOUT must be at least 0.1 (got 0.0)",
        ),
        (
            {"DATABASE_POOL_TIMEOUT": "2s"},
            "DATABASE_POOL_TIMEOUT must be a number (got '2s')",
        ),
    ],
)
def test_a_wrong_value_stops_start_up_with_one_line(values: dict[str, str], message: str) -> None:
    result = run_python("manage.py", "check", env=child_env(**_env(**values)))

    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == f"ispsupport: configuration error: {message}\n"
    assert PASSWORD not in result.stderr


def test_a_bad_webhook_deadline_stops_sqlite_too() -> None:
    result = run_python(
        "manage.py", "check", env=child_env(**PRODUCTION, DATABASE_WEBHOOK_TIMEOUT="-1")
    )

    assert result.returncode == 2
    assert "DATABASE_WEBHOOK_TIMEOUT must be at least 0.1 (got -1.0)" in result.stderr


# --- What PostgreSQL itself sees ---------------------------------------------------


@pytest.mark.postgres
@pytest.mark.skipif(settings.DATABASE_VENDOR != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db
def test_every_connection_carries_the_statement_timeout_and_keepalives() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SHOW statement_timeout")
        [(timeout,)] = cursor.fetchall()
    parameters = connection.connection.info.get_parameters()

    assert timeout == "30s"
    assert (parameters["keepalives"], parameters["tcp_user_timeout"]) == ("1", "10000")


@pytest.mark.postgres
@pytest.mark.skipif(settings.DATABASE_VENDOR != "postgresql", reason="needs PostgreSQL")
@pytest.mark.django_db
def test_a_statement_timeout_is_an_outage_error() -> None:
    """It reaches the webhook as OperationalError: a 503 Meta retries, and a
    failure the ``database`` breaker counts."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 200")
        with pytest.raises(OperationalError, match="statement timeout"), transaction.atomic():
            cursor.execute("SELECT pg_sleep(5)")

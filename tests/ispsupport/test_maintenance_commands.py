"""The operators' durations ("48h", "1h30m") and manage.py reset_circuit_breaker."""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ispsupport import breakers
from ispsupport.durations import format_duration, parse_duration

RunManage = Callable[..., subprocess.CompletedProcess[str]]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("48h", timedelta(hours=48)),
        ("365d", timedelta(days=365)),
        ("30m", timedelta(minutes=30)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("2w", timedelta(weeks=2)),
        ("45s", timedelta(seconds=45)),
        ("1d12h", timedelta(days=1, hours=12)),
        (" 90D ", timedelta(days=90)),
        ("1h 30m", timedelta(hours=1, minutes=30)),
    ],
)
def test_durations_operators_type(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty duration: use a number and a unit, e.g. 30m, 48h, 365d or 1h30m"),
        ("365", "invalid duration '365': use a number and a unit"),
        ("48x", "invalid duration '48x'"),
        ("h", "invalid duration 'h'"),
        ("-1h", "invalid duration '-1h'"),
        ("1.5h", "invalid duration '1.5h'"),
        ("1h30", "invalid duration '1h30'"),
        ("0h", "duration '0h' must be more than zero"),
        ("0d0h", "duration '0d0h' must be more than zero"),
        ("99999999999d", "duration '99999999999d' is too long"),
        ("40000d", "duration '40000d' is too long (at most 100 years)"),
    ],
)
def test_a_bad_duration_says_what_is_accepted(text: str, message: str) -> None:
    with pytest.raises(ValueError) as raised:
        parse_duration(text)

    assert str(raised.value).startswith(message)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(days=365), "365d"),
        (timedelta(hours=36), "1d12h"),
        (timedelta(hours=1, minutes=30), "1h30m"),
        (timedelta(seconds=59), "59s"),
        (timedelta(0), "0s"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def reset(*args: str) -> str:
    out = StringIO()
    call_command("reset_circuit_breaker", *args, stdout=out)
    return out.getvalue()


def test_reset_closes_an_open_breaker() -> None:
    whatsapp = breakers.get_breaker("whatsapp")
    whatsapp.open()
    assert breakers.breaker_status("whatsapp")["state"] == "open"

    output = reset("whatsapp")

    storage = breakers.storage_kind()
    assert output == (
        f"whatsapp: open → closed (failures 0 → 0, {storage} storage)\nClosed 1 breaker(s).\n"
    )
    assert breakers.breaker_status("whatsapp")["state"] == "closed"
    assert breakers.breaker_status("gemini")["state"] == "closed"


def test_reset_zeroes_the_failure_count() -> None:
    gemini = breakers.get_breaker("gemini")
    for _ in range(2):
        with pytest.raises(ZeroDivisionError):
            gemini.call(lambda: 1 / 0)
    assert breakers.breaker_status("gemini")["fail_counter"] == 2

    output = reset("gemini")

    assert output.startswith("gemini: closed → closed (failures 2 → 0, ")
    assert breakers.breaker_status("gemini")["fail_counter"] == 0


def test_all_closes_every_breaker() -> None:
    for name in ("whatsapp", "gemini", "redis"):
        breakers.get_breaker(name).open()

    output = reset("--all")

    lines = output.splitlines()
    assert [line.split(":")[0] for line in lines[:-1]] == list(breakers.SPECS)
    assert lines[0].startswith("whatsapp: open → closed")
    assert lines[1].startswith("database: closed → closed")
    assert lines[-1] == "Closed 4 breaker(s)."
    assert {s["state"] for s in breakers.all_breaker_statuses()} == {"closed"}


def test_an_unknown_breaker_lists_the_valid_ones() -> None:
    breakers.get_breaker("whatsapp").open()

    with pytest.raises(CommandError) as raised:
        reset("whatsapp", "meta")

    assert str(raised.value) == (
        "Unknown breaker meta; the breakers are: whatsapp, database, gemini, redis."
    )
    # Nothing was reset: a typo in a list changes nothing.
    assert breakers.breaker_status("whatsapp")["state"] == "open"


@pytest.mark.parametrize("args", [(), ("whatsapp", "--all")])
def test_it_needs_a_name_or_all_but_not_both(args: tuple[str, ...]) -> None:
    with pytest.raises(CommandError, match=r"^Name a breaker or give --all \(breakers: whatsapp,"):
        reset(*args)


@pytest.mark.redis
def test_the_reset_reaches_every_process_through_redis() -> None:
    breakers.get_breaker("whatsapp").open()
    breakers.forget_breakers()  # as another process: a fresh breaker object
    assert breakers.breaker_status("whatsapp")["state"] == "open"

    reset("whatsapp")

    breakers.forget_breakers()
    assert breakers.breaker_status("whatsapp")["state"] == "closed"


def test_from_the_command_line_errors_exit_non_zero_with_one_line(run_manage: RunManage) -> None:
    unknown = run_manage("reset_circuit_breaker", "meta", "--skip-checks")
    bad_duration = run_manage("purge_old_data", "--older-than", "365x", "--skip-checks")

    assert unknown.returncode == 1
    assert unknown.stdout == ""
    assert unknown.stderr == (
        "CommandError: Unknown breaker meta; the breakers are: whatsapp, database, gemini, redis.\n"
    )
    assert bad_duration.returncode == 2
    assert bad_duration.stderr.splitlines()[-1] == (
        "manage.py purge_old_data: error: argument --older-than: invalid duration '365x': "
        "use a number and a unit, e.g. 30m, 48h, 365d or 1h30m (units: w, d, h, m, s)"
    )

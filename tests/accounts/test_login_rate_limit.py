"""Failed-login limit (LOGIN_RATE_LIMIT, per client IP and per username) and the
per-user API throttle (API_RATE_LIMIT).

django-ratelimit counts in fixed windows whose edges depend on the counted
value. A test that makes several attempts picks values whose current window
has time left, or waits for a fresh one, so a window never ends half-way.
"""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from django_ratelimit.core import _get_window
from pytest_django.fixtures import Settings
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts import services
from accounts.models import User
from tests.support import bearer, server_env

PASSWORD = "Senha-Forte-123"
WRONG = "Senha-Errada-123"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
WINDOW = 60  # seconds, the "/m" of "5/m"
CHILD_MARKER = "child statuses:"


def login(
    client: Client, username: str, password: str, *, ip: str = "127.0.0.1", **extra: Any
) -> HttpResponse:
    return client.post(
        "/api/v1/auth/login",
        {"username": username, "password": password},
        content_type="application/json",
        REMOTE_ADDR=ip,
        **{**EN, **extra},
    )


def seconds_left(value: str, period: int = WINDOW) -> float:
    return _get_window(value, period) - time.time()


def with_time_left(candidates: Iterable[str], seconds: float = 30) -> str:
    """The first value whose current rate-limit window has ``seconds`` left."""
    for value in candidates:
        if seconds_left(value) >= seconds:
            return value
    raise AssertionError("no candidate has a window with enough time left")


def wait_for_time_left(value: str, seconds: float) -> None:
    left = seconds_left(value)
    if left < seconds:
        time.sleep(max(0.0, left + 0.5))


def ips(prefix: str = "203.0.113") -> list[str]:
    return [f"{prefix}.{n}" for n in range(1, 255)]


def staff(username_prefix: str) -> User:
    username = with_time_left(f"{username_prefix}.{n}" for n in range(100))
    return services.user_create(username=username, password=PASSWORD)


def assert_refused(response: HttpResponse) -> None:
    assert response.status_code == 429, response.content
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= WINDOW
    assert response.json() == {
        "detail": f"Too many failed logins. Try again in {retry_after} seconds.",
        "code": "too_many_attempts",
        "retry_after": retry_after,
    }


def test_sixth_attempt_after_five_failures_is_refused_even_with_the_right_password(
    client: Client, db: None
) -> None:
    user = staff("dani")
    ip = with_time_left(ips())
    for _ in range(5):
        assert login(client, user.username, WRONG, ip=ip).status_code == 401

    response = login(client, user.username, PASSWORD, ip=ip)

    assert_refused(response)
    assert not OutstandingToken.objects.exists()
    user.refresh_from_db()
    assert user.last_login is None


def test_fifth_failure_is_still_a_plain_401(client: Client, db: None) -> None:
    user = staff("edu")
    ip = with_time_left(ips())
    for _ in range(4):
        login(client, user.username, WRONG, ip=ip)

    response = login(client, user.username, WRONG, ip=ip)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Wrong username or password.",
        "code": "invalid_credentials",
    }
    assert "Retry-After" not in response


def test_successful_logins_do_not_count(client: Client, db: None) -> None:
    user = staff("fabi")
    ip = with_time_left(ips())

    statuses = [login(client, user.username, PASSWORD, ip=ip).status_code for _ in range(10)]

    assert statuses == [200] * 10
    assert login(client, user.username, WRONG, ip=ip).status_code == 401


def test_limit_per_username_holds_across_ips_and_letter_case(client: Client, db: None) -> None:
    user = staff("gabi")
    spellings = [user.username, user.username.upper(), f"  {user.username}  ", user.username]
    for n, spelling in enumerate([*spellings, user.username.title()], start=1):
        assert login(client, spelling, WRONG, ip=f"198.51.100.{n}").status_code == 401

    response = login(client, user.username, PASSWORD, ip="198.51.100.99")

    assert_refused(response)
    # Each of those addresses made one failure only: another user is let in.
    other = services.user_create(username="helena.outra", password=PASSWORD)
    assert login(client, other.username, PASSWORD, ip="198.51.100.1").status_code == 200


def test_limit_per_ip_holds_across_usernames(client: Client, db: None) -> None:
    user = staff("igor")
    ip = with_time_left(ips())
    for n in range(5):
        assert login(client, f"ninguem.{n}", WRONG, ip=ip).status_code == 401

    response = login(client, user.username, PASSWORD, ip=ip)

    assert_refused(response)
    assert login(client, user.username, PASSWORD, ip="192.0.2.200").status_code == 200


def test_console_and_api_failures_share_the_count(client: Client, db: None) -> None:
    user = staff("joana")
    ip = with_time_left(ips())
    for _ in range(3):
        page = client.post(
            "/login/", {"username": user.username, "password": WRONG}, REMOTE_ADDR=ip, **EN
        )
        assert page.status_code == 200
    for _ in range(2):
        assert login(client, user.username, WRONG, ip=ip).status_code == 401

    assert_refused(login(client, user.username, PASSWORD, ip=ip))
    page = client.post(
        "/login/", {"username": user.username, "password": PASSWORD}, REMOTE_ADDR=ip, **EN
    )
    assert page.status_code == 429
    assert 1 <= int(page["Retry-After"]) <= WINDOW


def test_without_trusted_proxies_rotating_x_forwarded_for_does_not_help(
    client: Client, db: None, settings: Settings
) -> None:
    settings.TRUSTED_PROXY_COUNT = 0
    user = staff("kaio")
    ip = with_time_left(ips())
    for n in range(5):
        response = login(client, f"ninguem.{n}", WRONG, ip=ip, HTTP_X_FORWARDED_FOR=f"10.9.8.{n}")
        assert response.status_code == 401

    response = login(client, user.username, PASSWORD, ip=ip, HTTP_X_FORWARDED_FOR="10.9.8.77")

    assert_refused(response)


PROXY = "10.0.0.2"


def test_behind_one_proxy_forged_left_hand_entries_do_not_help(
    client: Client, db: None, settings: Settings
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    user = staff("lara")
    real = with_time_left(ips())
    for n in range(5):
        # The client sends "X-Forwarded-For: 10.9.8.n"; the proxy appends its peer.
        forged = f"10.9.8.{n}, {real}"
        response = login(client, f"ninguem.{n}", WRONG, ip=PROXY, HTTP_X_FORWARDED_FOR=forged)
        assert response.status_code == 401

    response = login(
        client,
        user.username,
        PASSWORD,
        ip=PROXY,
        HTTP_X_FORWARDED_FOR=f"not-an-ip, 1.2.3.4, {real}",
    )

    assert_refused(response)


def test_behind_one_proxy_each_real_client_is_counted_apart(
    client: Client, db: None, settings: Settings
) -> None:
    settings.TRUSTED_PROXY_COUNT = 1
    user = staff("milena")
    attacker = with_time_left(ips())
    for n in range(5):
        response = login(client, f"ninguem.{n}", WRONG, ip=PROXY, HTTP_X_FORWARDED_FOR=attacker)
        assert response.status_code == 401
    assert_refused(login(client, user.username, PASSWORD, ip=PROXY, HTTP_X_FORWARDED_FOR=attacker))

    # Same proxy, another customer site: the proxy's own address is not the key.
    response = login(client, user.username, PASSWORD, ip=PROXY, HTTP_X_FORWARDED_FOR="192.0.2.50")

    assert response.status_code == 200


def test_api_throttle_refuses_the_call_after_the_limit(
    client: Client, agent: User, admin: User, settings: Settings
) -> None:
    settings.API_RATE_LIMIT = "3/m"
    wait_for_time_left(f"user:{agent.pk}", 5)
    for _ in range(3):
        assert client.get("/api/v1/auth/me", headers=bearer(agent), **EN).status_code == 200

    response = client.get("/api/v1/auth/me", headers=bearer(agent), **EN)

    assert response.status_code == 429
    wait = int(response["Retry-After"])
    assert 1 <= wait <= WINDOW
    unit = "second" if wait == 1 else "seconds"
    assert response.json() == {
        "detail": f"Request was throttled. Expected available in {wait} {unit}.",
        "code": "throttled",
    }
    # Counted per user: a colleague on the same address goes on working.
    assert client.get("/api/v1/auth/me", headers=bearer(admin), **EN).status_code == 200


CHILD_CODE = """
import json
from django.core.management import call_command
from django.test import Client

call_command("migrate", verbosity=0)
client = Client(REMOTE_ADDR={ip!r}, HTTP_ACCEPT_LANGUAGE="en")
statuses = [
    client.post(
        "/api/v1/auth/login",
        {{"username": {username!r}, "password": "wrong"}},
        content_type="application/json",
    ).status_code
    for _ in range(2)
]
print({marker!r}, json.dumps(statuses))
"""


@pytest.mark.redis
def test_failures_are_counted_across_processes(
    client: Client,
    db: None,
    tmp_path: Path,
    run_manage: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    user = staff("nina")
    ip = with_time_left(ips(), seconds=45)
    for _ in range(3):
        assert login(client, user.username, WRONG, ip=ip).status_code == 401

    # The counts live in Redis only; the other process gets a database of its own.
    child = run_manage(
        "shell",
        "--no-imports",
        "-c",
        CHILD_CODE.format(ip=ip, username=user.username, marker=CHILD_MARKER),
        env=server_env(DATABASE_URL=f"sqlite:///{tmp_path / 'child.sqlite3'}"),
    )

    assert child.returncode == 0, child.stderr
    [line] = [line for line in child.stdout.splitlines() if line.startswith(CHILD_MARKER)]
    assert json.loads(line.removeprefix(CHILD_MARKER)) == [401, 401]
    assert_refused(login(client, user.username, PASSWORD, ip=ip))

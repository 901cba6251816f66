"""The breakers' shared state while Redis is down.

The breakers kept in Redis (whatsapp, database, gemini) cannot be known when
Redis cannot be read: /circuit-breakers, the dashboard and the metrics say
"unknown" instead of the "closed" pybreaker falls back to, answer within one
REDIS_TIMEOUT (not one per breaker), and a reset is refused instead of
pretending it happened. A redis-server of the test's own is stopped, or hung
behind a proxy; the suite's Redis is never touched.
"""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.test import Client, override_settings
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from ispsupport import breakers
from tests.faults.conftest import PrivateRedis, TcpProxy
from tests.support import bearer, free_port, server_env

TIMEOUT = 0.5
SHARED = ("whatsapp", "database", "gemini")


def _connect_to_nothing() -> None:
    socket.create_connection(("127.0.0.1", free_port()), timeout=1).close()


def _fail_whatsapp_three_times() -> None:
    breaker = breakers.get_breaker("whatsapp")
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            breaker.call(_connect_to_nothing)


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("CommandError: ")]


def _breaker_gauge(client: Client) -> dict[str, str]:
    """Each breaker's state whose circuit_breaker_state sample is 1."""
    text = client.get("/metrics").content.decode()
    return {
        sample.labels["breaker"]: sample.labels["state"]
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "circuit_breaker_state" and sample.value == 1
    }


def _listing(client: Client) -> tuple[dict[str, dict[str, Any]], float]:
    started = time.monotonic()
    response = client.get("/circuit-breakers")
    seconds = time.monotonic() - started
    assert response.status_code == 200
    return {b["name"]: b for b in response.json()["breakers"]}, seconds


@pytest.fixture
def redis_at() -> Iterator[Any]:
    """``redis_at(url)``: the breakers' state in that Redis for the rest of the test."""
    overrides: list[Any] = []

    def use(url: str) -> None:
        override = override_settings(REDIS_URL=url, REDIS_TIMEOUT=TIMEOUT)
        override.enable()
        overrides.append(override)
        breakers.forget_breakers()

    yield use
    # Drop breaker objects bound to the dead Redis before the suite's
    # clean-up closes every breaker.
    breakers.forget_breakers()
    for override in reversed(overrides):
        override.disable()


def test_a_stopped_redis_shows_unknown_at_once_and_the_state_returns_with_it(
    private_redis: PrivateRedis, redis_at: Any, client: Client
) -> None:
    redis_at(private_redis.url)
    _fail_whatsapp_three_times()
    up, _ = _listing(client)
    assert (up["whatsapp"]["state"], up["whatsapp"]["fail_counter"]) == ("open", 3)
    assert up["whatsapp"]["opened_at"] is not None
    assert "reason" not in up["whatsapp"]

    private_redis.kill()
    down, seconds = _listing(client)

    # A refused connection fails at once: no timeout to wait out.
    assert seconds < TIMEOUT
    for name in SHARED:
        assert down[name] == {
            **up[name],
            "state": "unknown",
            "fail_counter": None,
            "opened_at": None,
            "reason": "redis unreachable: ConnectionError",
        }
    # The redis breaker lives in this process: known, and it counted the failure.
    assert (down["redis"]["state"], down["redis"]["fail_counter"]) == ("closed", 1)
    assert down["redis"]["storage"] == "memory"
    assert "reason" not in down["redis"]

    # What Prometheus reads: unknown, not a made-up closed.
    gauge = _breaker_gauge(client)
    assert {name: gauge[name] for name in SHARED} == dict.fromkeys(SHARED, "unknown")
    assert gauge["redis"] == "closed"

    private_redis.start()  # same port, empty: Redis keeps no breaker state across a restart
    back, _ = _listing(client)

    assert {name: back[name]["state"] for name in SHARED} == dict.fromkeys(SHARED, "closed")
    assert back["whatsapp"]["fail_counter"] == 0


def test_a_hung_redis_costs_one_timeout_then_none_once_the_redis_breaker_opens(
    private_redis: PrivateRedis, redis_at: Any, client: Client
) -> None:
    proxy = TcpProxy("127.0.0.1", private_redis.port)
    proxy.start()
    try:
        redis_at(f"redis://127.0.0.1:{proxy.port}/0")
        _fail_whatsapp_three_times()
        assert _listing(client)[0]["whatsapp"]["state"] == "open"

        proxy.freeze()
        timings = []
        for _ in range(3):
            listed, seconds = _listing(client)
            timings.append(seconds)
            assert listed["whatsapp"]["state"] == "unknown"
            assert listed["whatsapp"]["reason"] == "redis unreachable: TimeoutError"
        # The third failure opened the redis breaker: no more waiting.
        listed, skipped = _listing(client)
    finally:
        proxy.thaw()
        proxy.cut()

    # Three breakers read in one round trip: one timeout each time, not three.
    assert all(TIMEOUT * 0.8 <= t < TIMEOUT * 2 for t in timings), timings
    assert skipped < 0.1
    assert {name: listed[name]["state"] for name in SHARED} == dict.fromkeys(SHARED, "unknown")
    assert listed["whatsapp"]["reason"] == "redis breaker open"
    assert listed["redis"]["state"] == "open"


def test_a_reset_while_redis_is_down_is_refused_not_faked(
    private_redis: PrivateRedis, redis_at: Any, client: Client, admin: User
) -> None:
    redis_at(private_redis.url)
    _fail_whatsapp_three_times()
    private_redis.kill()

    response = client.post(
        "/circuit-breakers/whatsapp/reset", headers={**bearer(admin), "Accept-Language": "en"}
    )

    assert response.status_code == 503
    assert response.json() == {
        "detail": "The whatsapp circuit breaker was not reset: its shared state in Redis "
        "cannot be reached (redis unreachable: ConnectionError). Try again when Redis is back.",
        "code": "breaker_state_unavailable",
    }
    # The memory-only redis breaker can still be reset.
    redis_reset = client.post("/circuit-breakers/redis/reset", headers=bearer(admin))
    assert (redis_reset.status_code, redis_reset.json()["state"]) == (200, "closed")


def test_the_reset_command_fails_with_a_clear_error_while_redis_is_down(
    private_redis: PrivateRedis, run_manage: Any
) -> None:
    env = server_env(REDIS_URL=private_redis.url, REDIS_TIMEOUT=str(TIMEOUT))
    private_redis.kill()

    one = run_manage("reset_circuit_breaker", "whatsapp", "--skip-checks", env=env)
    every = run_manage("reset_circuit_breaker", "--all", "--skip-checks", env=env)

    assert one.returncode == 1
    assert one.stdout == ""
    # One line (beside the logs), in the site's language, naming the breaker and why.
    [line] = _errors(one.stderr)
    assert "whatsapp" in line
    assert "(redis unreachable: ConnectionError)" in line
    assert every.returncode == 1
    # What could be reset was: the redis breaker lives in the process.
    assert every.stdout == "redis: closed → closed (failures 0 → 0, memory storage)\n"
    [line] = _errors(every.stderr)
    assert [name for name in SHARED if f" {name} " in line] == list(SHARED)


def test_the_dashboard_shows_unknown_breakers_while_redis_is_down(
    private_redis: PrivateRedis, redis_at: Any, admin: User
) -> None:
    redis_at(private_redis.url)
    _fail_whatsapp_three_times()
    private_redis.kill()
    browser = Client()
    browser.force_login(admin)

    html = browser.get("/console/dashboard/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    for name in SHARED:
        assert re.search(
            rf'class="breaker breaker-unknown" data-breaker="{name}" data-state="unknown"', html
        )
    assert re.search(r'data-breaker="redis" data-state="closed"', html)
    assert "None/" not in html


def test_check_whatsapp_says_the_breaker_state_is_unknown_and_warns(
    private_redis: PrivateRedis, redis_at: Any, db: None
) -> None:
    redis_at(private_redis.url)
    private_redis.kill()
    out = StringIO()

    with pytest.raises(CommandError) as warning:
        call_command("check_whatsapp", stdout=out)

    assert out.getvalue().splitlines()[0] == (
        "whatsapp breaker: unknown (redis unreachable: ConnectionError)"
    )
    assert warning.value.returncode == 1

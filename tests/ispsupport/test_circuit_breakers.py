from __future__ import annotations

import socket
from datetime import UTC, datetime
from typing import Any

import pybreaker
import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from ispsupport import breakers
from ispsupport.breakers import get_breaker
from tests.support import bearer, free_port

RESET_URL = "/circuit-breakers/whatsapp/reset"


def _shared_storage() -> str:
    return "redis" if settings.REDIS_URL else "memory"


def _closed(name: str, fail_max: int, reset_timeout: int, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "description": description,
        "state": "closed",
        "fail_counter": 0,
        "fail_max": fail_max,
        "reset_timeout_seconds": reset_timeout,
        "opened_at": None,
        "storage": "memory" if name == "redis" else _shared_storage(),
    }


def _whatsapp_closed() -> dict[str, Any]:
    return _closed("whatsapp", 3, 30, "Meta WhatsApp Cloud API (Graph API)")


def _connect_to_nothing() -> None:
    """A real failing dependency: a TCP connect to a port nobody listens on."""
    socket.create_connection(("127.0.0.1", free_port()), timeout=1).close()


def _fail_through(name: str, times: int) -> None:
    breaker = get_breaker(name)
    for _ in range(times):
        with pytest.raises(ConnectionRefusedError):
            breaker.call(_connect_to_nothing)


def _listed(client: Client, name: str) -> dict[str, Any]:
    response = client.get("/circuit-breakers")
    assert response.status_code == 200
    [status] = [b for b in response.json()["breakers"] if b["name"] == name]
    return status


def test_lists_every_breaker_closed(client: Client) -> None:
    response = client.get("/circuit-breakers")

    assert response.status_code == 200
    assert response.json() == {
        "breakers": [
            _whatsapp_closed(),
            _closed("database", 5, 60, "PostgreSQL"),
            _closed("gemini", 3, 45, "Google Gemini API"),
            _closed("redis", 3, 30, "Redis (cache, channel layer, breaker state)"),
        ]
    }


def test_three_failures_open_the_whatsapp_breaker(client: Client) -> None:
    # Redis keeps opened_at in whole seconds.
    before = datetime.now(UTC).replace(microsecond=0)

    _fail_through("whatsapp", 3)

    status = _listed(client, "whatsapp")
    assert before <= datetime.fromisoformat(status["opened_at"]) <= datetime.now(UTC)
    assert status == {
        **_whatsapp_closed(),
        "state": "open",
        "fail_counter": 3,
        "opened_at": status["opened_at"],
    }


def test_an_open_breaker_refuses_calls_without_trying() -> None:
    _fail_through("whatsapp", 3)
    tried: list[bool] = []

    with pytest.raises(pybreaker.CircuitBreakerError):
        get_breaker("whatsapp").call(lambda: tried.append(True))

    assert tried == []


def test_two_failures_keep_it_closed_but_counted(client: Client) -> None:
    _fail_through("whatsapp", 2)

    assert _listed(client, "whatsapp") == {**_whatsapp_closed(), "fail_counter": 2}


def test_anonymous_may_not_reset(client: Client, db: None) -> None:
    _fail_through("whatsapp", 3)

    response = client.post(RESET_URL)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "As credenciais de autenticação não foram fornecidas.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert _listed(client, "whatsapp")["state"] == "open"


def test_refusals_speak_the_callers_language(client: Client, db: None) -> None:
    response = client.post(RESET_URL, headers={"Accept-Language": "en"})

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }


def test_an_agent_may_not_reset(client: Client, agent: User) -> None:
    _fail_through("whatsapp", 3)

    response = client.post(RESET_URL, headers=bearer(agent))

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Somente administradores podem fazer isso.",
        "code": "permission_denied",
    }
    assert _listed(client, "whatsapp")["state"] == "open"


def test_an_admin_with_a_token_closes_the_breaker(client: Client, admin: User) -> None:
    _fail_through("whatsapp", 3)

    response = client.post(RESET_URL, headers=bearer(admin))

    assert response.status_code == 200
    assert response.json() == _whatsapp_closed()
    assert _listed(client, "whatsapp") == _whatsapp_closed()
    assert get_breaker("whatsapp").call(lambda: "through") == "through"


def test_an_admin_session_needs_the_csrf_token(admin: User) -> None:
    _fail_through("whatsapp", 3)
    browser = Client(enforce_csrf_checks=True)
    # The login page sets the CSRF cookie, as it does for a real browser.
    browser.get("/login/")
    token = browser.cookies[settings.CSRF_COOKIE_NAME].value
    browser.force_login(admin)

    refused = browser.post(RESET_URL)

    assert refused.status_code == 403
    assert refused.json() == {
        "detail": "CSRF Failed: CSRF token missing.",
        "code": "permission_denied",
    }
    assert _listed(browser, "whatsapp")["state"] == "open"

    accepted = browser.post(RESET_URL, headers={"X-CSRFToken": token})

    assert accepted.status_code == 200
    assert accepted.json() == _whatsapp_closed()
    assert _listed(browser, "whatsapp")["state"] == "closed"


def test_resetting_an_unknown_breaker_is_not_found(client: Client, admin: User) -> None:
    response = client.post("/circuit-breakers/nope/reset", headers=bearer(admin))
    english = client.post(
        "/circuit-breakers/nope/reset", headers={**bearer(admin), "Accept-Language": "en"}
    )

    assert response.status_code == 404
    assert response.json() == {
        "detail": "Não existe circuit breaker chamado 'nope'.",
        "code": "not_found",
    }
    assert english.json() == {"detail": "No circuit breaker named 'nope'.", "code": "not_found"}


def test_reset_only_accepts_post(client: Client, admin: User) -> None:
    response = client.get(RESET_URL, headers=bearer(admin))

    assert response.status_code == 405
    assert response.json() == {
        "detail": 'Método "GET" não é permitido.',
        "code": "method_not_allowed",
    }


@pytest.mark.redis
def test_breaker_state_is_shared_through_redis(client: Client, admin: User) -> None:
    _fail_through("whatsapp", 3)
    # What a freshly started daphne or worker process sees.
    breakers.forget_breakers()

    fresh = get_breaker("whatsapp")

    assert fresh.current_state == "open"
    assert _listed(client, "whatsapp")["fail_counter"] == 3
    with pytest.raises(pybreaker.CircuitBreakerError):
        fresh.call(lambda: None)

    assert client.post(RESET_URL, headers=bearer(admin)).status_code == 200
    breakers.forget_breakers()

    assert get_breaker("whatsapp").current_state == "closed"
    assert _listed(client, "whatsapp") == _whatsapp_closed()


@pytest.mark.redis
def test_the_redis_breaker_never_lives_in_redis(client: Client) -> None:
    _fail_through("redis", 3)
    assert _listed(client, "redis")["state"] == "open"

    # Another process has its own view: closed until Redis fails for it too.
    breakers.forget_breakers()

    assert get_breaker("redis").current_state == "closed"
    assert _listed(client, "redis") == _closed(
        "redis", 3, 30, "Redis (cache, channel layer, breaker state)"
    )

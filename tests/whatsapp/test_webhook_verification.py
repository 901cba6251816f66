"""Meta's verification handshake: the challenge comes back as plain text only
for the right verify token."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.whatsapp.conftest import VERIFY_TOKEN
from whatsapp.models import WhatsAppAccount

URL = "/api/v1/whatsapp/webhook"


def _handshake(client: Client, url: str = URL, **params: str) -> Any:
    query = {"hub.mode": "subscribe", "hub.challenge": "1158201444", **params}
    return client.get(url, query)


@pytest.mark.parametrize("url", [URL, URL + "/"])
def test_the_right_token_gets_the_challenge_back(
    client: Client, account: WhatsAppAccount, url: str
) -> None:
    response = _handshake(client, url, **{"hub.verify_token": VERIFY_TOKEN})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    assert response.content == b"1158201444"


def test_the_token_from_the_environment_is_accepted(
    client: Client, db: None, settings: Any
) -> None:
    settings.WHATSAPP_VERIFY_TOKEN = "token-do-ambiente"

    response = _handshake(client, **{"hub.verify_token": "token-do-ambiente"})

    assert (response.status_code, response.content) == (200, b"1158201444")


@pytest.mark.parametrize(
    "params",
    [
        {"hub.verify_token": "errado"},
        {"hub.verify_token": ""},
        {},
        {"hub.verify_token": VERIFY_TOKEN, "hub.mode": "unsubscribe"},
    ],
)
def test_anything_else_is_refused(
    client: Client, account: WhatsAppAccount, params: dict[str, str]
) -> None:
    response = _handshake(client, **params)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Webhook verification failed.",
        "code": "verification_failed",
    }
    assert b"1158201444" not in response.content


def test_an_inactive_numbers_token_is_refused(client: Client, account: WhatsAppAccount) -> None:
    account.is_active = False
    account.save()

    response = _handshake(client, **{"hub.verify_token": VERIFY_TOKEN})

    assert response.status_code == 403

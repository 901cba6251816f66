"""A default deployment (LANGUAGE_CODE pt-br) speaks Portuguese to its users."""

from __future__ import annotations

from typing import Any

from django.test import Client

from accounts.models import User
from tests.support import bearer
from tests.whatsapp.payloads import URL, post
from whatsapp.models import WhatsAppAccount


def test_a_refused_verification_is_explained_in_portuguese(
    settings: Any, account: WhatsAppAccount
) -> None:
    settings.LANGUAGE_CODE = "pt-br"

    response = Client().get(
        URL, {"hub.mode": "subscribe", "hub.verify_token": "errado", "hub.challenge": "42"}
    )

    assert response.status_code == 403
    assert response.json() == {
        "detail": "A verificação do webhook falhou.",
        "code": "verification_failed",
    }


def test_a_body_that_is_not_a_webhook_is_explained_in_portuguese(
    settings: Any, account: WhatsAppAccount
) -> None:
    settings.LANGUAGE_CODE = "pt-br"

    response = post(Client(), b'{"object":"page","entry":[]}')

    assert response.status_code == 400
    assert response.json()["detail"].startswith("Não é um webhook do WhatsApp:")


def test_the_status_says_sandbox_in_portuguese(
    settings: Any, sandbox_account: WhatsAppAccount, agent: User
) -> None:
    settings.LANGUAGE_CODE = "pt-br"

    response = Client().get("/api/v1/whatsapp/status", headers=bearer(agent))

    assert response.status_code == 200
    assert response.json()["message"].startswith("O modo sandbox está ativo para")

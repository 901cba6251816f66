from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import User
from conversations.models import Conversation, Inbox, Message
from conversations.services import message_receive
from ispsupport.breakers import get_breaker
from tests.support import bearer
from whatsapp.models import WhatsAppAccount

URL = "/api/v1/whatsapp/status"


def _outbound(conversation: Conversation, status: str, *, minutes_ago: int = 5) -> Message:
    return Message.objects.create(
        conversation=conversation,
        direction=Message.Direction.OUT,
        sender_type=Message.SenderType.AGENT,
        text="Olá",
        status=status,
        created_at=timezone.now() - timedelta(minutes=minutes_ago),
    )


def _account(n: int) -> WhatsAppAccount:
    inbox = Inbox.objects.create(name=f"Filial {n}", address=f"+55 11 4000-000{n}")
    account = WhatsAppAccount(
        inbox=inbox, name=f"Filial {n}", phone_number_id=f"20000000{n}", display_phone=inbox.address
    )
    account.access_token = f"EAAG-token-{n}"
    account.save()
    return account


def test_the_shape_per_number(account: WhatsAppAccount, agent: User) -> None:
    account.last_error = "190: Error validating access token"
    account.last_error_at = timezone.now()
    account.is_healthy = False
    account.last_webhook_at = timezone.now() - timedelta(minutes=2)
    account.save()
    conversation = message_receive(
        inbox=account.inbox, wa_id="5511988887777", text="oi", external_id="wamid.S1"
    ).message.conversation
    _outbound(conversation, Message.Status.SENT)
    _outbound(conversation, Message.Status.SENT)
    _outbound(conversation, Message.Status.FAILED)
    _outbound(conversation, Message.Status.PENDING, minutes_ago=120)
    _outbound(conversation, Message.Status.DELIVERED, minutes_ago=120)  # too old to count

    response = Client().get(URL, headers=bearer(agent))

    assert response.status_code == 200
    body = response.json()
    assert body["sandbox"] is False
    assert body["message"] == "Live: messages are sent through the WhatsApp Cloud API."
    assert body["breaker"] == {"state": "closed", "fail_counter": 0, "opened_at": None}
    assert body["numbers"] == [
        {
            "id": account.pk,
            "name": "Suporte",
            "display_phone": "+55 11 4000-1234",
            "phone_number_id": "106540352242922",
            "active": True,
            "mode": "live",
            "healthy": False,
            "last_webhook_at": account.last_webhook_at.isoformat(),
            "breaker_state": "closed",
            "messages_last_hour": {
                "pending": 0,
                "sent": 2,
                "delivered": 0,
                "read": 0,
                "failed": 1,
            },
            "pending_sends": 1,
            "last_error": "190: Error validating access token",
            "last_error_at": account.last_error_at.isoformat(),
        }
    ]
    assert "EAAG" not in response.content.decode()


def test_the_sandbox_is_said_clearly(sandbox_account: WhatsAppAccount, agent: User) -> None:
    body = Client().get(URL, headers=bearer(agent)).json()

    assert body["sandbox"] is True
    assert body["message"].startswith("Sandbox mode is active for Suporte")
    assert body["numbers"][0]["mode"] == "sandbox"


def test_an_open_breaker_shows(account: WhatsAppAccount, agent: User) -> None:
    get_breaker("whatsapp").open()

    body = Client().get(URL, headers=bearer(agent)).json()

    assert body["breaker"]["state"] == "open"
    assert body["numbers"][0]["breaker_state"] == "open"


def test_no_number_configured(agent: User) -> None:
    body = Client().get(URL, headers=bearer(agent)).json()

    assert body["sandbox"] is False
    assert body["numbers"] == []
    assert body["message"] == "No WhatsApp number is configured: customers cannot write yet."


def test_anonymous_gets_401(db: None) -> None:
    assert Client().get(URL).status_code == 401


def test_an_inactive_user_is_refused(agent: User) -> None:
    client = Client()
    client.force_login(agent)
    agent.is_active = False
    agent.save()

    assert client.get(URL).status_code in (401, 403)


def test_an_agent_of_any_team_may_look(account: WhatsAppAccount, outsider: User) -> None:
    client = Client()
    client.force_login(outsider)

    assert client.get(URL).status_code == 200


def _queries(user: User) -> int:
    client = Client()
    headers = bearer(user)
    client.get(URL, headers=headers)  # warm: user, content types
    with CaptureQueriesContext(connection) as captured:
        assert client.get(URL, headers=headers).status_code == 200
    return len(captured)


@pytest.mark.parametrize("extra", [2])
def test_constant_queries_for_one_or_three_numbers(
    account: WhatsAppAccount, agent: User, extra: int, settings: Any
) -> None:
    one = _queries(agent)
    for n in range(extra):
        other = _account(n)
        conversation = message_receive(
            inbox=other.inbox, wa_id=f"551198888777{n}", text="oi", external_id=f"wamid.Q{n}"
        ).message.conversation
        _outbound(conversation, Message.Status.SENT)
        _outbound(conversation, Message.Status.PENDING)

    three = _queries(agent)

    assert three == one
    assert len(Client().get(URL, headers=bearer(agent)).json()["numbers"]) == 3

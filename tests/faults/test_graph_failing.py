"""Meta's Graph API fails under the send task: 500s, then rate limits (429
with code 130429), then no answer at all, then it recovers.

The real send task runs in the real database queue through ``db_worker``
against the fake Graph API on 127.0.0.1. Time is injected twice over:
``make_due`` makes the scheduled retries due (the backoff "has passed"), and
``breaker_clock`` moves the whatsapp breaker's clock, so its 30 s reset
timeout is crossed without sleeping.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conversations import channels
from conversations.models import Conversation, Message
from conversations.services import message_receive, message_send
from ispsupport.breakers import get_breaker
from tests.conversations.conftest import (  # noqa: F401 - fixtures
    _no_channel_registrations,
    _no_greeting,
    support,
)
from tests.faults.conftest import BreakerClock
from tests.whatsapp.conftest import PHONE_NUMBER_ID, account, run_worker  # noqa: F401
from tests.whatsapp.fake_graph import FakeGraph, fake_graph  # noqa: F401 - fixture
from whatsapp.models import WhatsAppAccount
from whatsapp.tasks import send_message

pytestmark = pytest.mark.django_db(transaction=True)

TEXTS = ("Olá, Maria!", "Vou verificar a sua conexão.", "Pode reiniciar o roteador?")
TIMEOUT = 0.5  # WHATSAPP_API_TIMEOUT in these tests; the fake hangs for longer


def messages_path() -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{PHONE_NUMBER_ID}/messages"


def meta_error(code: int, message: str) -> dict[str, Any]:
    return {
        "error": {"message": message, "type": "OAuthException", "code": code, "fbtrace_id": "X"}
    }


@pytest.fixture
def conversation(account: WhatsAppAccount, settings: Any) -> Conversation:  # noqa: F811
    settings.WHATSAPP_API_TIMEOUT = TIMEOUT
    channels.register_sender("whatsapp", send_message)
    return message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        text="Minha internet caiu",
        external_id="wamid.FAULT.GRAPH.IN",
    ).message.conversation


class Round:
    """One pass of the worker after time has moved on; what reached Meta."""

    def __init__(self, fake: FakeGraph, run_worker: Callable[[], None]) -> None:  # noqa: F811
        self.fake = fake
        self.run_worker = run_worker

    def __call__(self) -> list[str]:
        seen = len(self.fake.sent())
        # The backoff has elapsed: every scheduled retry is due now.
        DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
        self.run_worker()
        return [r.json["text"]["body"] for r in self.fake.sent()[seen:]]


def statuses(messages: list[Message]) -> list[str]:
    return [Message.objects.get(pk=m.pk).status for m in messages]


def breaker_listed(client: Client) -> dict[str, Any]:
    [whatsapp] = [
        b for b in client.get("/circuit-breakers").json()["breakers"] if b["name"] == "whatsapp"
    ]
    return whatsapp


def test_outbound_messages_wait_out_the_failures_and_are_sent_once(
    conversation: Conversation,
    fake_graph: FakeGraph,  # noqa: F811
    run_worker: Callable[[], None],  # noqa: F811
    breaker_clock: BreakerClock,
    client: Client,
) -> None:
    path = messages_path()
    breaker = get_breaker("whatsapp")
    round_ = Round(fake_graph, run_worker)
    messages = [message_send(conversation=conversation, text=t).message for t in TEXTS]

    # 1. Meta answers 500: three failures open the breaker.
    fake_graph.reply("POST", path, meta_error(131000, "Something went wrong"), status=500, times=3)
    assert round_() == list(TEXTS)
    assert statuses(messages) == ["pending"] * 3
    assert breaker.current_state == "open"
    listed = breaker_listed(client)
    assert (listed["state"], listed["fail_counter"], listed["fail_max"]) == ("open", 3, 3)
    assert listed["opened_at"] is not None

    # 2. 29 s later it is still open: the retries are postponed, nothing is sent.
    breaker_clock.advance(29)
    assert round_() == []
    assert statuses(messages) == ["pending"] * 3

    # 3. At 30 s one trial call goes through. Meta rate-limits (130429): it
    # answered, so the breaker closes, and every message waits for its retry.
    breaker_clock.advance(1.5)
    fake_graph.reply("POST", path, meta_error(130429, "Rate limit hit"), status=429, times=3)
    assert round_() == list(TEXTS)
    assert breaker.current_state == "closed"
    assert statuses(messages) == ["pending"] * 3

    # 4. Meta stops answering: three timeouts open the breaker again. (The
    # late answer is an error: Meta did not take these messages.)
    fake_graph.reply(
        "POST", path, meta_error(2, "Service temporarily unavailable"), status=503,
        times=3, delay=TIMEOUT * 4,
    )  # fmt: skip
    assert round_() == list(TEXTS)
    assert breaker.current_state == "open"
    assert statuses(messages) == ["pending"] * 3

    # 5. Meta is back; 30 s later the trial call succeeds and the rest follow.
    breaker_clock.advance(30.5)
    assert round_() == list(TEXTS)
    assert breaker.current_state == "closed"
    assert breaker_listed(client)["state"] == "closed"
    sent = [Message.objects.get(pk=m.pk) for m in messages]
    assert [m.status for m in sent] == ["sent"] * 3
    assert sorted(m.external_id for m in sent) == [f"wamid.FAKE{n:08d}" for n in (1, 2, 3)]

    # Nothing is left to send, and nothing is sent again.
    assert round_() == []
    assert not DBTaskResult.objects.filter(status="READY").exists()
    per_message = Counter(r.json["text"]["body"] for r in fake_graph.sent())
    # 500, 429, timeout, accepted: four calls each, one of them accepted.
    assert per_message == dict.fromkeys(TEXTS, 4)


def test_a_two_minute_outage_leaves_the_messages_pending_until_meta_returns(
    conversation: Conversation,
    fake_graph: FakeGraph,  # noqa: F811
    run_worker: Callable[[], None],  # noqa: F811
    breaker_clock: BreakerClock,
) -> None:
    path = messages_path()
    round_ = Round(fake_graph, run_worker)
    messages = [message_send(conversation=conversation, text=t).message for t in TEXTS]
    fake_graph.reply("POST", path, meta_error(131000, "Something went wrong"), status=500, times=3)
    assert round_() == list(TEXTS)

    # Meta stays down for two minutes; the worker keeps trying every 15 s.
    for step in range(1, 9):
        breaker_clock.advance(15)
        trial = step % 2 == 0
        if trial:
            fake_graph.reply("POST", path, meta_error(131000, "Still down"), status=500)
        reached = round_()
        # Every 30 s the breaker lets one trial call through and it fails too;
        # in between nothing reaches Meta.
        assert len(reached) == (1 if trial else 0), f"after {15 * step} s: {reached}"
        assert statuses(messages) == ["pending"] * 3, f"after {15 * step} s"

    breaker_clock.advance(30.5)
    assert sorted(round_()) == sorted(TEXTS)
    sent = [Message.objects.get(pk=m.pk) for m in messages]
    assert [m.status for m in sent] == ["sent"] * 3
    # Each one accepted by Meta once, and nothing is left to send again.
    assert sorted(m.external_id for m in sent) == [f"wamid.FAKE{n:08d}" for n in (1, 2, 3)]
    assert round_() == []
    assert not DBTaskResult.objects.filter(status="READY").exists()

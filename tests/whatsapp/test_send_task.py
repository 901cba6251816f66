"""The send task: sent with the wamid, failed with a reason, or retried with
backoff by the real database queue and ``db_worker``; never dropped."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.conf import settings
from django.utils import timezone, translation
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations import channels
from conversations.models import Conversation, Inbox, Message
from conversations.services import message_receive, message_send
from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp import tasks
from whatsapp.models import WhatsAppAccount
from whatsapp.tasks import send_message


def messages_path() -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{PHONE_NUMBER_ID}/messages"


@pytest.fixture
def conversation(account: WhatsAppAccount) -> Conversation:
    return message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        text="Minha internet caiu",
        external_id="wamid.IN0001",
    ).message.conversation


def outbound(conversation: Conversation, text: str = "Olá, Maria!", **kwargs: Any) -> Message:
    return message_send(conversation=conversation, text=text, **kwargs).message


def make_due() -> None:
    """Time passes: the scheduled retries become ready."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


# --- Direct runs -------------------------------------------------------------------------


def test_a_text_is_sent_and_gets_its_wamid(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    message = outbound(conversation)

    assert send_message.call(message.pk) == "sent"

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")
    assert message.sent_at is not None
    [sent] = fake_graph.sent()
    assert sent.json["to"] == "5511988887777"
    assert sent.json["text"] == {"preview_url": False, "body": "Olá, Maria!"}


def test_running_twice_sends_once(conversation: Conversation, fake_graph: FakeGraph) -> None:
    message = outbound(conversation)

    assert send_message.call(message.pk) == "sent"
    assert send_message.call(message.pk) == "skipped"

    assert len(fake_graph.sent()) == 1


def test_a_message_being_sent_by_another_worker_is_left_to_it(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    from django.core.cache import cache

    message = outbound(conversation)
    cache.add(f"whatsapp:send:{message.pk}", 1, timeout=30)

    assert send_message.call(message.pk) == "busy"
    assert fake_graph.sent() == []


def test_a_bsuid_only_customer_is_answered(account: WhatsAppAccount, fake_graph: FakeGraph) -> None:
    conversation = message_receive(
        inbox=account.inbox, bsuid="BR.1502576394655843", text="Oi", external_id="wamid.IN0002"
    ).message.conversation
    message = outbound(conversation, "Oi! Como posso ajudar?")

    send_message.call(message.pk)

    [sent] = fake_graph.sent()
    assert sent.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "recipient": "BR.1502576394655843",
        "type": "text",
        "text": {"preview_url": False, "body": "Oi! Como posso ajudar?"},
    }


def test_a_template_is_built_from_the_payload(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Maria"}]}]
    message = outbound(
        conversation,
        "",
        kind=Message.Kind.TEMPLATE,
        payload={"name": "retomar_atendimento", "language": "pt_BR", "components": components},
    )

    send_message.call(message.pk)

    [sent] = fake_graph.sent()
    assert sent.json["type"] == "template"
    assert sent.json["template"] == {
        "name": "retomar_atendimento",
        "language": {"code": "pt_BR"},
        "components": components,
    }


def test_interactive_media_and_reaction_payloads(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    buttons = outbound(
        conversation,
        "Sua internet voltou?",
        kind=Message.Kind.INTERACTIVE,
        payload={"buttons": [{"id": "sim", "title": "Sim"}, {"id": "nao", "title": "Não"}]},
    )
    document = outbound(
        conversation,
        "Sua fatura",
        kind=Message.Kind.DOCUMENT,
        payload={"link": "https://exemplo.com.br/fatura.pdf", "filename": "fatura.pdf"},
    )
    reaction = outbound(
        conversation,
        "",
        kind=Message.Kind.REACTION,
        payload={"message_id": "wamid.IN0001", "emoji": "👍"},
    )

    for message in (buttons, document, reaction):
        assert send_message.call(message.pk) == "sent"

    first, second, third = (r.json for r in fake_graph.sent())
    assert first["interactive"] == {
        "type": "button",
        "body": {"text": "Sua internet voltou?"},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": "sim", "title": "Sim"}},
                {"type": "reply", "reply": {"id": "nao", "title": "Não"}},
            ]
        },
    }
    assert second["document"] == {
        "link": "https://exemplo.com.br/fatura.pdf",
        "caption": "Sua fatura",
        "filename": "fatura.pdf",
    }
    assert third["reaction"] == {"message_id": "wamid.IN0001", "emoji": "👍"}


def test_a_reply_carries_the_customers_wamid(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    inbound = conversation.messages.get(external_id="wamid.IN0001")
    message = outbound(conversation, "Já verifico", reply_to=inbound)

    send_message.call(message.pk)

    [sent] = fake_graph.sent()
    assert sent.json["context"] == {"message_id": "wamid.IN0001"}


def test_outside_the_window_fails_at_once_with_a_reason(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    fake_graph.fail(
        "POST",
        messages_path(),
        code=131047,
        message="Re-engagement message",
        details="Message failed to send because more than 24 hours have passed",
    )
    message = outbound(conversation)

    with translation.override("en"):
        assert send_message.call(message.pk) == "failed"

    message.refresh_from_db()
    assert message.status == "failed"
    assert message.error_code == "131047"
    assert message.error_title == (
        "More than 24 hours since the customer's last message: send a template."
    )
    assert message.error_detail == (
        "Re-engagement message — Message failed to send because more than 24 hours have passed"
    )
    assert message.failed_at is not None
    assert len(fake_graph.sent()) == 1
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_an_expired_token_fails_and_marks_the_number_unhealthy(
    account: WhatsAppAccount, conversation: Conversation, fake_graph: FakeGraph
) -> None:
    fake_graph.fail(
        "POST",
        messages_path(),
        code=190,
        status=401,
        message="Error validating access token: Session has expired",
    )
    message = outbound(conversation)

    send_message.call(message.pk)

    message.refresh_from_db()
    account.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "190")
    assert account.is_healthy is False
    assert account.last_error == "190: Error validating access token: Session has expired"
    assert account.last_error_at is not None


def test_a_later_success_makes_the_number_healthy_again(
    account: WhatsAppAccount, conversation: Conversation, fake_graph: FakeGraph
) -> None:
    WhatsAppAccount.objects.filter(pk=account.pk).update(is_healthy=False)

    send_message.call(outbound(conversation).pk)

    account.refresh_from_db()
    assert account.is_healthy is True


def test_an_inbox_without_a_whatsapp_number_fails_clearly(
    support: Any, fake_graph: FakeGraph
) -> None:
    inbox = Inbox.objects.create(name="Sem número", default_team=support)
    conversation = message_receive(
        inbox=inbox, wa_id="5511977776666", text="Oi", external_id="wamid.IN0003"
    ).message.conversation
    message = outbound(conversation)

    with translation.override("en"):
        assert send_message.call(message.pk) == "failed"

    message.refresh_from_db()
    assert message.error_code == "no_account"
    assert message.error_title == (
        "This inbox has no WhatsApp number, so the message cannot be sent."
    )
    assert fake_graph.requests == []


def test_a_retryable_error_schedules_the_next_attempt_with_backoff(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    fake_graph.fail("POST", messages_path(), code=130429, message="Rate limit hit")
    message = outbound(conversation)
    before = timezone.now()

    assert send_message.call(message.pk) == "retry"

    message.refresh_from_db()
    assert message.status == "pending"
    [scheduled] = DBTaskResult.objects.filter(status="READY")
    assert scheduled.task_path == "whatsapp.tasks.send_message"
    assert scheduled.args_kwargs["args"] == [message.pk]
    assert scheduled.args_kwargs["kwargs"]["attempt"] == 2
    # Attempt 1 waits 1-2 s (2 s with jitter).
    assert before + timedelta(seconds=1) <= scheduled.run_after
    assert scheduled.run_after <= timezone.now() + timedelta(seconds=2)


def test_backoff_grows_exponentially_up_to_five_minutes() -> None:
    for attempt, ceiling in ((1, 2), (2, 4), (3, 8), (5, 32), (9, 300), (30, 300)):
        delays = [tasks.retry_delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays)


def test_the_last_attempt_fails_with_the_last_error(
    conversation: Conversation, fake_graph: FakeGraph, settings: Any
) -> None:
    settings.WHATSAPP_SEND_MAX_ATTEMPTS = 3
    fake_graph.fail(
        "POST", messages_path(), code=131000, status=500, message="Something went wrong"
    )
    message = outbound(conversation)

    with translation.override("en"):
        assert send_message.call(message.pk, attempt=3) == "failed"

    message.refresh_from_db()
    assert (message.status, message.error_code) == ("failed", "131000")
    assert message.error_detail == "Something went wrong — Gave up after 3 attempts."
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_an_open_breaker_postpones_the_send_without_a_request(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    from ispsupport.breakers import get_breaker

    get_breaker("whatsapp").open()
    message = outbound(conversation)

    assert send_message.call(message.pk) == "retry"

    assert fake_graph.requests == []
    message.refresh_from_db()
    assert message.status == "pending"


# --- Through the real queue and worker -------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_retry_then_success_through_the_worker(
    conversation: Conversation, fake_graph: FakeGraph, run_worker: Callable[[], None]
) -> None:
    channels.register_sender("whatsapp", send_message)
    fake_graph.fail("POST", messages_path(), code=131000, status=500, times=2)
    message = outbound(conversation)

    run_worker()  # attempt 1: 500
    message.refresh_from_db()
    assert message.status == "pending"
    assert DBTaskResult.objects.filter(status="READY").count() == 1
    run_worker()  # the retry is not due yet
    assert len(fake_graph.sent()) == 1

    make_due()
    run_worker()  # attempt 2: 500
    make_due()
    run_worker()  # attempt 3: accepted

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")
    assert len(fake_graph.sent()) == 3
    attempts = sorted(r.args_kwargs["kwargs"].get("attempt", 1) for r in DBTaskResult.objects.all())
    assert attempts == [1, 2, 3]
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}


@pytest.mark.django_db(transaction=True)
def test_an_agent_reply_arrives_at_meta_in_the_documented_shape(
    conversation: Conversation,
    agent: User,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    channels.register_sender("whatsapp", send_message)

    message = message_send(
        conversation=conversation, text="Olá Maria, sou o Bruno. Vou verificar.", actor=agent
    ).message
    run_worker()

    [sent] = fake_graph.sent()
    assert sent.path == f"/{settings.WHATSAPP_API_VERSION}/{PHONE_NUMBER_ID}/messages"
    assert sent.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert sent.json == {
        "messaging_product": "whatsapp",
        "recipient_type": "individual",
        "to": "5511988887777",
        "type": "text",
        "text": {"preview_url": False, "body": "Olá Maria, sou o Bruno. Vou verificar."},
    }
    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")

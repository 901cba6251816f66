"""An agent, the bot or the system writes to the customer: the message is stored
as pending and its delivery enqueued, within WhatsApp's 24-hour window, once
per client key."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations import channels
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    conversation_set_pending,
    message_send,
)
from ispsupport.errors import ServiceError
from tests.ispsupport.sample_tasks import echo

State = Conversation.State

OUTSIDE_WINDOW = (
    "More than 24 hours have passed since the customer's last message: WhatsApp only allows "
    "an approved template message now."
)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


@pytest.fixture
def whatsapp_sender() -> None:
    channels.register_sender("whatsapp", echo)


def _last_inbound(conversation: Conversation, hours_ago: float) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=hours_ago)
    )


def test_agent_reply_is_pending_enqueued_and_takes_the_conversation(
    agent: User, conversation: Conversation, whatsapp_sender: None
) -> None:
    before = timezone.now()

    received = message_send(conversation=conversation, actor=agent, text="Olá, sou o Bruno")

    message = Message.objects.get(direction=Message.Direction.OUT)
    assert received.created is True
    assert received.message.pk == message.pk
    assert (message.sender_type, message.sender_user, message.kind, message.status) == (
        Message.SenderType.AGENT,
        agent,
        Message.Kind.TEXT,
        Message.Status.PENDING,
    )
    assert message.text == "Olá, sou o Bruno"
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee, conversation.unread_count) == (
        State.OPEN,
        agent,
        0,
    )
    assert before <= conversation.first_response_at <= timezone.now()
    assert conversation.last_message_at == message.created_at
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "tests.ispsupport.sample_tasks.echo"
    assert task.args_kwargs["args"] == [message.pk]


def test_first_response_is_the_first_one_only(
    agent: User, conversation: Conversation, whatsapp_sender: None
) -> None:
    message_send(conversation=conversation, actor=agent, text="Olá")
    conversation.refresh_from_db()
    first = conversation.first_response_at

    message_send(conversation=conversation, actor=agent, text="Pode reiniciar o roteador?")

    conversation.refresh_from_db()
    assert conversation.first_response_at == first
    assert DBTaskResult.objects.count() == 2


def test_without_a_channel_sender_the_message_waits_as_pending(
    agent: User, conversation: Conversation
) -> None:
    message_send(conversation=conversation, actor=agent, text="Olá")

    assert Message.objects.get(direction=Message.Direction.OUT).status == Message.Status.PENDING
    assert not DBTaskResult.objects.exists()


def test_the_bot_writes_without_taking_the_conversation(
    conversation: Conversation, whatsapp_sender: None
) -> None:
    message = message_send(conversation=conversation, text="Sou o assistente virtual").message

    assert (message.sender_type, message.sender_user) == (Message.SenderType.BOT, None)
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee, conversation.first_response_at) == (
        State.QUEUED,
        None,
        None,
    )


def test_a_system_message(conversation: Conversation) -> None:
    message = message_send(
        conversation=conversation, text="Protocolo aberto", sender_type="system"
    ).message

    assert message.sender_type == Message.SenderType.SYSTEM


# --- the 24-hour window ---------------------------------------------------------------


def test_free_text_after_24_hours_is_refused(agent: User, conversation: Conversation) -> None:
    _last_inbound(conversation, 24.01)

    with pytest.raises(ServiceError) as exc:
        message_send(conversation=conversation, actor=agent, text="Ainda está aí?")

    assert (exc.value.code, exc.value.message) == ("outside_service_window", OUTSIDE_WINDOW)
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


def test_free_text_within_24_hours_is_sent(agent: User, conversation: Conversation) -> None:
    _last_inbound(conversation, 23.9)

    message_send(conversation=conversation, actor=agent, text="Ainda está aí?")

    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 1


def test_a_template_may_be_sent_after_24_hours(
    agent: User, conversation: Conversation, whatsapp_sender: None
) -> None:
    _last_inbound(conversation, 72)
    template = {"name": "retorno_atendimento", "language": {"code": "pt_BR"}}

    message = message_send(
        conversation=conversation, actor=agent, kind=Message.Kind.TEMPLATE, payload=template
    ).message

    message.refresh_from_db()
    assert (message.kind, message.payload, message.status) == (
        Message.Kind.TEMPLATE,
        template,
        Message.Status.PENDING,
    )


def test_a_conversation_the_customer_never_wrote_in_needs_a_template(
    agent: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=None)

    with pytest.raises(ServiceError) as exc:
        message_send(conversation=conversation, actor=agent, text="Olá")

    assert exc.value.code == "outside_service_window"


# --- refusals -------------------------------------------------------------------------


def test_a_resolved_conversation_must_be_reopened_first(
    agent: User, conversation: Conversation
) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    with pytest.raises(ServiceError) as exc:
        message_send(conversation=conversation, actor=agent, text="Mais alguma coisa?")

    assert (exc.value.code, exc.value.message) == (
        "conversation_resolved",
        "This conversation is resolved; reopen it before writing to the customer.",
    )
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_an_empty_text_is_refused(agent: User, conversation: Conversation) -> None:
    with pytest.raises(ValidationError) as exc:
        message_send(conversation=conversation, actor=agent, text="   ")

    assert exc.value.message_dict == {"text": ["Write a message."]}
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()


def test_a_teammate_cannot_write_in_the_agents_conversation(
    agent: User, teammate: User, supervisor: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    with pytest.raises(PermissionDenied) as exc:
        message_send(conversation=conversation, actor=teammate, text="Oi")

    assert str(exc.value) == (
        "This conversation is assigned to Bruno; ask them or a supervisor to transfer it."
    )
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()

    # A supervisor may step in without taking it over.
    message_send(conversation=conversation, actor=supervisor, text="Oi, sou a supervisora")
    conversation.refresh_from_db()
    assert conversation.assignee == agent


def test_writing_in_a_pending_conversation_keeps_it_pending(
    agent: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_set_pending(conversation=conversation, actor=agent)

    message_send(conversation=conversation, actor=agent, text="Conseguiu testar?")

    conversation.refresh_from_db()
    assert conversation.state == State.PENDING


# --- idempotency ----------------------------------------------------------------------


def test_a_retried_request_with_the_same_client_key_sends_once(
    agent: User, conversation: Conversation, whatsapp_sender: None
) -> None:
    first = message_send(
        conversation=conversation, actor=agent, text="Olá", client_key="c6f1e2a0-retry"
    )
    again = message_send(
        conversation=conversation, actor=agent, text="Olá", client_key="c6f1e2a0-retry"
    )

    assert (first.created, again.created) == (True, False)
    assert again.message.pk == first.message.pk
    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 1
    assert DBTaskResult.objects.count() == 1


def test_different_client_keys_are_different_messages(
    agent: User, conversation: Conversation
) -> None:
    message_send(conversation=conversation, actor=agent, text="Olá", client_key="k1")
    message_send(conversation=conversation, actor=agent, text="Olá", client_key="k2")

    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 2


def test_a_retry_still_finds_its_message_after_the_conversation_was_resolved(
    agent: User, conversation: Conversation
) -> None:
    first = message_send(conversation=conversation, actor=agent, text="Tchau", client_key="k1")
    conversation_resolve(conversation=conversation, actor=agent)

    again = message_send(conversation=conversation, actor=agent, text="Tchau", client_key="k1")

    assert (again.message.pk, again.created) == (first.message.pk, False)

"""Without the bot, a new conversation answers the customer at once with its
protocol number, in the project's language."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.utils import translation

from conversations import channels
from conversations.models import Conversation, Message
from conversations.selectors import inbox_list
from ispsupport.tasks import background_task

Receive = Callable[..., Message]


@background_task()
def deliver(message_id: int) -> None:
    """Stands in for a channel's sender; these tests only look at what is queued."""


@background_task()
def answer(message_id: int) -> None:
    """Stands in for the bot."""


@pytest.fixture(autouse=True)
def _greeting_on(settings: pytest.FixtureRequest) -> None:
    settings.CONVERSATION_GREETING = True  # type: ignore[attr-defined]


def outbound(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(direction=Message.Direction.OUT))


def test_new_conversation_gets_its_protocol_in_portuguese(receive: Receive) -> None:
    channels.register_sender("whatsapp", deliver)
    with translation.override("en"):  # the staff member's language does not matter
        conversation = receive("Minha internet caiu").conversation

    [greeting] = outbound(conversation)
    assert greeting.text == (
        f"Olá! Recebemos sua mensagem. Seu protocolo de atendimento é {conversation.protocol}. "
        "Em instantes uma pessoa da nossa equipe vai te responder."
    )
    assert greeting.sender_type == Message.SenderType.SYSTEM
    assert greeting.sender_user is None
    assert greeting.status == Message.Status.PENDING


def test_english_deployment_greets_in_english(receive: Receive, settings: object) -> None:
    settings.LANGUAGE_CODE = "en"  # type: ignore[attr-defined]

    conversation = receive("My internet is down").conversation

    [greeting] = outbound(conversation)
    assert greeting.text == (
        "Hello! We have received your message. Your service protocol number is "
        f"{conversation.protocol}. Someone from our team will answer you shortly."
    )


def test_the_greeting_is_not_a_first_response_and_the_customer_still_waits(
    receive: Receive, agent: object
) -> None:
    conversation = receive().conversation
    conversation.refresh_from_db()

    assert conversation.state == Conversation.State.QUEUED
    assert conversation.first_response_at is None
    assert conversation.unread_count == 1
    [row] = inbox_list(user=agent)  # type: ignore[arg-type]
    assert row.last_message_text == "Minha internet caiu"
    assert row.last_message_direction == Message.Direction.IN


def test_only_once_per_conversation(receive: Receive) -> None:
    first = receive("Oi").conversation
    receive("Minha internet caiu")
    receive("Alguém aí?")

    assert len(outbound(first)) == 1


def test_the_bot_greets_by_itself(receive: Receive) -> None:
    channels.register_bot(answer)

    conversation = receive().conversation

    assert conversation.state == Conversation.State.BOT
    assert outbound(conversation) == []


def test_can_be_turned_off(receive: Receive, settings: object) -> None:
    settings.CONVERSATION_GREETING = False  # type: ignore[attr-defined]

    assert outbound(receive().conversation) == []

"""After a conversation is resolved the bot asks the customer for a 1-5 rating,
stores the answer on the resolved conversation and thanks them."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client import REGISTRY

from accounts.models import User
from chatbot.csat import ask_rating, thank_for_rating
from chatbot.models import BotSettings
from conversations.models import Conversation, Inbox, Message
from conversations.services import conversation_resolve, message_receive, message_send
from tests.whatsapp.factories import account_of, approved_template

State = Conversation.State
Capture = Callable[..., AbstractContextManager[Any]]
Receive = Callable[..., Message]
QUESTION = "Como você avalia este atendimento? Escolha de 1 (ruim) a 5 (ótimo)."
THANKS = "Obrigado pela sua avaliação! 💙"


@pytest.fixture
def receive(inbox: Inbox) -> Receive:
    """Maria writes (or taps ``reply_id``); the message is stored, the bot not run."""
    counter = iter(range(1, 10**6))

    def _receive(text: str, *, reply_id: str = "") -> Message:
        return message_receive(
            inbox=inbox,
            wa_id="5511988887777",
            profile_name="Maria Souza",
            text=text,
            kind=Message.Kind.INTERACTIVE if reply_id else Message.Kind.TEXT,
            payload={"reply_id": reply_id} if reply_id else {},
            external_id=f"wamid.CSAT{next(counter):06d}",
        ).message

    return _receive


@pytest.fixture
def capture(django_capture_on_commit_callbacks: Capture) -> Callable[[], Any]:
    """Run what the services leave for after the commit (signals, metrics)."""
    return lambda: django_capture_on_commit_callbacks(execute=True)


@pytest.fixture
def resolved(receive: Receive, agent: User, capture: Callable[[], Any]) -> Conversation:
    """Maria asked for help, Bruno answered and resolved it."""
    conversation = receive("minha internet caiu").conversation
    message_send(conversation=conversation, actor=agent, text="Reiniciei sua conexão, Maria.")
    with capture():
        conversation_resolve(conversation=conversation, actor=agent)
    conversation.refresh_from_db()
    return conversation


@pytest.fixture
def asked(resolved: Conversation) -> Conversation:
    assert ask_rating.call(resolved.pk) == "asked"
    resolved.refresh_from_db()
    return resolved


@pytest.fixture
def bot_settings(db: None) -> BotSettings:
    return BotSettings.objects.get(pk=1)


def enqueued(name: str) -> list[list[Any]]:
    """The arguments of each ``chatbot.csat.<name>`` task waiting in the queue."""
    return [
        row.args_kwargs["args"]
        for row in DBTaskResult.objects.filter(task_path=f"chatbot.csat.{name}").order_by("id")
    ]


def outbound(conversation: Conversation) -> list[Message]:
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT).order_by(
            "id"
        )
    )


def counter(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# --- asking -------------------------------------------------------------------------------


def test_resolving_enqueues_the_rating_question(resolved: Conversation) -> None:
    assert enqueued("ask_rating") == [[resolved.pk]]
    assert resolved.csat_requested_at is None
    assert len(outbound(resolved)) == 1  # the agent's reply; the question waits for the task


def test_the_question_is_a_list_of_the_five_scores(resolved: Conversation) -> None:
    before = timezone.now()

    assert ask_rating.call(resolved.pk) == "asked"

    question = outbound(resolved)[-1]
    assert (question.kind, question.sender_type, question.sender_user, question.status) == (
        Message.Kind.INTERACTIVE,
        Message.SenderType.BOT,
        None,
        Message.Status.PENDING,
    )
    assert question.text == QUESTION
    assert question.payload["body"] == QUESTION
    [section] = question.payload["sections"]
    assert [(row["id"], row["title"]) for row in section["rows"]] == [
        ("csat:5", "5 ⭐ Ótimo"),
        ("csat:4", "4 ⭐ Bom"),
        ("csat:3", "3 ⭐ Regular"),
        ("csat:2", "2 ⭐ Ruim"),
        ("csat:1", "1 ⭐ Péssimo"),
    ]
    assert all(len(row["title"]) <= 24 for row in section["rows"])  # WhatsApp's row limit
    resolved.refresh_from_db()
    assert resolved.state == State.RESOLVED
    assert before <= resolved.csat_requested_at <= timezone.now()


def test_the_question_is_asked_once(asked: Conversation) -> None:
    first_asked_at = asked.csat_requested_at

    assert ask_rating.call(asked.pk) == "already_asked"

    assert [m.kind for m in outbound(asked)] == [Message.Kind.TEXT, Message.Kind.INTERACTIVE]
    asked.refresh_from_db()
    assert asked.csat_requested_at == first_asked_at


def test_a_conversation_reopened_before_the_task_ran_is_not_asked(
    resolved: Conversation, receive: Receive
) -> None:
    receive("ainda está sem sinal")

    assert ask_rating.call(resolved.pk) == "not_resolved"

    resolved.refresh_from_db()
    assert resolved.state == State.OPEN
    assert resolved.csat_requested_at is None
    assert all(m.kind == Message.Kind.TEXT for m in outbound(resolved))


def test_after_the_24_hour_window_without_a_template_nothing_is_asked(
    resolved: Conversation,
) -> None:
    Conversation.objects.filter(pk=resolved.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=25)
    )

    assert ask_rating.call(resolved.pk) == "window_closed"

    assert len(outbound(resolved)) == 1
    resolved.refresh_from_db()
    assert resolved.csat_requested_at is None


def _approved(inbox: Inbox, name: str, language: str, components: list[Any]) -> None:
    approved_template(account_of(inbox), name, components, language=language)


RATING_BODY = "Como você avalia nosso atendimento? Responda de 1 a 5."


def test_after_the_24_hour_window_the_configured_template_asks(
    resolved: Conversation, bot_settings: BotSettings
) -> None:
    _approved(resolved.inbox, "avaliacao_atendimento", "en_US", [{"type": "BODY", "text": "Rate"}])
    _approved(
        resolved.inbox, "avaliacao_atendimento", "pt_BR", [{"type": "BODY", "text": RATING_BODY}]
    )
    bot_settings.csat_template = "avaliacao_atendimento"
    bot_settings.save()
    Conversation.objects.filter(pk=resolved.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=25)
    )

    assert ask_rating.call(resolved.pk) == "asked"

    question = outbound(resolved)[-1]
    assert (question.kind, question.sender_type) == (Message.Kind.TEMPLATE, Message.SenderType.BOT)
    # Portuguese first, and the thread shows what the customer reads.
    assert question.payload == {"name": "avaliacao_atendimento", "language": "pt_BR"}
    assert question.text == RATING_BODY
    resolved.refresh_from_db()
    assert resolved.csat_requested_at is not None


@pytest.mark.parametrize(
    ("components", "outcome"),
    [
        (None, "template_missing"),
        ([{"type": "BODY", "text": "Olá {{1}}, avalie de 1 a 5"}], "template_unusable"),
        (
            [{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Avalie"}],
            "template_unusable",
        ),
    ],
    ids=["not-approved-or-synced", "needs-a-value", "needs-an-image"],
)
def test_a_template_meta_would_refuse_is_not_sent(
    resolved: Conversation, bot_settings: BotSettings, components: Any, outcome: str
) -> None:
    if components is not None:
        _approved(resolved.inbox, "avaliacao_atendimento", "pt_BR", components)
    bot_settings.csat_template = "avaliacao_atendimento"
    bot_settings.save()
    Conversation.objects.filter(pk=resolved.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=25)
    )

    assert ask_rating.call(resolved.pk) == outcome

    assert len(outbound(resolved)) == 1  # only the agent's reply
    resolved.refresh_from_db()
    assert resolved.csat_requested_at is None


def test_with_the_rating_switched_off_nothing_is_asked(
    resolved: Conversation, bot_settings: BotSettings
) -> None:
    bot_settings.csat_enabled = False
    bot_settings.save()

    assert ask_rating.call(resolved.pk) == "disabled"

    assert len(outbound(resolved)) == 1
    resolved.refresh_from_db()
    assert resolved.csat_requested_at is None


# --- answering ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "reply_id", "score"),
    [("5", "", 5), ("4 ⭐ Bom", "csat:4", 4), ("3 estrelas", "", 3)],
    ids=["typed", "tapped", "with-words"],
)
def test_the_answer_is_stored_on_the_resolved_conversation(
    asked: Conversation,
    receive: Receive,
    capture: Callable[[], Any],
    text: str,
    reply_id: str,
    score: int,
) -> None:
    rated_before = counter("bot_messages_total", intent="csat")

    with capture():
        answer = receive(text, reply_id=reply_id)

    assert answer.conversation_id == asked.pk
    asked.refresh_from_db()
    assert (asked.state, asked.csat_score, asked.unread_count) == (State.RESOLVED, score, 0)
    assert asked.csat_answered_at is not None
    assert Conversation.objects.count() == 1
    assert enqueued("thank_for_rating") == [[asked.pk]]
    assert counter("bot_messages_total", intent="csat") == rated_before + 1


def test_the_customer_is_thanked(asked: Conversation, receive: Receive) -> None:
    receive("5")

    assert thank_for_rating.call(asked.pk) == "thanked"

    thanks = outbound(asked)[-1]
    assert (thanks.kind, thanks.text, thanks.sender_type) == (
        Message.Kind.TEXT,
        THANKS,
        Message.SenderType.BOT,
    )
    asked.refresh_from_db()
    assert asked.state == State.RESOLVED


def test_a_message_that_is_no_score_reopens_the_conversation(
    asked: Conversation, receive: Receive, agent: User, capture: Callable[[], Any]
) -> None:
    with capture():
        message = receive("minha internet caiu de novo")

    assert message.conversation_id == asked.pk
    asked.refresh_from_db()
    assert (asked.state, asked.assignee, asked.csat_score) == (State.OPEN, agent, None)
    assert enqueued("thank_for_rating") == []


def test_a_score_a_day_after_the_question_is_a_new_conversation(
    asked: Conversation, receive: Receive, capture: Callable[[], Any]
) -> None:
    long_ago = timezone.now() - timedelta(hours=25)
    Conversation.objects.filter(pk=asked.pk).update(
        csat_requested_at=long_ago, resolved_at=long_ago
    )

    with capture():
        message = receive("5")

    assert message.conversation_id != asked.pk
    assert message.conversation.state == State.BOT
    asked.refresh_from_db()
    assert (asked.state, asked.csat_score, asked.csat_answered_at) == (State.RESOLVED, None, None)
    assert enqueued("thank_for_rating") == []


def test_a_second_score_is_not_taken_as_a_new_rating(
    asked: Conversation, receive: Receive, capture: Callable[[], Any]
) -> None:
    receive("2")

    with capture():
        again = receive("5")

    asked.refresh_from_db()
    assert asked.csat_score == 2
    assert enqueued("thank_for_rating") == []
    # Anything after the answer is a message for a person again.
    assert again.conversation_id == asked.pk
    assert asked.state == State.OPEN


# --- self-served ---------------------------------------------------------------------------


def test_a_conversation_the_bot_settled_alone_counts_as_self_served(
    receive: Receive, capture: Callable[[], Any]
) -> None:
    conversation = receive("2 via do boleto").conversation
    message_send(conversation=conversation, text="Aqui está o seu boleto.")
    before = counter("bot_self_served_total")

    with capture():
        conversation_resolve(conversation=conversation, actor=None)

    assert counter("bot_self_served_total") == before + 1
    assert enqueued("ask_rating") == [[conversation.pk]]


def test_a_conversation_an_agent_resolved_is_not_self_served(
    receive: Receive, agent: User, capture: Callable[[], Any]
) -> None:
    conversation = receive("minha internet caiu").conversation
    message_send(conversation=conversation, actor=agent, text="Vou verificar.")
    before = counter("bot_self_served_total")

    with capture():
        conversation_resolve(conversation=conversation, actor=agent)

    assert counter("bot_self_served_total") == before
    assert enqueued("ask_rating") == [[conversation.pk]]

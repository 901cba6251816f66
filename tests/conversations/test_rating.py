"""What counts as an answer to the rating question, and that a score-looking
message is only taken as one when the customer was asked."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest

from accounts.models import User
from conversations import signals
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_request_rating,
    conversation_resolve,
    message_send,
    rating_from,
)

State = Conversation.State
Receive = Callable[..., Message]
Capture = Callable[..., AbstractContextManager[Any]]


@pytest.mark.parametrize(
    ("text", "reply_id", "score"),
    [
        ("5", "", 5),
        (" 4 ", "", 4),
        ("1", "", 1),
        ("5 estrelas", "", 5),
        ("1 estrela", "", 1),
        ("4 stars", "", 4),
        ("3⭐", "", 3),
        ("5 ⭐⭐⭐⭐⭐", "", 5),
        ("5!", "", 5),
        ("2.", "", 2),
        ("nota 5", "", None),  # words around the number: a sentence, not an answer
        ("10", "", None),
        ("0", "", None),
        ("6", "", None),
        ("-3", "", None),
        ("5 reais", "", None),
        ("5 dias sem internet", "", None),
        ("3 5", "", None),
        ("", "", None),
        ("⭐⭐⭐⭐⭐", "", None),
        ("2 ⭐ Ruim", "csat:2", 2),
        ("", "csat:2", 2),
        ("", "csat:6", None),
        ("", "csat:", None),
        ("Desbloqueio de confiança", "menu:2", None),
        ("", "menu:2", None),
    ],
)
def test_rating_from(text: str, reply_id: str, score: int | None) -> None:
    payload = {"reply_id": reply_id} if reply_id else {}

    assert rating_from(text=text, payload=payload) == score


def test_the_tapped_option_wins_over_the_text() -> None:
    assert rating_from(text="5", payload={"reply_id": "csat:1"}) == 1


def test_a_score_in_a_conversation_never_asked_reopens_it(
    agent: User, receive: Receive, django_capture_on_commit_callbacks: Capture
) -> None:
    conversation = receive("minha internet caiu").conversation
    message_send(conversation=conversation, actor=agent, text="Já normalizou?")
    conversation_resolve(conversation=conversation, actor=agent)
    rated: list[dict[str, Any]] = []
    signals.conversation_rated.connect(
        lambda **kwargs: rated.append(kwargs), weak=False, dispatch_uid="test-rating"
    )

    try:
        with django_capture_on_commit_callbacks(execute=True):
            message = receive("5")
    finally:
        signals.conversation_rated.disconnect(dispatch_uid="test-rating")

    assert message.conversation_id == conversation.pk
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee, conversation.unread_count) == (
        State.OPEN,
        agent,
        1,
    )
    assert (conversation.csat_score, conversation.csat_answered_at) == (None, None)
    assert rated == []


def test_a_score_in_an_asked_conversation_is_stored_and_announced(
    agent: User, receive: Receive, django_capture_on_commit_callbacks: Capture
) -> None:
    conversation = receive("minha internet caiu").conversation
    conversation_resolve(conversation=conversation, actor=agent)
    conversation_request_rating(conversation=conversation)
    rated: list[dict[str, Any]] = []
    signals.conversation_rated.connect(
        lambda **kwargs: rated.append(kwargs), weak=False, dispatch_uid="test-rating"
    )

    try:
        with django_capture_on_commit_callbacks(execute=True):
            message = receive("4")
    finally:
        signals.conversation_rated.disconnect(dispatch_uid="test-rating")

    conversation.refresh_from_db()
    assert (conversation.state, conversation.csat_score, conversation.unread_count) == (
        State.RESOLVED,
        4,
        0,
    )
    assert [(r["conversation_id"], r["score"], r["message_id"]) for r in rated] == [
        (conversation.pk, 4, message.pk)
    ]


def test_a_score_while_another_conversation_is_going_on_belongs_to_that_one(
    agent: User, receive: Receive, inbox: Any
) -> None:
    """The question of an old conversation is not answered by a digit typed in a
    newer one (say, a menu choice): the active conversation takes the message."""
    old = receive("minha internet caiu").conversation
    conversation_resolve(conversation=old, actor=agent)
    conversation_request_rating(conversation=old)
    current = Conversation.objects.create(
        contact=old.contact, inbox=inbox, team=old.team, state=State.QUEUED
    )

    message = receive("3")

    assert message.conversation_id == current.pk
    old.refresh_from_db()
    assert old.csat_score is None

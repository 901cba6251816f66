"""Live events: published to the right groups with the right payload, only
after the transaction commits, and never for a change that was rolled back."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

from accounts.models import Team, User
from conversations.events import SUPERVISORS_GROUP, conversation_group, team_group, user_group
from conversations.models import Conversation, Message
from conversations.services import (
    conversation_assign,
    conversation_transfer,
    message_apply_status,
    message_send,
    note_create,
)
from ispsupport import events as publisher

Published = list[tuple[list[str], dict[str, Any]]]
Receive = Callable[..., Message]
Capture = Callable[..., Any]


@pytest.fixture
def published(monkeypatch: pytest.MonkeyPatch) -> Published:
    """What reached the publisher, in order, as (groups, payload)."""
    sent: Published = []
    monkeypatch.setattr(
        publisher, "publish", lambda groups, payload: sent.append((list(groups), payload))
    )
    return sent


def conversation_update(conversation: Conversation) -> dict[str, Any]:
    conversation.refresh_from_db()
    return {
        "type": "conversation.update",
        "id": conversation.pk,
        "protocol": conversation.protocol,
        "state": conversation.state,
        "team_id": conversation.team_id,
        "assignee_id": conversation.assignee_id,
        "priority": conversation.priority,
        "unread_count": conversation.unread_count,
        "last_message_at": conversation.last_message_at.isoformat(),
    }


def test_an_inbound_message_is_announced_after_the_commit(
    receive: Receive,
    support: Team,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = receive("Sem sinal")
        assert published == []

    conversation = message.conversation
    audience = [conversation_group(conversation.pk), team_group(support.pk), SUPERVISORS_GROUP]
    assert published == [
        (
            audience,
            {
                "type": "message.update",
                "id": message.pk,
                "conversation_id": conversation.pk,
                "direction": "in",
                "sender_type": "contact",
                "kind": "text",
                "text": "Sem sinal",
                "status": "received",
                "error_title": "",
                "reactions": {},
                "created_at": message.created_at.isoformat(),
            },
        ),
        (audience, conversation_update(conversation)),
    ]


def test_nothing_is_announced_for_a_change_that_rolls_back(
    agent: User,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with (
        django_capture_on_commit_callbacks(execute=True) as callbacks,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        conversation_assign(conversation=conversation, agent=agent, actor=agent)
        message_send(conversation=conversation, actor=agent, text="Olá")
        raise RuntimeError("the request failed after the services ran")

    assert callbacks == []
    assert published == []
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (Conversation.State.QUEUED, None)


def test_an_assignment_reaches_the_new_assignee(
    agent: User,
    support: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(conversation=conversation, agent=agent, actor=agent)

    assert published == [
        (
            [
                conversation_group(conversation.pk),
                team_group(support.pk),
                SUPERVISORS_GROUP,
                user_group(agent.pk),
            ],
            conversation_update(conversation),
        )
    ]
    assert published[0][1]["assignee_id"] == agent.pk


def test_a_transfer_tells_both_teams_and_the_previous_assignee(
    agent: User,
    outsider: User,
    support: Team,
    finance: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    with django_capture_on_commit_callbacks(execute=True):
        conversation_transfer(conversation=conversation, actor=agent, agent=outsider)

    [(groups, payload)] = published
    assert groups == [
        conversation_group(conversation.pk),
        team_group(finance.pk),
        SUPERVISORS_GROUP,
        user_group(outsider.pk),
        user_group(agent.pk),
    ]
    assert (payload["team_id"], payload["assignee_id"]) == (finance.pk, outsider.pk)


def test_a_status_update_is_announced_with_its_error(
    agent: User,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    message = message_send(conversation=conversation, actor=agent, text="Olá").message

    with django_capture_on_commit_callbacks(execute=True):
        message_apply_status(
            message=message, status="failed", error_code="131047", error_title="Re-engagement"
        )
        message_apply_status(message=message, status="read")  # ignored: failed is terminal

    [(groups, payload)] = published
    assert groups[0] == conversation_group(conversation.pk)
    assert (payload["type"], payload["id"], payload["status"], payload["error_title"]) == (
        "message.update",
        message.pk,
        "failed",
        "Re-engagement",
    )


def test_a_note_goes_to_the_thread_only(
    agent: User,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        note = note_create(conversation=conversation, author=agent, text="  Cliente VIP  ")

    assert published == [
        (
            [conversation_group(conversation.pk)],
            {
                "type": "note.created",
                "id": note.pk,
                "conversation_id": conversation.pk,
                "author_id": agent.pk,
                "text": "Cliente VIP",
                "created_at": note.created_at.isoformat(),
            },
        )
    ]


# --- through the real channel layer (in memory, or Redis with REDIS_URL) ---------------


@pytest.fixture
def team_listener(support: Team) -> Iterator[str]:
    layer = get_channel_layer()
    channel = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(team_group(support.pk), channel)
    yield channel
    async_to_sync(layer.group_discard)(team_group(support.pk), channel)


def test_a_browser_in_the_team_group_receives_the_update(
    agent: User,
    conversation: Conversation,
    team_listener: str,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    layer = get_channel_layer()

    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(conversation=conversation, agent=agent, actor=agent)

    received = async_to_sync(layer.receive)(team_listener)
    assert received == conversation_update(conversation)


def test_a_layer_that_is_down_does_not_fail_the_change(
    agent: User,
    conversation: Conversation,
    monkeypatch: pytest.MonkeyPatch,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    class DeadLayer:
        async def group_send(self, group: str, payload: dict[str, Any]) -> None:
            raise ConnectionError("redis is down")

    monkeypatch.setattr(publisher, "get_channel_layer", lambda: DeadLayer())

    with django_capture_on_commit_callbacks(execute=True):
        conversation_assign(conversation=conversation, agent=agent, actor=agent)

    conversation.refresh_from_db()
    assert conversation.assignee == agent

"""Live events: published to the right groups with the right payload, only
after the transaction commits, and never for a change that was rolled back."""

from __future__ import annotations

import asyncio
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
    conversation_handoff,
    conversation_transfer,
    message_apply_status,
    message_send,
    message_set_media,
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


def conversation_update(
    conversation: Conversation,
    *,
    previous_team_id: int | None = None,
    previous_assignee_id: int | None = None,
) -> dict[str, Any]:
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
        "previous_team_id": previous_team_id,
        "previous_assignee_id": previous_assignee_id,
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
                "team_id": support.pk,
                "assignee_id": None,
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
        team_group(support.pk),
        SUPERVISORS_GROUP,
        user_group(outsider.pk),
        user_group(agent.pk),
    ]
    assert payload == conversation_update(
        conversation, previous_team_id=support.pk, previous_assignee_id=agent.pk
    )
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
                "team_id": conversation.team_id,
                "assignee_id": None,
                "author_id": agent.pk,
                "text": "Cliente VIP",
                "created_at": note.created_at.isoformat(),
            },
        )
    ]


def test_a_transfer_to_another_queue_tells_the_team_it_left(
    agent: User,
    support: Team,
    finance: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        conversation_transfer(conversation=conversation, actor=agent, team=finance)

    [(groups, payload)] = published
    assert groups == [
        conversation_group(conversation.pk),
        team_group(finance.pk),
        team_group(support.pk),
        SUPERVISORS_GROUP,
    ]
    assert payload == conversation_update(conversation, previous_team_id=support.pk)
    assert (payload["team_id"], payload["assignee_id"]) == (finance.pk, None)


def test_a_handoff_to_another_team_tells_the_inbox_team(
    support: Team,
    finance: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.BOT)

    with django_capture_on_commit_callbacks(execute=True):
        conversation_handoff(conversation=conversation, team=finance, reason="boleto")

    [(groups, payload)] = published
    assert groups == [
        conversation_group(conversation.pk),
        team_group(finance.pk),
        team_group(support.pk),
        SUPERVISORS_GROUP,
    ]
    assert (payload["team_id"], payload["previous_team_id"]) == (finance.pk, support.pk)


def test_message_events_carry_the_team_and_assignee_of_now(
    agent: User,
    outsider: User,
    support: Team,
    finance: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        message = message_send(conversation=conversation, actor=agent, text="Olá").message
    [(groups, payload), _update] = published
    assert (payload["type"], payload["team_id"], payload["assignee_id"]) == (
        "message.update",
        support.pk,
        agent.pk,
    )
    assert groups == [
        conversation_group(conversation.pk),
        team_group(support.pk),
        SUPERVISORS_GROUP,
        user_group(agent.pk),
    ]
    conversation_transfer(conversation=conversation, actor=agent, agent=outsider)
    published.clear()

    # ``message`` still holds the conversation as it was before the transfer,
    # as a media download that started before it would.
    assert message.conversation.team_id == support.pk
    with django_capture_on_commit_callbacks(execute=True):
        message_set_media(message=message, path="media/x.jpg", mime_type="image/jpeg")

    [(groups, payload)] = published
    assert (payload["team_id"], payload["assignee_id"]) == (finance.pk, outsider.pk)
    assert groups == [
        conversation_group(conversation.pk),
        team_group(finance.pk),
        SUPERVISORS_GROUP,
        user_group(outsider.pk),
    ]


def test_a_note_carries_the_team_and_assignee_of_now(
    agent: User,
    outsider: User,
    finance: Team,
    conversation: Conversation,
    published: Published,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    stale = Conversation.objects.get(pk=conversation.pk)
    conversation_transfer(conversation=conversation, actor=agent, agent=outsider)

    with django_capture_on_commit_callbacks(execute=True):
        note_create(conversation=stale, author=outsider, text="Segunda via enviada")

    [(groups, payload)] = published
    assert groups == [conversation_group(conversation.pk)]
    assert (payload["type"], payload["team_id"], payload["assignee_id"]) == (
        "note.created",
        finance.pk,
        outsider.pk,
    )


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
    event_id = received.pop("event")
    assert isinstance(event_id, str) and len(event_id) == 32
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


def test_one_change_has_one_event_id_in_every_group(
    agent: User,
    support: Team,
    conversation: Conversation,
    django_capture_on_commit_callbacks: Capture,
) -> None:
    """A browser in the team group and in its own user group gets the same
    change twice; the one id lets its socket forward it once."""
    layer = get_channel_layer()
    in_team = async_to_sync(layer.new_channel)()
    own = async_to_sync(layer.new_channel)()
    async_to_sync(layer.group_add)(team_group(support.pk), in_team)
    async_to_sync(layer.group_add)(user_group(agent.pk), own)
    try:
        with django_capture_on_commit_callbacks(execute=True):
            conversation_assign(conversation=conversation, agent=agent, actor=agent)
        with django_capture_on_commit_callbacks(execute=True):
            message_send(conversation=conversation, actor=agent, text="Olá")

        async def three_each() -> list[list[dict[str, Any]]]:
            # One event loop for all receives: Redis' layer buffers per loop.
            return [
                [await asyncio.wait_for(layer.receive(c), 2) for _ in range(3)]
                for c in (in_team, own)
            ]

        team_events, own_events = async_to_sync(three_each)()
    finally:
        async_to_sync(layer.group_discard)(team_group(support.pk), in_team)
        async_to_sync(layer.group_discard)(user_group(agent.pk), own)

    # The assignment, then the reply's message.update and conversation.update.
    by_id = {event["event"]: event for event in team_events}
    assert by_id == {event["event"]: event for event in own_events}
    assert len(by_id) == 3
    assert sorted(event["type"] for event in team_events) == [
        "conversation.update",
        "conversation.update",
        "message.update",
    ]

"""Bugs the property tests (tests/property) and the API fuzzing (tests/fuzz)
found in conversations, each pinned here by its smallest example."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import pytest
from django.db import DatabaseError, transaction
from django.test import Client, TestCase

from accounts.models import Team, User
from accounts.services import user_deactivate
from conversations import channels
from conversations.models import Conversation, Inbox, Message
from conversations.selectors import MAX_ID, inbox_list
from conversations.services import conversation_assign, conversation_resolve, message_receive
from tests.conversations.api_helpers import CONVERSATIONS, call, invalid
from tests.ispsupport.sample_tasks import echo

State = Conversation.State

# --- Back with the bot after its agent left -----------------------------------------


@pytest.fixture
def with_the_bot(settings: Any) -> None:
    settings.CONVERSATION_REOPEN_MINUTES = 120
    channels.register_bot(echo)


def _answered_by_then_left(
    receive: Callable[..., Message], agent: User, supervisor: User
) -> Conversation:
    """The agent answered straight from the bot (never queued), resolved, and left."""
    conversation = receive("Oi").conversation
    assert conversation.state == State.BOT
    conversation_assign(conversation=conversation, agent=agent, actor=supervisor)
    conversation_resolve(conversation=conversation, actor=agent)
    with TestCase.captureOnCommitCallbacks(execute=True):
        user_deactivate(user=agent, actor=supervisor)
    return conversation


@pytest.mark.usefixtures("with_the_bot")
def test_a_customer_back_goes_to_the_bot_without_the_agent_who_left(
    receive: Callable[..., Message], agent: User, supervisor: User
) -> None:
    first = _answered_by_then_left(receive, agent, supervisor)

    again = receive("Oi de novo")

    conversation = Conversation.objects.get(pk=again.conversation_id)
    assert conversation.pk == first.pk  # reopened, same protocol
    assert (conversation.state, conversation.assignee_id) == (State.BOT, None)
    assert conversation.resolved_at is None


@pytest.mark.usefixtures("with_the_bot")
def test_a_customer_back_goes_to_their_agent_who_is_still_here(
    receive: Callable[..., Message], agent: User, supervisor: User
) -> None:
    conversation = receive("Oi").conversation
    conversation_assign(conversation=conversation, agent=agent, actor=supervisor)
    conversation_resolve(conversation=conversation, actor=agent)

    receive("Oi de novo")

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee_id) == (State.OPEN, agent.pk)


# --- message_receive: only a duplicate is a duplicate ---------------------------------


def test_a_message_the_database_refuses_is_not_read_as_a_duplicate(inbox: Inbox) -> None:
    # NaN is no JSON: SQLite's JSON check (an IntegrityError, like a duplicate's)
    # or PostgreSQL's json input refuses it. Before, the IntegrityError was read
    # as a concurrent duplicate, whose look-up then raised Message.DoesNotExist.
    with pytest.raises(DatabaseError), transaction.atomic():
        message_receive(
            inbox=inbox, wa_id="5511988887777", text="x", payload={"n": math.nan}, external_id="w1"
        )

    assert not Message.objects.filter(external_id="w1").exists()


def test_a_redelivery_is_still_a_duplicate(inbox: Inbox) -> None:
    first = message_receive(inbox=inbox, wa_id="5511988887777", text="x", external_id="wamid.D1")

    again = message_receive(inbox=inbox, wa_id="5511988887777", text="x", external_id="wamid.D1")

    assert (again.created, again.message.pk) == (False, first.message.pk)


# --- A team id beyond 64 bits ---------------------------------------------------------


def test_the_api_refuses_a_team_filter_beyond_64_bits(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "get", f"{CONVERSATIONS}?team={MAX_ID + 1}", agent)

    assert response.status_code == 400
    assert response.json() == invalid(
        {"team": [f"Ensure this value is less than or equal to {MAX_ID}."]}
    )


def test_the_largest_team_id_is_a_filter_that_matches_nothing(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "get", f"{CONVERSATIONS}?team={MAX_ID}", agent)

    assert response.status_code == 200
    assert response.json()["results"] == []


def test_the_inbox_matches_nothing_for_a_team_id_no_row_can_have(
    admin: User, support: Team, conversation: Conversation
) -> None:
    # The console reads ?team= itself (conversations/views/inbox.py) and passes it on.
    assert list(inbox_list(user=admin, team=2**70)) == []
    assert list(inbox_list(user=admin, team=support.pk)) == [conversation]


def test_the_console_inbox_answers_a_team_beyond_64_bits(
    client: Client, supervisor: User, conversation: Conversation
) -> None:
    client.force_login(supervisor)

    unfiltered = client.get("/console/?tab=all")
    response = client.get(f"/console/?tab=all&team={2**70}")

    row = f'<li id="row-{conversation.pk}"'
    assert row in unfiltered.content.decode()
    assert response.status_code == 200
    assert row not in response.content.decode()


@pytest.mark.parametrize("field", ["canned_reply", "reply_to"])
def test_a_message_naming_an_id_beyond_64_bits_is_refused(
    client: Client, agent: User, conversation: Conversation, field: str
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    response = call(
        client,
        "post",
        f"{CONVERSATIONS}{conversation.pk}/messages/",
        agent,
        {"text": "" if field == "canned_reply" else "Olá", field: 2**70},
    )

    assert response.status_code == 400
    assert response.json() == invalid(
        {field: [f"Ensure this value is less than or equal to {MAX_ID}."]}
    )

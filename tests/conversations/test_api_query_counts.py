"""List pages run a fixed number of queries, whatever the number of rows."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Tag,
)
from tests.conversations.api_helpers import CANNED, CONTACTS, CONVERSATIONS, call

# The token's user, the page (contact, team, assignee, inbox and last message
# joined in), the tags of the page.
CONVERSATION_LIST_QUERIES = 3
# The token's user, the conversation, the page of messages with their senders.
MESSAGE_LIST_QUERIES = 3


def make_conversations(
    count: int, *, inbox: Inbox, team: Team, assignee: User, tags: list[Tag]
) -> list[Conversation]:
    """``count`` conversations, each with its own contact, two messages and the tags."""
    now = timezone.now()
    start = Contact.objects.count()
    contacts = Contact.objects.bulk_create(
        Contact(wa_id=f"55119{start + n:08d}", phone=f"+55119{start + n:08d}", profile_name=f"C{n}")
        for n in range(count)
    )
    conversations = Conversation.objects.bulk_create(
        Conversation(
            contact=contact,
            inbox=inbox,
            team=team,
            assignee=assignee if n % 2 else None,
            state=Conversation.State.OPEN if n % 2 else Conversation.State.QUEUED,
            protocol=f"T-{contact.wa_id}",
            last_message_at=now - timedelta(seconds=n),
            last_inbound_at=now - timedelta(seconds=n),
        )
        for n, contact in enumerate(contacts)
    )
    Message.objects.bulk_create(
        Message(
            conversation=conversation,
            direction=direction,
            sender_type=Message.SenderType.CONTACT
            if direction == Message.Direction.IN
            else Message.SenderType.AGENT,
            sender_user=None if direction == Message.Direction.IN else assignee,
            text=f"{direction} {conversation.protocol}",
            status=Message.Status.RECEIVED,
            created_at=now - timedelta(seconds=10 - i),
        )
        for conversation in conversations
        for i, direction in enumerate([Message.Direction.OUT, Message.Direction.IN])
    )
    Through = Conversation.tags.through
    Through.objects.bulk_create(
        Through(conversation_id=conversation.pk, tag_id=tag.pk)
        for conversation in conversations
        for tag in tags
    )
    return conversations


def queries(client: Client, path: str, user: User) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = call(client, "get", path, user)
    assert response.status_code == 200, response.content
    return len(captured)


@pytest.fixture
def tags(db: None) -> list[Tag]:
    return [Tag.objects.create(name="fibra"), Tag.objects.create(name="vip")]


@pytest.mark.parametrize("user_name", ["agent", "admin"])
def test_the_inbox_costs_the_same_for_1_10_and_100_rows(
    request: pytest.FixtureRequest,
    client: Client,
    inbox: Inbox,
    support: Team,
    agent: User,
    tags: list[Tag],
    user_name: str,
) -> None:
    user: User = request.getfixturevalue(user_name)
    counts = {}
    made = 0
    for size in (1, 10, 100):
        make_conversations(size - made, inbox=inbox, team=support, assignee=agent, tags=tags)
        made = size
        path = f"{CONVERSATIONS}?page_size=100"
        counts[size] = queries(client, path, user)
        assert len(call(client, "get", path, user).json()["results"]) == size

    assert counts == dict.fromkeys((1, 10, 100), CONVERSATION_LIST_QUERIES)


def test_filters_add_no_queries(
    client: Client, inbox: Inbox, support: Team, agent: User, tags: list[Tag]
) -> None:
    make_conversations(30, inbox=inbox, team=support, assignee=agent, tags=tags)

    path = (
        f"{CONVERSATIONS}?page_size=100&state=open,queued&assignee=me&tag=vip&q=T-"
        f"&team={support.pk}"
    )

    assert queries(client, path, agent) == CONVERSATION_LIST_QUERIES
    assert len(call(client, "get", path, agent).json()["results"]) == 15


def test_the_thread_costs_the_same_for_1_10_and_100_messages(
    client: Client, receive: Callable[..., Message], agent: User
) -> None:
    conversation = receive("0").conversation
    counts = {}
    made = 1
    for size in (1, 10, 100):
        Message.objects.bulk_create(
            Message(
                conversation=conversation,
                direction=Message.Direction.OUT,
                sender_type=Message.SenderType.AGENT,
                sender_user=agent,
                text=str(n),
                status=Message.Status.SENT,
            )
            for n in range(size - made)
        )
        made = size
        path = f"{CONVERSATIONS}{conversation.pk}/messages/?page_size=100"
        counts[size] = queries(client, path, agent)

    assert counts == dict.fromkeys((1, 10, 100), MESSAGE_LIST_QUERIES)


def test_contacts_and_canned_replies_pages_cost_the_same_for_1_and_50_rows(
    client: Client, inbox: Inbox, support: Team, agent: User, tags: list[Tag]
) -> None:
    contact_counts, canned_counts = [], []
    made = 0
    for size in (1, 50):
        conversations = make_conversations(
            size - made, inbox=inbox, team=support, assignee=agent, tags=tags
        )
        Contact.tags.through.objects.bulk_create(
            Contact.tags.through(contact_id=c.contact_id, tag_id=tags[0].pk) for c in conversations
        )
        CannedReply.objects.bulk_create(
            CannedReply(shortcut=f"r{made + n}", title="T", text="T", team=support)
            for n in range(size - made)
        )
        made = size
        contact_counts.append(queries(client, CONTACTS, agent))
        canned_counts.append(queries(client, CANNED, agent))

    # The token's user, the count, the page, and for contacts their tags.
    assert contact_counts == [4, 4]
    assert canned_counts == [3, 3]

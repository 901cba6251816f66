"""Who may do what through the API, endpoint by endpoint. The conversation is
Maria's, queued in Suporte técnico: the agent, the teammate and Suporte's
supervisor work it, the admin sees everything, and the outsider (Financeiro)
gets a 404 everywhere, as if it did not exist, and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Team, User
from conversations.models import CannedReply, Contact, Conversation
from conversations.services import conversation_assign
from tests.conversations.api_helpers import (
    CANNED,
    CONTACTS,
    CONVERSATIONS,
    NO_CONTACT,
    NO_CONVERSATION,
    NOT_LOGGED_IN,
    ONLY_SUPERVISORS,
    call,
    refused,
)

ASSIGNED_TO_BRUNO = (
    "This conversation is assigned to Bruno; ask them or a supervisor to transfer it."
)
USERS = ["agent", "teammate", "supervisor", "admin", "outsider"]

# (method, path after /conversations/{id}/, body, status for everyone who may see it)
ENDPOINTS: list[tuple[str, str, Any, int]] = [
    ("get", "", None, 200),
    ("patch", "", {"priority": 2}, 200),
    ("get", "messages/", None, 200),
    ("post", "messages/", {"text": "Oi", "client_key": "k"}, 201),
    ("get", "notes/", None, 200),
    ("post", "notes/", {"text": "Nota"}, 201),
    ("post", "assign/", "self", 200),
    ("post", "transfer/", "finance", 200),
    ("post", "resolve/", None, 200),
    ("post", "reopen/", None, 409),  # not resolved: refused, but only after the visibility check
    ("post", "pending/", None, 409),  # not open
    ("post", "read/", None, 200),
    ("put", "tags/", {"tags": []}, 200),
    ("post", "tags/", {"tags": []}, 200),
]


def everything(conversation: Conversation) -> tuple[Any, ...]:
    """The conversation and all that hangs off it, to show a refused call changed nothing."""
    return (
        Conversation.objects.values().get(pk=conversation.pk),
        list(conversation.messages.values_list("pk", "status")),
        list(conversation.notes.values_list("pk", "text")),
        list(conversation.tags.values_list("pk", flat=True)),
    )


def body_for(body: Any, user: User, finance: Team) -> Any:
    if body == "self":
        return {"agent": user.pk}
    if body == "finance":
        return {"team": finance.pk}
    return body


@pytest.mark.parametrize("user_name", USERS)
@pytest.mark.parametrize(("method", "suffix", "body", "allowed"), ENDPOINTS)
def test_conversation_endpoints(
    request: pytest.FixtureRequest,
    client: Client,
    conversation: Conversation,
    finance: Team,
    user_name: str,
    method: str,
    suffix: str,
    body: Any,
    allowed: int,
) -> None:
    user: User = request.getfixturevalue(user_name)
    before = everything(conversation)

    response = call(
        client,
        method,
        f"{CONVERSATIONS}{conversation.pk}/{suffix}",
        user,
        body_for(body, user, finance),
    )

    if user_name == "outsider":
        assert response.status_code == 404
        assert response.json() == NO_CONVERSATION
        assert everything(conversation) == before
    else:
        assert response.status_code == allowed, response.content


@pytest.mark.parametrize(("method", "suffix", "body", "allowed"), ENDPOINTS)
def test_anonymous_calls_are_401(
    client: Client,
    conversation: Conversation,
    method: str,
    suffix: str,
    body: Any,
    allowed: int,
) -> None:
    before = everything(conversation)

    response = call(client, method, f"{CONVERSATIONS}{conversation.pk}/{suffix}", None, body)

    assert response.status_code == 401
    assert response.json() == NOT_LOGGED_IN
    assert everything(conversation) == before


@pytest.mark.parametrize("path", [CONVERSATIONS, f"{CONVERSATIONS}take-next/", CONTACTS, CANNED])
def test_anonymous_lists_are_401(client: Client, db: None, path: str) -> None:
    method = "post" if path.endswith("take-next/") else "get"

    response = call(client, method, path, None)

    assert response.status_code == 401
    assert response.json() == NOT_LOGGED_IN


@pytest.mark.parametrize(
    ("user_name", "sees"), [*((u, True) for u in USERS[:4]), ("outsider", False)]
)
def test_the_inbox_lists_only_visible_conversations(
    request: pytest.FixtureRequest,
    client: Client,
    conversation: Conversation,
    user_name: str,
    sees: bool,
) -> None:
    user: User = request.getfixturevalue(user_name)

    response = call(client, "get", CONVERSATIONS, user)

    assert response.status_code == 200
    assert [row["id"] for row in response.json()["results"]] == ([conversation.pk] if sees else [])


def test_the_outsider_sees_a_conversation_once_assigned_to_them(
    client: Client, outsider: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(assignee=outsider)

    response = call(client, "get", f"{CONVERSATIONS}{conversation.pk}/", outsider)

    assert response.status_code == 200


# Once Bruno has the conversation, his teammate may read it but not act on it.
WRITES: list[tuple[str, str, Any]] = [
    ("patch", "", {"priority": 2}),
    ("post", "messages/", {"text": "Oi"}),
    ("post", "transfer/", "finance"),
    ("post", "resolve/", None),
    ("post", "pending/", None),
]


@pytest.mark.parametrize(("method", "suffix", "body"), WRITES)
def test_a_teammate_may_not_act_on_the_agents_conversation(
    client: Client,
    agent: User,
    teammate: User,
    supervisor: User,
    finance: Team,
    conversation: Conversation,
    method: str,
    suffix: str,
    body: Any,
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    before = everything(conversation)
    path = f"{CONVERSATIONS}{conversation.pk}/{suffix}"

    by_teammate = call(client, method, path, teammate, body_for(body, teammate, finance))

    assert by_teammate.status_code == 403
    assert by_teammate.json() == refused(ASSIGNED_TO_BRUNO)
    assert everything(conversation) == before

    by_supervisor = call(client, method, path, supervisor, body_for(body, supervisor, finance))

    assert by_supervisor.status_code in (200, 201), by_supervisor.content


@pytest.mark.parametrize(
    ("user_name", "status"),
    [("agent", 200), ("teammate", 200), ("supervisor", 200), ("admin", 200), ("outsider", 404)],
)
def test_contact_detail(
    request: pytest.FixtureRequest, client: Client, contact: Contact, user_name: str, status: int
) -> None:
    user: User = request.getfixturevalue(user_name)
    before = Contact.objects.values().get(pk=contact.pk)

    read = call(client, "get", f"{CONTACTS}{contact.pk}/", user)
    write = call(client, "patch", f"{CONTACTS}{contact.pk}/", user, {"customer_code": "C-1"})

    assert (read.status_code, write.status_code) == (status, status)
    if status == 404:
        assert read.json() == write.json() == NO_CONTACT
        assert Contact.objects.values().get(pk=contact.pk) == before
    else:
        assert Contact.objects.get(pk=contact.pk).customer_code == "C-1"


@pytest.mark.parametrize(
    ("user_name", "status"),
    [("agent", 403), ("teammate", 403), ("outsider", 403), ("supervisor", 201), ("admin", 201)],
)
def test_creating_canned_replies(
    request: pytest.FixtureRequest, client: Client, support: Team, user_name: str, status: int
) -> None:
    user: User = request.getfixturevalue(user_name)

    response = call(
        client,
        "post",
        CANNED,
        user,
        {"shortcut": "ola", "title": "Olá", "text": "Olá!", "team": support.pk},
    )

    assert response.status_code == status
    if status == 403:
        assert response.json() == refused(ONLY_SUPERVISORS)
        assert not CannedReply.objects.exists()
    else:
        assert CannedReply.objects.get().created_by == user

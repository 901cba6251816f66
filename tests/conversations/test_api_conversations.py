"""The inbox and the conversation actions: /api/v1/conversations/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
import yaml
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Conversation, Message, Note, Tag
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    conversation_set_tags,
    message_send,
)
from tests.conversations.api_helpers import (
    CONVERSATIONS,
    NOWHERE,
    Waiting,
    call,
    conflict,
    conversation_row,
    invalid,
    iso,
    note_body,
    refused,
)

State = Conversation.State
Receive = Callable[..., Message]


def detail(conversation: Conversation) -> str:
    return f"{CONVERSATIONS}{conversation.pk}/"


def ids(response: Any) -> list[int]:
    return [row["id"] for row in response.json()["results"]]


# --- list and detail ------------------------------------------------------------------


def test_the_inbox_row_shows_contact_team_tags_and_last_message(
    client: Client, agent: User, support: Team, receive: Receive
) -> None:
    conversation = receive("Sem sinal desde ontem").conversation
    tag = Tag.objects.create(name="fibra", color="#0ea5e9")
    conversation.tags.add(tag)
    conversation.refresh_from_db()
    contact = conversation.contact
    asked_at = timezone.now()

    response = call(client, "get", CONVERSATIONS, agent)

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [
            {
                "id": conversation.pk,
                "protocol": conversation.protocol,
                "state": "queued",
                "priority": 1,
                "team": {"id": support.pk, "name": "Suporte técnico"},
                "assignee": None,
                "contact": {
                    "id": contact.pk,
                    "name": "Maria Souza",
                    "phone": "+5511988887777",
                    "username": "",
                },
                "tags": [{"id": tag.pk, "name": "fibra", "color": "#0ea5e9"}],
                "unread_count": 1,
                "last_message": {
                    "text": "Sem sinal desde ontem",
                    "kind": "text",
                    "direction": "in",
                },
                "last_message_at": iso(conversation.last_message_at),
                "last_inbound_at": iso(conversation.last_inbound_at),
                "waiting_seconds": Waiting(conversation.last_inbound_at, asked_at),
                "first_response_due_at": iso(conversation.first_response_due_at),
                "resolution_due_at": iso(conversation.resolution_due_at),
                "created_at": iso(conversation.created_at),
                "service_window_open": True,
            }
        ],
    }


def test_the_detail_adds_inbox_and_response_times(
    client: Client, agent: User, conversation: Conversation
) -> None:
    message_send(conversation=conversation, text="Vou verificar.", actor=agent)
    conversation.refresh_from_db()

    response = call(client, "get", detail(conversation), agent)

    assert response.status_code == 200
    body = response.json()
    assert body == conversation_row(conversation, detail=True)
    assert body["inbox"] == {
        "id": conversation.inbox_id,
        "name": "WhatsApp Suporte",
        "channel": "whatsapp",
    }
    assert body["first_response_at"] == iso(conversation.first_response_at)
    assert body["resolved_at"] is None
    # We answered last: the customer is not waiting.
    assert body["waiting_seconds"] is None
    assert body["last_message"] == {"text": "Vou verificar.", "kind": "text", "direction": "out"}


def test_waiting_seconds_counts_from_the_customers_last_message(
    client: Client, agent: User, conversation: Conversation
) -> None:
    three_hours_ago = timezone.now() - timedelta(hours=3)
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=three_hours_ago)

    [row] = call(client, "get", CONVERSATIONS, agent).json()["results"]

    assert 3 * 3600 <= row["waiting_seconds"] <= 3 * 3600 + 5


def test_a_resolved_conversation_waits_for_nobody(
    client: Client, agent: User, conversation: Conversation
) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    [row] = call(client, "get", CONVERSATIONS, agent).json()["results"]

    assert row["state"] == "resolved"
    assert row["waiting_seconds"] is None


def test_the_service_window_closes_24_hours_after_the_customer_wrote(
    client: Client, agent: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=25)
    )

    response = call(client, "get", detail(conversation), agent)

    assert response.json()["service_window_open"] is False


def test_an_unknown_conversation_is_404(client: Client, agent: User, db: None) -> None:
    for path in (f"{CONVERSATIONS}{NOWHERE}/", f"{CONVERSATIONS}abc/"):
        response = call(client, "get", path, agent)

        assert response.status_code == 404
        assert response.json() == {"detail": "No such conversation.", "code": "not_found"}


# --- filters --------------------------------------------------------------------------


@pytest.fixture
def three(
    receive: Receive, agent: User, teammate: User, supervisor: User
) -> dict[str, Conversation]:
    """Maria queued, João open with the agent, Ana resolved by the teammate."""
    maria = receive("Minha internet caiu", wa_id="5511988880001", profile_name="Maria Souza")
    joao = receive("Boleto atrasado", wa_id="5521977770002", profile_name="João Lima")
    ana = receive("Troca de senha do wifi", wa_id="5531966660003", profile_name="Ana Prado")
    conversation_assign(conversation=joao.conversation, agent=agent, actor=agent)
    conversation_assign(conversation=ana.conversation, agent=teammate, actor=supervisor)
    conversation_resolve(conversation=ana.conversation, actor=teammate)
    return {"maria": maria.conversation, "joao": joao.conversation, "ana": ana.conversation}


def newest_first(*conversations: Conversation) -> list[int]:
    rows = Conversation.objects.filter(pk__in=[c.pk for c in conversations])
    return list(rows.order_by("-last_message_at", "-id").values_list("pk", flat=True))


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["maria", "joao", "ana"]),
        ("?state=queued", ["maria"]),
        ("?state=queued,open", ["maria", "joao"]),
        ("?state=queued&state=resolved", ["maria", "ana"]),
        ("?state=queued, open ,", ["maria", "joao"]),
        ("?assignee=me", ["joao"]),
        ("?assignee=none", ["maria"]),
        ("?assignee=any", ["maria", "joao", "ana"]),
        ("?q=souza", ["maria"]),
        ("?q=Jo%C3%A3o", ["joao"]),
        ("?q=(21) 97777", ["joao"]),
        ("?q=66660003", ["ana"]),
        ("?q=senha do wifi", ["ana"]),
        ("?q=BOLETO", ["joao"]),
        ("?q=nothing like this", []),
        ("?state=open&assignee=none", []),
    ],
)
def test_filters(
    client: Client,
    agent: User,
    three: dict[str, Conversation],
    query: str,
    names: list[str],
) -> None:
    response = call(client, "get", CONVERSATIONS + query, agent)

    assert response.status_code == 200
    assert ids(response) == newest_first(*(three[name] for name in names))


def test_filter_by_assignee_id_protocol_team_and_tag(
    client: Client,
    agent: User,
    teammate: User,
    supervisor: User,
    support: Team,
    finance: Team,
    three: dict[str, Conversation],
) -> None:
    maria, joao, ana = three["maria"], three["joao"], three["ana"]
    Tag.objects.create(name="vip")
    conversation_set_tags(conversation=maria, names=["vip"], actor=supervisor)
    Conversation.objects.filter(pk=joao.pk).update(team=finance)
    ana.refresh_from_db()

    def found(query: str) -> list[int]:
        response = call(client, "get", CONVERSATIONS + query, supervisor)
        assert response.status_code == 200, response.json()
        return ids(response)

    assert found(f"?assignee={teammate.pk}") == [ana.pk]
    assert found(f"?q={ana.protocol}") == [ana.pk]
    assert found(f"?team={support.pk}") == newest_first(maria, ana)
    # João moved to Financeiro: still visible to his assignee, not to Suporte's supervisor.
    assert found(f"?team={finance.pk}") == []
    assert call(client, "get", f"{CONVERSATIONS}?team={finance.pk}", agent).json()["results"][0][
        "id"
    ] == (joao.pk)
    assert found("?tag=vip") == [maria.pk]
    assert found("?tag=nope") == []


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("?state=xyz", {"state": ['"xyz" is not a valid choice.']}),
        ("?state=open,closed", {"state": ['"closed" is not a valid choice.']}),
        ("?assignee=abc", {"assignee": ['Use "me", "none", "any" or a user id.']}),
        ("?assignee=-3", {"assignee": ['Use "me", "none", "any" or a user id.']}),
        ("?team=abc", {"team": ["A valid integer is required."]}),
        ("?team=0", {"team": ["Ensure this value is greater than or equal to 1."]}),
        ("?q=" + "x" * 201, {"q": ["Ensure this field has no more than 200 characters."]}),
        (
            "?state=xyz&assignee=abc",
            {
                "state": ['"xyz" is not a valid choice.'],
                "assignee": ['Use "me", "none", "any" or a user id.'],
            },
        ),
    ],
)
def test_invalid_filters_are_400(
    client: Client, agent: User, conversation: Conversation, query: str, errors: dict[str, Any]
) -> None:
    response = call(client, "get", CONVERSATIONS + query, agent)

    assert response.status_code == 400
    assert response.json() == invalid(errors)


@pytest.mark.parametrize(
    "query",
    ["?assignee=²", "?assignee=1.5", "?team=²", "?state=%00", "?q=%00", "?tag=%00"],
)
def test_odd_filter_values_are_400(
    client: Client, agent: User, conversation: Conversation, query: str
) -> None:
    response = call(client, "get", CONVERSATIONS + query, agent)

    assert response.status_code == 400
    assert response.json()["code"] == "invalid"


@pytest.mark.parametrize("value", ["999999999999999999", "2147483648"])
def test_out_of_range_ids_find_nothing(
    client: Client, agent: User, conversation: Conversation, value: str
) -> None:
    by_team = call(client, "get", f"{CONVERSATIONS}?team={value}", agent)
    listed = call(client, "get", f"{CONVERSATIONS}?assignee={value}", agent)
    fetched = call(client, "get", f"{CONVERSATIONS}{value}/", agent)
    thread = call(client, "get", f"{CONVERSATIONS}{value}/messages/", agent)

    assert (listed.status_code, listed.json()["results"]) == (200, [])
    assert (by_team.status_code, by_team.json()["results"]) == (200, [])
    assert (fetched.status_code, thread.status_code) == (404, 404)


def test_an_unknown_assignee_id_finds_nothing(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "get", f"{CONVERSATIONS}?assignee={NOWHERE}", agent)

    assert response.status_code == 200
    assert response.json() == {"next": None, "previous": None, "results": []}


# --- pagination -----------------------------------------------------------------------


def test_the_cursor_walks_every_conversation_once(
    client: Client, agent: User, receive: Receive
) -> None:
    created = [receive(f"Oi {n}", wa_id=f"55119888{n:05d}").conversation for n in range(8)]
    # Two conversations with the same last_message_at: the id breaks the tie.
    same = timezone.now() - timedelta(minutes=5)
    Conversation.objects.filter(pk__in=[created[2].pk, created[5].pk]).update(last_message_at=same)

    seen: list[int] = []
    path: str | None = f"{CONVERSATIONS}?page_size=3"
    pages = 0
    while path:
        response = call(client, "get", path, agent)
        assert response.status_code == 200
        body = response.json()
        assert len(body["results"]) <= 3
        seen += ids(response)
        path = body["next"]
        pages += 1

    assert pages == 3
    assert seen == newest_first(*created)
    assert len(set(seen)) == 8


def test_the_cursor_goes_back_too(client: Client, agent: User, receive: Receive) -> None:
    created = [receive(f"Oi {n}", wa_id=f"55119888{n:05d}").conversation for n in range(5)]
    first = call(client, "get", f"{CONVERSATIONS}?page_size=2", agent).json()
    second = call(client, "get", first["next"], agent).json()

    back = call(client, "get", second["previous"], agent).json()

    assert [r["id"] for r in back["results"]] == [r["id"] for r in first["results"]]
    assert [r["id"] for r in first["results"] + second["results"]] == newest_first(*created)[:4]


def test_page_size_is_capped_at_100(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "get", f"{CONVERSATIONS}?page_size=1000", agent)

    assert response.status_code == 200
    assert ids(response) == [conversation.pk]


def test_a_forged_cursor_is_404_not_500(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "get", f"{CONVERSATIONS}?cursor=garbage", agent)

    assert response.status_code == 404
    assert response.json() == {"detail": "Invalid cursor", "code": "not_found"}


# --- PATCH: priority only ---------------------------------------------------------------


def test_patch_changes_the_priority_and_nothing_else(
    client: Client, agent: User, outsider: User, finance: Team, conversation: Conversation
) -> None:
    before = Conversation.objects.values().get(pk=conversation.pk)

    response = call(
        client,
        "patch",
        detail(conversation),
        agent,
        {
            "priority": 3,
            "state": "resolved",
            "assignee": outsider.pk,
            "team": finance.pk,
            "protocol": "HACKED",
            "unread_count": 0,
            "contact": {"name": "Outra"},
            "resolved_at": "2020-01-01T00:00:00Z",
        },
    )

    assert response.status_code == 200
    after = Conversation.objects.values().get(pk=conversation.pk)
    assert after == {**before, "priority": 3, "updated_at": after["updated_at"]}
    assert response.json() == conversation_row(conversation, detail=True)
    assert response.json()["priority"] == 3


def test_patch_without_a_priority_changes_nothing(
    client: Client, agent: User, conversation: Conversation
) -> None:
    before = Conversation.objects.values().get(pk=conversation.pk)

    response = call(client, "patch", detail(conversation), agent, {"state": "resolved"})

    assert response.status_code == 200
    assert Conversation.objects.values().get(pk=conversation.pk) == before


def test_an_invalid_priority_is_400(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "patch", detail(conversation), agent, {"priority": 9})

    assert response.status_code == 400
    assert response.json() == invalid({"priority": ['"9" is not a valid choice.']})
    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.NORMAL


def test_put_on_a_conversation_is_not_allowed(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "put", detail(conversation), agent, {"priority": 3})

    assert response.status_code == 405


def test_an_agent_cannot_reprioritise_a_teammates_conversation(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=teammate, actor=teammate)

    response = call(client, "patch", detail(conversation), agent, {"priority": 0})

    assert response.status_code == 403
    assert response.json() == refused(
        "This conversation is assigned to Carla; ask them or a supervisor to transfer it."
    )
    conversation.refresh_from_db()
    assert conversation.priority == Conversation.Priority.NORMAL


# --- assign and take-next -------------------------------------------------------------


def test_an_agent_takes_a_queued_conversation(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "post", f"{detail(conversation)}assign/", agent, {"agent": agent.pk})

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, agent)
    assert response.json() == conversation_row(conversation, detail=True)
    assert response.json()["assignee"] == {"id": agent.pk, "name": "Bruno"}


def test_an_agent_cannot_assign_someone_else(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    response = call(client, "post", f"{detail(conversation)}assign/", agent, {"agent": teammate.pk})

    assert response.status_code == 403
    assert response.json() == refused("Only supervisors assign conversations to someone else.")
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


def test_an_agent_cannot_take_a_teammates_conversation(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=teammate, actor=teammate)

    response = call(client, "post", f"{detail(conversation)}assign/", agent, {"agent": agent.pk})

    assert response.status_code == 409
    assert response.json() == conflict(
        "Carla has already taken this conversation.", "already_assigned"
    )
    conversation.refresh_from_db()
    assert conversation.assignee == teammate


def test_a_supervisor_assigns_a_team_member(
    client: Client, supervisor: User, teammate: User, conversation: Conversation
) -> None:
    response = call(
        client, "post", f"{detail(conversation)}assign/", supervisor, {"agent": teammate.pk}
    )

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, teammate)


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"agent": ["This field is required."]}),
        ({"agent": None}, {"agent": ["This field may not be null."]}),
        ({"agent": "abc"}, {"agent": ["Incorrect type. Expected pk value, received str."]}),
        ({"agent": NOWHERE}, {"agent": [f'Invalid pk "{NOWHERE}" - object does not exist.']}),
    ],
)
def test_assign_needs_a_real_agent(
    client: Client,
    supervisor: User,
    conversation: Conversation,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    response = call(client, "post", f"{detail(conversation)}assign/", supervisor, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)


def test_assign_refuses_someone_outside_the_team(
    client: Client, supervisor: User, outsider: User, conversation: Conversation
) -> None:
    response = call(
        client, "post", f"{detail(conversation)}assign/", supervisor, {"agent": outsider.pk}
    )

    assert response.status_code == 400
    assert response.json() == invalid({"agent": ["Diego is not in this conversation's team."]})
    conversation.refresh_from_db()
    assert conversation.assignee is None


def test_take_next_gives_the_oldest_queued_then_204(
    client: Client, agent: User, receive: Receive
) -> None:
    first = receive("Primeiro", wa_id="5511988880001").conversation
    second = receive("Segundo", wa_id="5511988880002").conversation

    answers = [call(client, "post", f"{CONVERSATIONS}take-next/", agent) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 204]
    assert [answers[0].json()["id"], answers[1].json()["id"]] == [first.pk, second.pk]
    assert answers[2].content == b""
    first.refresh_from_db()
    assert answers[0].json() == conversation_row(first, detail=True)
    assert (first.state, first.assignee) == (State.OPEN, agent)


def test_take_next_never_reaches_another_teams_queue(
    client: Client, outsider: User, admin: User, conversation: Conversation
) -> None:
    for user in (outsider, admin):  # the admin is in no team
        response = call(client, "post", f"{CONVERSATIONS}take-next/", user)

        assert response.status_code == 204
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


# --- transfer -------------------------------------------------------------------------


def test_transfer_to_another_teams_queue_with_a_note(
    client: Client, agent: User, finance: Team, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    response = call(
        client,
        "post",
        f"{detail(conversation)}transfer/",
        agent,
        {"team": finance.pk, "note": "Cliente quer negociar a fatura."},
    )

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.state, conversation.team, conversation.assignee) == (
        State.QUEUED,
        finance,
        None,
    )
    [note] = Note.objects.filter(conversation=conversation)
    assert (note.author, note.text) == (agent, "Cliente quer negociar a fatura.")
    # The agent no longer sees it, but gets the result of what they just did.
    assert response.json() == conversation_row(conversation, detail=True)
    assert call(client, "get", detail(conversation), agent).status_code == 404


def test_transfer_straight_to_a_teammate(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    response = call(
        client, "post", f"{detail(conversation)}transfer/", agent, {"agent": teammate.pk}
    )

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, teammate)
    assert not Note.objects.exists()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"team": ["Choose a team or an agent."]}),
        ({"note": "só a nota"}, {"team": ["Choose a team or an agent."]}),
        ({"team": NOWHERE}, {"team": [f'Invalid pk "{NOWHERE}" - object does not exist.']}),
        ({"team": "x"}, {"team": ["Incorrect type. Expected pk value, received str."]}),
    ],
)
def test_transfer_needs_a_destination(
    client: Client,
    agent: User,
    conversation: Conversation,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    response = call(client, "post", f"{detail(conversation)}transfer/", agent, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)
    assert not Note.objects.exists()


# --- resolve, reopen, pending, read ---------------------------------------------------


def test_resolve_then_reopen(client: Client, agent: User, conversation: Conversation) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    resolved = call(client, "post", f"{detail(conversation)}resolve/", agent)

    assert resolved.status_code == 200
    conversation.refresh_from_db()
    assert conversation.state == State.RESOLVED
    assert conversation.resolved_by == agent
    assert resolved.json() == conversation_row(conversation, detail=True)
    assert resolved.json()["resolved_at"] == iso(conversation.resolved_at)

    again = call(client, "post", f"{detail(conversation)}resolve/", agent)

    assert again.status_code == 409
    assert again.json() == conflict(
        "A conversation that is resolved cannot be resolved.", "invalid_transition"
    )

    reopened = call(client, "post", f"{detail(conversation)}reopen/", agent)

    assert reopened.status_code == 200
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee, conversation.resolved_at) == (
        State.OPEN,
        agent,
        None,
    )
    assert reopened.json()["resolved_at"] is None


def test_reopen_refuses_an_unresolved_conversation(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "post", f"{detail(conversation)}reopen/", agent)

    assert response.status_code == 409
    assert response.json() == conflict("This conversation is not resolved.", "invalid_transition")


def test_a_teammate_cannot_resolve_the_agents_conversation(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    response = call(client, "post", f"{detail(conversation)}resolve/", teammate)

    assert response.status_code == 403
    assert response.json() == refused(
        "This conversation is assigned to Bruno; ask them or a supervisor to transfer it."
    )
    conversation.refresh_from_db()
    assert conversation.state == State.OPEN


def test_pending_waits_on_the_customer(
    client: Client, agent: User, conversation: Conversation
) -> None:
    queued = call(client, "post", f"{detail(conversation)}pending/", agent)

    assert queued.status_code == 409
    assert queued.json() == conflict(
        "Only an open conversation can wait on the customer.", "invalid_transition"
    )

    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    response = call(client, "post", f"{detail(conversation)}pending/", agent)

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.state == State.PENDING
    assert response.json()["state"] == "pending"


def test_read_clears_the_assignees_unread_count(
    client: Client, agent: User, teammate: User, receive: Receive
) -> None:
    conversation = receive("Oi").conversation
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    receive("Alguém aí?")
    conversation.refresh_from_db()
    assert conversation.unread_count == 2

    by_teammate = call(client, "post", f"{detail(conversation)}read/", teammate)

    assert by_teammate.status_code == 200
    conversation.refresh_from_db()
    assert conversation.unread_count == 2

    response = call(client, "post", f"{detail(conversation)}read/", agent)

    assert response.status_code == 200
    conversation.refresh_from_db()
    assert conversation.unread_count == 0
    assert response.json()["unread_count"] == 0


# --- notes ----------------------------------------------------------------------------


def test_notes_are_written_and_listed_oldest_first(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    first = call(
        client, "post", f"{detail(conversation)}notes/", agent, {"text": "  ONU reiniciada.  "}
    )
    second = call(client, "post", f"{detail(conversation)}notes/", teammate, {"text": "Sem sinal."})

    assert (first.status_code, second.status_code) == (201, 201)
    notes = list(Note.objects.filter(conversation=conversation).order_by("id"))
    assert [(n.author, n.text) for n in notes] == [
        (agent, "ONU reiniciada."),
        (teammate, "Sem sinal."),
    ]
    assert first.json() == note_body(notes[0])

    listed = call(client, "get", f"{detail(conversation)}notes/", agent)

    assert listed.status_code == 200
    assert listed.json() == [note_body(n) for n in notes]


def test_a_retried_note_is_added_once(
    client: Client, agent: User, conversation: Conversation, receive: Receive
) -> None:
    """A double click or a network retry of the same note: one note, and the
    second answer is the first note (200), even if the retry's text differs."""
    notes = f"{detail(conversation)}notes/"
    body = {"text": "Cliente autorizou visita às 14h.", "client_key": "9c1e-note"}

    first = call(client, "post", notes, agent, body)
    again = call(client, "post", notes, agent, {**body, "text": "outro"})
    by_header = [
        call(client, "post", notes, agent, {"text": "ONU trocada."}, **{"Idempotency-Key": "h-7"})
        for _ in range(2)
    ]
    elsewhere = receive("Oi", wa_id="5511977778888").conversation
    other = call(client, "post", f"{detail(elsewhere)}notes/", agent, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert [r.status_code for r in by_header] == [201, 200]
    assert other.status_code == 201  # the same key in another conversation is another note
    stored = list(Note.objects.filter(conversation=conversation).order_by("id"))
    assert [(n.text, n.client_key) for n in stored] == [
        ("Cliente autorizou visita às 14h.", "9c1e-note"),
        ("ONU trocada.", "h-7"),
    ]
    assert first.json() == again.json() == note_body(stored[0])
    assert by_header[1].json() == note_body(stored[1])


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"text": ["This field is required."]}),
        ({"text": ""}, {"text": ["This field may not be blank."]}),
        ({"text": "   "}, {"text": ["This field may not be blank."]}),
        ({"text": "x" * 4001}, {"text": ["Ensure this field has no more than 4000 characters."]}),
    ],
)
def test_a_note_needs_text(
    client: Client,
    agent: User,
    conversation: Conversation,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    response = call(client, "post", f"{detail(conversation)}notes/", agent, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)
    assert not Note.objects.exists()


# --- tags -----------------------------------------------------------------------------


def test_an_agent_sets_existing_tags(
    client: Client, agent: User, conversation: Conversation
) -> None:
    fibra = Tag.objects.create(name="fibra")
    vip = Tag.objects.create(name="vip", color="#f59e0b")

    response = call(
        client, "put", f"{detail(conversation)}tags/", agent, {"tags": ["vip", "fibra"]}
    )

    assert response.status_code == 200
    assert set(conversation.tags.all()) == {fibra, vip}
    assert response.json()["tags"] == [
        {"id": fibra.pk, "name": "fibra", "color": "#64748b"},
        {"id": vip.pk, "name": "vip", "color": "#f59e0b"},
    ]

    cleared = call(client, "post", f"{detail(conversation)}tags/", agent, {"tags": []})

    assert cleared.status_code == 200
    assert list(conversation.tags.all()) == []


def test_only_supervisors_create_new_tags(
    client: Client, agent: User, supervisor: User, conversation: Conversation
) -> None:
    refused_ = call(client, "put", f"{detail(conversation)}tags/", agent, {"tags": ["novo"]})

    assert refused_.status_code == 400
    assert refused_.json() == invalid(
        {"tags": ["Unknown tags: novo. Ask a supervisor to create them."]}
    )
    assert not Tag.objects.exists()

    created = call(client, "put", f"{detail(conversation)}tags/", supervisor, {"tags": ["novo"]})

    assert created.status_code == 200
    assert list(conversation.tags.values_list("name", flat=True)) == ["novo"]


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"tags": ["This field is required."]}),
        ({"tags": "vip"}, {"tags": ['Expected a list of items but got type "str".']}),
        (
            {"tags": ["x" * 51]},
            {"tags": {"0": ["Ensure this field has no more than 50 characters."]}},
        ),
    ],
)
def test_tags_must_be_a_list_of_names(
    client: Client,
    supervisor: User,
    conversation: Conversation,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    response = call(client, "put", f"{detail(conversation)}tags/", supervisor, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)


# --- schema ---------------------------------------------------------------------------


def test_the_schema_describes_every_endpoint(db: None) -> None:
    out = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    paths = yaml.safe_load(out.getvalue())["paths"]
    expected = {
        "/api/v1/conversations/": {"get"},
        "/api/v1/conversations/{id}/": {"get", "patch"},
        "/api/v1/conversations/take-next/": {"post"},
        "/api/v1/conversations/{id}/messages/": {"get", "post"},
        "/api/v1/conversations/{id}/notes/": {"get", "post"},
        "/api/v1/conversations/{id}/tags/": {"put", "post"},
        "/api/v1/contacts/": {"get"},
        "/api/v1/contacts/{id}/": {"get", "patch"},
        "/api/v1/canned-replies/": {"get", "post"},
        "/api/v1/canned-replies/{id}/": {"get", "patch", "delete"},
        **{
            f"/api/v1/conversations/{{id}}/{name}/": {"post"}
            for name in ("assign", "transfer", "resolve", "reopen", "pending", "read")
        },
    }
    assert {path: set(paths[path]) - {"parameters"} for path in expected} == expected

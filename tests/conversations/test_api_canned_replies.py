"""Ready answers: /api/v1/canned-replies/. Everyone reads the shared ones and
their teams'; admins manage all, supervisors only their teams' ones."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from accounts.models import Team, User
from conversations.models import CannedReply
from tests.conversations.api_helpers import (
    CANNED,
    NO_CANNED_REPLY,
    NOWHERE,
    ONLY_SUPERVISORS,
    call,
    canned_body,
    invalid,
    refused,
)

ONLY_MANAGERS = "Only administrators manage shared canned replies; supervisors, their teams' ones."


def state() -> list[tuple[Any, ...]]:
    """Every reply's fields, to show a refused call changed nothing."""
    return list(
        CannedReply.objects.order_by("pk").values_list("pk", "shortcut", "title", "text", "team")
    )


def page(*replies: CannedReply) -> dict[str, Any]:
    return {
        "count": len(replies),
        "next": None,
        "previous": None,
        "results": [canned_body(r) for r in replies],
    }


@pytest.fixture
def replies(support: Team, finance: Team) -> dict[str, CannedReply]:
    return {
        "ola": CannedReply.objects.create(shortcut="ola", title="Saudação", text="Olá!"),
        "reinicie": CannedReply.objects.create(
            shortcut="reinicie", title="Reiniciar a ONU", text="Desligue a ONU.", team=support
        ),
        "boleto": CannedReply.objects.create(
            shortcut="boleto", title="Segunda via", text="Segue o boleto.", team=finance
        ),
    }


@pytest.fixture
def finance_supervisor(finance: Team) -> User:
    user = User.objects.create_user(
        username="fabio.supervisor", password=None, role=User.Role.SUPERVISOR, name="Fábio"
    )
    user.teams.set([finance])
    return user


# --- reading --------------------------------------------------------------------------


def test_each_user_sees_shared_and_their_teams_replies(
    client: Client, agent: User, outsider: User, admin: User, replies: dict[str, CannedReply]
) -> None:
    ola, reinicie, boleto = replies["ola"], replies["reinicie"], replies["boleto"]

    assert call(client, "get", CANNED, agent).json() == page(ola, reinicie)
    assert call(client, "get", CANNED, outsider).json() == page(boleto, ola)
    assert call(client, "get", CANNED, admin).json() == page(boleto, ola, reinicie)


def test_the_reply_body(
    client: Client, agent: User, support: Team, replies: dict[str, CannedReply]
) -> None:
    reply = replies["reinicie"]

    response = call(client, "get", f"{CANNED}{reply.pk}/", agent)

    assert response.status_code == 200
    assert response.json() == {
        "id": reply.pk,
        "shortcut": "reinicie",
        "title": "Reiniciar a ONU",
        "text": "Desligue a ONU.",
        "team": {"id": support.pk, "name": "Suporte técnico"},
        "created_at": canned_body(reply)["created_at"],
        "updated_at": canned_body(reply)["updated_at"],
    }


@pytest.mark.parametrize(
    ("query", "names"),
    [("?q=rein", ["reinicie"]), ("?q=/ola", ["ola"]), ("?q=SAUDA", ["ola"]), ("?q=zzz", [])],
)
def test_search_by_shortcut_or_title(
    client: Client,
    agent: User,
    replies: dict[str, CannedReply],
    query: str,
    names: list[str],
) -> None:
    response = call(client, "get", CANNED + query, agent)

    assert response.json() == page(*(replies[name] for name in names))


def test_a_nul_in_the_search_is_400(
    client: Client, agent: User, replies: dict[str, CannedReply]
) -> None:
    response = call(client, "get", f"{CANNED}?q=%00", agent)

    assert response.status_code == 400
    assert response.json() == invalid({"q": ["Null characters are not allowed."]})


def test_an_agent_neither_sees_nor_changes_another_teams_reply(
    client: Client, agent: User, replies: dict[str, CannedReply]
) -> None:
    before = state()
    path = f"{CANNED}{replies['boleto'].pk}/"

    read = call(client, "get", path, agent)
    changed = call(client, "patch", path, agent, {"title": "x"})
    deleted = call(client, "delete", path, agent)

    assert (read.status_code, read.json()) == (404, NO_CANNED_REPLY)
    for response in (changed, deleted):
        assert (response.status_code, response.json()) == (403, refused(ONLY_SUPERVISORS))
    assert state() == before


def test_unknown_replies_are_404(client: Client, admin: User, db: None) -> None:
    for path in (f"{CANNED}{NOWHERE}/", f"{CANNED}abc/"):
        response = call(client, "get", path, admin)

        assert (response.status_code, response.json()) == (404, NO_CANNED_REPLY)


def test_a_supervisor_of_another_team_gets_404(
    client: Client, finance_supervisor: User, replies: dict[str, CannedReply]
) -> None:
    before = state()
    path = f"{CANNED}{replies['reinicie'].pk}/"

    for method, body in (("get", None), ("patch", {"title": "x"}), ("delete", None)):
        response = call(client, method, path, finance_supervisor, body)

        assert response.status_code == 404
        assert response.json() == NO_CANNED_REPLY
    assert state() == before


# --- creating -------------------------------------------------------------------------


def test_an_agent_cannot_create(client: Client, agent: User, support: Team) -> None:
    response = call(
        client,
        "post",
        CANNED,
        agent,
        {"shortcut": "x", "title": "X", "text": "X", "team": support.pk},
    )

    assert response.status_code == 403
    assert response.json() == refused(ONLY_SUPERVISORS)
    assert not CannedReply.objects.exists()


def test_a_supervisor_creates_for_their_team(
    client: Client, supervisor: User, support: Team
) -> None:
    response = call(
        client,
        "post",
        CANNED,
        supervisor,
        {
            "shortcut": "visita",
            "title": "Agendar visita",
            "text": "{{contact.first_name}}, o técnico vai até você.",
            "team": support.pk,
        },
    )

    assert response.status_code == 201
    [reply] = CannedReply.objects.all()
    assert (reply.shortcut, reply.title, reply.team, reply.created_by) == (
        "visita",
        "Agendar visita",
        support,
        supervisor,
    )
    assert reply.text == "{{contact.first_name}}, o técnico vai até você."
    assert response.json() == canned_body(reply)


@pytest.mark.parametrize("team", ["none", "finance"])
def test_a_supervisor_cannot_create_shared_or_other_teams_replies(
    client: Client, supervisor: User, finance: Team, team: str
) -> None:
    body = {"shortcut": "x", "title": "X", "text": "X", "team": None}
    if team == "finance":
        body["team"] = finance.pk

    response = call(client, "post", CANNED, supervisor, body)

    assert response.status_code == 403
    assert response.json() == refused(ONLY_MANAGERS)
    assert not CannedReply.objects.exists()


def test_an_admin_creates_a_shared_reply(client: Client, admin: User) -> None:
    response = call(
        client, "post", CANNED, admin, {"shortcut": "tchau", "title": "Despedida", "text": "Até!"}
    )

    assert response.status_code == 201
    [reply] = CannedReply.objects.all()
    assert (reply.shortcut, reply.team, reply.created_by) == ("tchau", None, admin)
    assert response.json() == canned_body(reply)
    assert response.json()["team"] is None


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        (
            {},
            {
                "shortcut": ["This field is required."],
                "title": ["This field is required."],
                "text": ["This field is required."],
            },
        ),
        (
            {"shortcut": "com espaço", "title": "T", "text": "T"},
            {
                "shortcut": [
                    'Enter a valid "slug" consisting of letters, numbers, underscores or hyphens.'
                ]
            },
        ),
        (
            {"shortcut": "ola", "title": "T", "text": "T"},
            {"shortcut": ["This shortcut is already in use."]},
        ),
        (
            {"shortcut": "novo", "title": "T", "text": "Oi {{contact.cpf}}"},
            {
                "text": [
                    "Unknown placeholder {{contact.cpf}}; use {{agent.name}}, "
                    "{{contact.customer_code}}, {{contact.first_name}}, {{contact.name}}, "
                    "{{conversation.protocol}}."
                ]
            },
        ),
        (
            {"shortcut": "novo", "title": "T", "text": "T", "team": NOWHERE},
            {"team": [f'Invalid pk "{NOWHERE}" - object does not exist.']},
        ),
    ],
)
def test_invalid_replies_are_400(
    client: Client,
    admin: User,
    replies: dict[str, CannedReply],
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    before = state()

    response = call(client, "post", CANNED, admin, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)
    assert state() == before


# --- changing and deleting ------------------------------------------------------------


def test_a_supervisor_edits_their_teams_reply(
    client: Client, supervisor: User, replies: dict[str, CannedReply]
) -> None:
    reply = replies["reinicie"]

    response = call(
        client,
        "patch",
        f"{CANNED}{reply.pk}/",
        supervisor,
        {"title": "Reiniciar", "text": "Desligue e ligue a ONU, {{contact.first_name}}."},
    )

    assert response.status_code == 200
    reply.refresh_from_db()
    assert (reply.shortcut, reply.title, reply.text, reply.team.name) == (
        "reinicie",
        "Reiniciar",
        "Desligue e ligue a ONU, {{contact.first_name}}.",
        "Suporte técnico",
    )
    assert response.json() == canned_body(reply)


def test_a_supervisor_cannot_take_over_a_shared_reply(
    client: Client, supervisor: User, support: Team, replies: dict[str, CannedReply]
) -> None:
    before = state()
    path = f"{CANNED}{replies['ola'].pk}/"

    moved = call(client, "patch", path, supervisor, {"team": support.pk})
    edited = call(client, "patch", path, supervisor, {"text": "Oi"})
    deleted = call(client, "delete", path, supervisor)

    for response in (moved, edited, deleted):
        assert response.status_code == 403
        assert response.json() == refused(ONLY_MANAGERS)
    assert state() == before


def test_a_supervisor_cannot_move_a_reply_to_another_team(
    client: Client, supervisor: User, finance: Team, replies: dict[str, CannedReply]
) -> None:
    before = state()

    response = call(
        client, "patch", f"{CANNED}{replies['reinicie'].pk}/", supervisor, {"team": finance.pk}
    )

    assert response.status_code == 403
    assert response.json() == refused(ONLY_MANAGERS)
    assert state() == before


def test_patch_ignores_fields_it_does_not_know(
    client: Client, admin: User, supervisor: User, replies: dict[str, CannedReply]
) -> None:
    reply = replies["ola"]
    created_by = reply.created_by

    response = call(
        client,
        "patch",
        f"{CANNED}{reply.pk}/",
        admin,
        {"created_by": supervisor.pk, "id": NOWHERE, "created_at": "2020-01-01T00:00:00Z"},
    )

    assert response.status_code == 200
    reply.refresh_from_db()
    assert (reply.pk, reply.created_by) == (replies["ola"].pk, created_by)


def test_a_duplicate_shortcut_on_patch_is_400(
    client: Client, admin: User, replies: dict[str, CannedReply]
) -> None:
    before = state()

    response = call(
        client,
        "patch",
        f"{CANNED}{replies['reinicie'].pk}/",
        admin,
        {"shortcut": "ola", "team": None},
    )

    assert response.status_code == 400
    assert response.json() == invalid({"shortcut": ["This shortcut is already in use."]})
    assert state() == before


def test_delete(
    client: Client,
    agent: User,
    supervisor: User,
    admin: User,
    replies: dict[str, CannedReply],
) -> None:
    team_reply, shared = replies["reinicie"], replies["ola"]

    by_agent = call(client, "delete", f"{CANNED}{team_reply.pk}/", agent)
    by_supervisor = call(client, "delete", f"{CANNED}{team_reply.pk}/", supervisor)
    by_admin = call(client, "delete", f"{CANNED}{shared.pk}/", admin)

    assert by_agent.status_code == 403
    assert by_agent.json() == refused(ONLY_SUPERVISORS)
    assert (by_supervisor.status_code, by_admin.status_code) == (204, 204)
    assert list(CannedReply.objects.values_list("shortcut", flat=True)) == ["boleto"]


def test_put_is_not_allowed(client: Client, admin: User, replies: dict[str, CannedReply]) -> None:
    response = call(
        client,
        "put",
        f"{CANNED}{replies['ola'].pk}/",
        admin,
        {"shortcut": "x", "title": "x", "text": "x"},
    )

    assert response.status_code == 405

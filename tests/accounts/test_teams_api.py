"""Teams and their members: /api/v1/teams/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from rest_framework import serializers

from accounts.models import Team, User
from tests.support import bearer

TEAMS = "/api/v1/teams/"
ONLY_SUPERVISORS = "Only supervisors and administrators may do this."
ONLY_ADMINS = "Only administrators may do this."
# A primary key no row has: Postgres sequences do not restart between tests.
NOWHERE = 2_000_000_000
NOT_LOGGED_IN = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}


def refused(detail: str) -> dict[str, str]:
    return {"detail": detail, "code": "permission_denied"}


def invalid(errors: dict[str, list[str]]) -> dict[str, Any]:
    return {"detail": "Invalid input.", "code": "invalid", "errors": errors}


def call(
    client: Client,
    method: str,
    path: str,
    user: User | None,
    body: dict[str, Any] | None = None,
) -> HttpResponse:
    """An API call in English, with a JWT for ``user`` (none: anonymous)."""
    headers = {"Accept-Language": "en", **(bearer(user) if user is not None else {})}
    if body is None:
        return getattr(client, method)(path, headers=headers)
    return getattr(client, method)(path, body, content_type="application/json", headers=headers)


def iso(moment: datetime) -> str:
    """A timestamp as the API writes it (local time with its offset)."""
    return serializers.DateTimeField().to_representation(moment)


def staff(username: str, **fields: Any) -> User:
    """A user nobody logs in as with a password: no slow bcrypt round."""
    return User.objects.create_user(username=username, password=None, **fields)


def member(user: User) -> dict[str, Any]:
    return {"id": user.pk, "username": user.username, "name": user.display_name, "role": user.role}


def state() -> list[tuple[Any, ...]]:
    """Every team's fields and members, to show a refused call changed nothing."""
    return [
        (team.pk, team.name, team.description, sorted(user.pk for user in team.members.all()))
        for team in Team.objects.prefetch_related("members").order_by("pk")
    ]


@pytest.fixture
def supervisor(db: None) -> User:
    return staff("carla.supervisora", role=User.Role.SUPERVISOR)


@pytest.fixture
def diego(db: None) -> User:
    return staff("diego.agente", name="Diego (Suporte)")


@pytest.fixture
def helena(db: None) -> User:
    return staff("helena.agente", name="Helena")


@pytest.fixture
def support(diego: User) -> Team:
    team = Team.objects.create(name="Suporte técnico", description="Internet caiu, lentidão")
    team.members.add(diego)
    return team


def members_of(team: Team) -> list[str]:
    return sorted(team.members.values_list("username", flat=True))


# --- Who may do what ---------------------------------------------------------

ANONYMOUS, AGENT, SUPERVISOR, ADMIN = "anonymous", "agent", "supervisor", "admin"
ROLES = (ANONYMOUS, AGENT, SUPERVISOR, ADMIN)

Ids = dict[str, int]
Endpoint = tuple[str, Callable[[Ids], str], Callable[[Ids], dict[str, Any] | None]]


def no_body(ids: Ids) -> None:
    return None


ENDPOINTS: dict[str, Endpoint] = {
    "list": ("get", lambda ids: TEAMS, no_body),
    "retrieve": ("get", lambda ids: f"{TEAMS}{ids['support']}/", no_body),
    "create": ("post", lambda ids: TEAMS, lambda ids: {"name": "Comercial"}),
    "patch": (
        "patch",
        lambda ids: f"{TEAMS}{ids['support']}/",
        lambda ids: {"description": "Tudo sobre a conexão"},
    ),
    "add member": (
        "post",
        lambda ids: f"{TEAMS}{ids['support']}/members/",
        lambda ids: {"user": ids["helena"]},
    ),
    "remove member": (
        "delete",
        lambda ids: f"{TEAMS}{ids['support']}/members/{ids['diego']}/",
        no_body,
    ),
}

# Per endpoint, what anonymous, an agent, a supervisor and an admin get:
# a status for success, (403, detail) for a refusal.
Outcome = int | tuple[int, str]
MATRIX: dict[str, tuple[Outcome, Outcome, Outcome, Outcome]] = {
    "list": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "retrieve": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "create": (401, (403, ONLY_ADMINS), (403, ONLY_ADMINS), 201),
    "patch": (401, (403, ONLY_ADMINS), (403, ONLY_ADMINS), 200),
    "add member": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "remove member": (401, (403, ONLY_SUPERVISORS), 200, 200),
}

CASES = [
    pytest.param(endpoint, role, outcome, id=f"{role}-{endpoint}")
    for endpoint, outcomes in MATRIX.items()
    for role, outcome in zip(ROLES, outcomes, strict=True)
]


@pytest.fixture
def ids(support: Team, diego: User, helena: User) -> Ids:
    return {"support": support.pk, "diego": diego.pk, "helena": helena.pk}


def test_matrix_covers_every_endpoint() -> None:
    assert set(MATRIX) == set(ENDPOINTS)


@pytest.mark.parametrize(("endpoint", "role", "outcome"), CASES)
def test_who_may_do_what(
    client: Client,
    request: pytest.FixtureRequest,
    ids: Ids,
    endpoint: str,
    role: str,
    outcome: Outcome,
) -> None:
    caller = None if role == ANONYMOUS else request.getfixturevalue(role)
    method, path, body = ENDPOINTS[endpoint]
    before = state()

    response = call(client, method, path(ids), caller, body(ids))

    if outcome == 401:
        assert (response.status_code, response.json()) == (401, NOT_LOGGED_IN)
        assert response.headers["WWW-Authenticate"] == 'Bearer realm="api"'
    elif isinstance(outcome, tuple):
        status, detail = outcome
        assert (response.status_code, response.json()) == (status, refused(detail))
    else:
        assert response.status_code == outcome, response.content
        return
    assert state() == before


# --- Create and rename ---------------------------------------------------------


def test_admin_creates_a_team(client: Client, admin: User, agent: User) -> None:
    body = {"name": "Comercial", "description": "Planos e upgrades"}
    turned_away = call(client, "post", TEAMS, agent, body)
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_ADMINS))
    assert not Team.objects.exists()

    response = call(client, "post", TEAMS, admin, body)

    assert response.status_code == 201
    team = Team.objects.get()
    assert response.json() == {
        "id": team.pk,
        "name": "Comercial",
        "description": "Planos e upgrades",
        "member_count": 0,
        "members": [],
        "created_at": iso(team.created_at),
    }


def test_team_names_are_unique(client: Client, admin: User, support: Team) -> None:
    before = state()

    response = call(client, "post", TEAMS, admin, {"name": "Suporte técnico"})

    assert (response.status_code, response.json()) == (
        400,
        invalid({"name": ["team with this name already exists."]}),
    )
    assert state() == before


def test_a_team_needs_a_name(client: Client, admin: User) -> None:
    response = call(client, "post", TEAMS, admin, {"description": "Sem nome"})

    assert (response.status_code, response.json()) == (
        400,
        invalid({"name": ["This field is required."]}),
    )
    assert not Team.objects.exists()


def test_admin_renames_a_team(
    client: Client, admin: User, agent: User, support: Team, diego: User
) -> None:
    turned_away = call(client, "patch", f"{TEAMS}{support.pk}/", agent, {"name": "Suporte"})
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_ADMINS))

    response = call(client, "patch", f"{TEAMS}{support.pk}/", admin, {"name": "Suporte N1"})

    assert response.status_code == 200
    assert response.json() == {
        "id": support.pk,
        "name": "Suporte N1",
        "description": "Internet caiu, lentidão",
        "member_count": 1,
        "members": [member(diego)],
        "created_at": iso(support.created_at),
    }
    support.refresh_from_db()
    assert (support.name, support.description) == ("Suporte N1", "Internet caiu, lentidão")


def test_renaming_onto_another_team_is_refused(client: Client, admin: User, support: Team) -> None:
    Team.objects.create(name="Financeiro")
    before = state()

    response = call(client, "patch", f"{TEAMS}{support.pk}/", admin, {"name": "Financeiro"})

    assert (response.status_code, response.json()) == (
        400,
        invalid({"name": ["team with this name already exists."]}),
    )
    assert state() == before


# --- List ----------------------------------------------------------------------


def test_list_shows_each_team_with_its_members(
    client: Client, supervisor: User, agent: User, support: Team, diego: User, helena: User
) -> None:
    support.members.add(helena)
    empty = Team.objects.create(name="Comercial")
    gone = staff("tiago.alves", is_active=False)
    billing = Team.objects.create(name="Financeiro")
    billing.members.add(gone, supervisor)
    turned_away = call(client, "get", TEAMS, agent)
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_SUPERVISORS))

    response = call(client, "get", TEAMS, supervisor)

    assert response.status_code == 200
    body = response.json()
    for team in body["results"]:
        team["members"].sort(key=lambda m: m["username"])
    assert body == {
        "count": 3,
        "next": None,
        "previous": None,
        "results": [
            {
                "id": empty.pk,
                "name": "Comercial",
                "description": "",
                "member_count": 0,
                "members": [],
                "created_at": iso(empty.created_at),
            },
            {
                "id": billing.pk,
                "name": "Financeiro",
                "description": "",
                "member_count": 2,
                "members": [
                    {
                        "id": supervisor.pk,
                        "username": "carla.supervisora",
                        "name": "carla.supervisora",
                        "role": "supervisor",
                    },
                    {
                        "id": gone.pk,
                        "username": "tiago.alves",
                        "name": "tiago.alves",
                        "role": "agent",
                    },
                ],
                "created_at": iso(billing.created_at),
            },
            {
                "id": support.pk,
                "name": "Suporte técnico",
                "description": "Internet caiu, lentidão",
                "member_count": 2,
                "members": [
                    {
                        "id": diego.pk,
                        "username": "diego.agente",
                        "name": "Diego (Suporte)",
                        "role": "agent",
                    },
                    {
                        "id": helena.pk,
                        "username": "helena.agente",
                        "name": "Helena",
                        "role": "agent",
                    },
                ],
                "created_at": iso(support.created_at),
            },
        ],
    }


def test_search_finds_teams_by_name_or_description(
    client: Client, supervisor: User, support: Team
) -> None:
    Team.objects.create(name="Financeiro", description="Boletos e segunda via")

    by_name = call(client, "get", f"{TEAMS}?search=suporte", supervisor)
    by_description = call(client, "get", f"{TEAMS}?search=boleto", supervisor)

    assert [team["name"] for team in by_name.json()["results"]] == ["Suporte técnico"]
    assert [team["name"] for team in by_description.json()["results"]] == ["Financeiro"]


def test_list_costs_the_same_queries_for_2_or_8_teams(
    client: Client, supervisor: User, diego: User
) -> None:
    # Without a display name, members are shown by their full name or username.
    nameless = staff("joao.s", first_name="João", last_name="Silva")

    def add_teams(count: int) -> None:
        start = Team.objects.count()
        for n in range(start, start + count):
            Team.objects.create(name=f"Equipe {n}").members.add(diego, nameless)

    def queries_for_list(expected_count: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = call(client, "get", TEAMS, supervisor)
        teams = response.json()["results"]
        assert [team["member_count"] for team in teams] == [2] * expected_count
        assert [sorted(m["name"] for m in team["members"]) for team in teams] == [
            ["Diego (Suporte)", "João Silva"]
        ] * expected_count
        return len(queries)

    add_teams(2)
    few = queries_for_list(2)
    add_teams(6)
    many = queries_for_list(8)

    # The caller, the count, the page of teams and all their members.
    assert few == many == 4


# --- Members -------------------------------------------------------------------


def test_supervisor_adds_a_member(
    client: Client, supervisor: User, agent: User, support: Team, diego: User, helena: User
) -> None:
    url = f"{TEAMS}{support.pk}/members/"
    turned_away = call(client, "post", url, agent, {"user": helena.pk})
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_SUPERVISORS))
    assert members_of(support) == ["diego.agente"]

    response = call(client, "post", url, supervisor, {"user": helena.pk})

    assert response.status_code == 200
    body = response.json()
    body["members"].sort(key=lambda m: m["username"])
    assert body == {
        "id": support.pk,
        "name": "Suporte técnico",
        "description": "Internet caiu, lentidão",
        "member_count": 2,
        "members": [member(diego), member(helena)],
        "created_at": iso(support.created_at),
    }
    assert members_of(support) == ["diego.agente", "helena.agente"]
    assert [team.name for team in helena.teams.all()] == ["Suporte técnico"]


def test_adding_a_member_twice_keeps_one_membership(
    client: Client, supervisor: User, support: Team, diego: User
) -> None:
    response = call(client, "post", f"{TEAMS}{support.pk}/members/", supervisor, {"user": diego.pk})

    assert response.status_code == 200
    assert response.json()["member_count"] == 1
    assert members_of(support) == ["diego.agente"]


def test_inactive_or_unknown_users_cannot_join(
    client: Client, supervisor: User, support: Team
) -> None:
    gone = staff("tiago.alves", is_active=False)
    before = state()
    url = f"{TEAMS}{support.pk}/members/"

    inactive = call(client, "post", url, supervisor, {"user": gone.pk})
    unknown = call(client, "post", url, supervisor, {"user": NOWHERE})
    missing = call(client, "post", url, supervisor, {})

    assert (inactive.status_code, inactive.json()) == (
        400,
        invalid({"user": [f'Invalid pk "{gone.pk}" - object does not exist.']}),
    )
    assert (unknown.status_code, unknown.json()) == (
        400,
        invalid({"user": [f'Invalid pk "{NOWHERE}" - object does not exist.']}),
    )
    assert (missing.status_code, missing.json()) == (
        400,
        invalid({"user": ["This field is required."]}),
    )
    assert state() == before


def test_supervisor_removes_a_member(
    client: Client, supervisor: User, agent: User, support: Team, diego: User
) -> None:
    url = f"{TEAMS}{support.pk}/members/{diego.pk}/"
    turned_away = call(client, "delete", url, agent)
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_SUPERVISORS))
    assert members_of(support) == ["diego.agente"]

    response = call(client, "delete", url, supervisor)

    assert response.status_code == 200
    assert response.json() == {
        "id": support.pk,
        "name": "Suporte técnico",
        "description": "Internet caiu, lentidão",
        "member_count": 0,
        "members": [],
        "created_at": iso(support.created_at),
    }
    assert members_of(support) == []
    assert User.objects.filter(pk=diego.pk, is_active=True).exists()


def test_removing_someone_who_is_not_a_member_is_a_404(
    client: Client, supervisor: User, support: Team, helena: User
) -> None:
    before = state()

    response = call(client, "delete", f"{TEAMS}{support.pk}/members/{helena.pk}/", supervisor)

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No User matches the given query.", "code": "not_found"},
    )
    assert state() == before


def test_an_unknown_team_is_a_404(client: Client, supervisor: User, helena: User) -> None:
    response = call(client, "post", f"{TEAMS}{NOWHERE}/members/", supervisor, {"user": helena.pk})

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No Team matches the given query.", "code": "not_found"},
    )

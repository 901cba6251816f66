"""The staff users API: /api/v1/users/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import translation
from rest_framework import serializers
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import Team, User
from tests.support import bearer

USERS = "/api/v1/users/"
ONLY_SUPERVISORS = "Only supervisors and administrators may do this."
ONLY_ADMINS = "Only administrators may do this."
ONLY_AGENTS = "Supervisors may only change the availability and teams of agents."
# A primary key no row has: Postgres sequences do not restart between tests.
NOWHERE = 2_000_000_000
NOT_LOGGED_IN = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}
STRONG = "Cavalo-Bateria-42"


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


def iso(moment: datetime | None) -> str | None:
    """A timestamp as the API writes it (local time with its offset)."""
    return None if moment is None else serializers.DateTimeField().to_representation(moment)


def staff(username: str, **fields: Any) -> User:
    """A user nobody logs in as with a password: no slow bcrypt round."""
    return User.objects.create_user(username=username, password=None, **fields)


def state() -> list[tuple[Any, ...]]:
    """Every user's fields and teams, to show a refused call changed nothing."""
    return [
        (
            user.pk,
            user.username,
            user.name,
            user.email,
            user.role,
            user.availability,
            user.is_active,
            user.is_staff,
            user.password,
            sorted(team.pk for team in user.teams.all()),
        )
        for user in User.objects.prefetch_related("teams").order_by("pk")
    ]


@pytest.fixture
def supervisor(db: None) -> User:
    return staff("carla.supervisora", role=User.Role.SUPERVISOR, name="Carla (Supervisão)")


@pytest.fixture
def support(db: None) -> Team:
    return Team.objects.create(name="Suporte técnico")


@pytest.fixture
def billing(db: None) -> Team:
    return Team.objects.create(name="Financeiro")


@pytest.fixture
def diego(support: Team) -> User:
    """An agent the callers act on."""
    user = staff("diego.agente", name="Diego (Suporte)", email="diego@provedor.example.com")
    user.teams.add(support)
    return user


# --- Who may do what ---------------------------------------------------------

ANONYMOUS, AGENT, SUPERVISOR, ADMIN = "anonymous", "agent", "supervisor", "admin"
ROLES = (ANONYMOUS, AGENT, SUPERVISOR, ADMIN)

Ids = dict[str, int]
Endpoint = tuple[str, Callable[[Ids], str], Callable[[Ids], dict[str, Any] | None]]


def no_body(ids: Ids) -> None:
    return None


ENDPOINTS: dict[str, Endpoint] = {
    "list": ("get", lambda ids: USERS, no_body),
    "retrieve": ("get", lambda ids: f"{USERS}{ids['diego']}/", no_body),
    "create": (
        "post",
        lambda ids: USERS,
        lambda ids: {"username": "elisa.nunes", "password": STRONG, "role": "agent"},
    ),
    "patch agent availability": (
        "patch",
        lambda ids: f"{USERS}{ids['diego']}/",
        lambda ids: {"availability": "away"},
    ),
    "patch agent teams": (
        "patch",
        lambda ids: f"{USERS}{ids['diego']}/",
        lambda ids: {"teams": [ids["billing"]]},
    ),
    "patch agent role": (
        "patch",
        lambda ids: f"{USERS}{ids['diego']}/",
        lambda ids: {"role": "supervisor"},
    ),
    "patch agent name": (
        "patch",
        lambda ids: f"{USERS}{ids['diego']}/",
        lambda ids: {"name": "Diego Souza"},
    ),
    "patch supervisor availability": (
        "patch",
        lambda ids: f"{USERS}{ids['fabio']}/",
        lambda ids: {"availability": "away"},
    ),
    "patch admin availability": (
        "patch",
        lambda ids: f"{USERS}{ids['gabi']}/",
        lambda ids: {"availability": "away"},
    ),
    # createsuperuser leaves the role at its default, agent: still an admin.
    "patch superuser teams": (
        "patch",
        lambda ids: f"{USERS}{ids['root']}/",
        lambda ids: {"teams": [ids["billing"]]},
    ),
    "deactivate": ("post", lambda ids: f"{USERS}{ids['diego']}/deactivate/", no_body),
    "activate": ("post", lambda ids: f"{USERS}{ids['diego']}/activate/", no_body),
}

# Per endpoint, what anonymous, an agent, a supervisor and an admin get:
# a status for success, (403, detail) for a refusal.
Outcome = int | tuple[int, str]
MATRIX: dict[str, tuple[Outcome, Outcome, Outcome, Outcome]] = {
    "list": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "retrieve": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "create": (401, (403, ONLY_ADMINS), (403, ONLY_ADMINS), 201),
    "patch agent availability": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "patch agent teams": (401, (403, ONLY_SUPERVISORS), 200, 200),
    "patch agent role": (401, (403, ONLY_SUPERVISORS), (403, ONLY_AGENTS), 200),
    "patch agent name": (401, (403, ONLY_SUPERVISORS), (403, ONLY_AGENTS), 200),
    "patch supervisor availability": (401, (403, ONLY_SUPERVISORS), (403, ONLY_AGENTS), 200),
    "patch admin availability": (401, (403, ONLY_SUPERVISORS), (403, ONLY_AGENTS), 200),
    "patch superuser teams": (401, (403, ONLY_SUPERVISORS), (403, ONLY_AGENTS), 200),
    "deactivate": (401, (403, ONLY_ADMINS), (403, ONLY_ADMINS), 200),
    "activate": (401, (403, ONLY_ADMINS), (403, ONLY_ADMINS), 200),
}

CASES = [
    pytest.param(endpoint, role, outcome, id=f"{role}-{endpoint}")
    for endpoint, outcomes in MATRIX.items()
    for role, outcome in zip(ROLES, outcomes, strict=True)
]


@pytest.fixture
def ids(diego: User, billing: Team) -> Ids:
    fabio = staff("fabio.supervisor", role=User.Role.SUPERVISOR)
    gabi = staff("gabi.admin", role=User.Role.ADMIN)
    root = User.objects.create_superuser(username="root.ops", password=None)
    return {
        "diego": diego.pk,
        "fabio": fabio.pk,
        "gabi": gabi.pk,
        "root": root.pk,
        "billing": billing.pk,
    }


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


# --- List ------------------------------------------------------------------


def test_agent_cannot_list_users(client: Client, agent: User) -> None:
    response = call(client, "get", USERS, agent)

    assert (response.status_code, response.json()) == (403, refused(ONLY_SUPERVISORS))


def test_list_is_paged_and_shows_each_user_whole(
    client: Client, supervisor: User, diego: User, support: Team
) -> None:
    diego.availability_changed_at = diego.date_joined
    diego.save()
    # 51 more, so that there is a second page of 50.
    User.objects.bulk_create(User(username=f"zz.extra{n:02}") for n in range(51))

    first = call(client, "get", USERS, supervisor)
    second = call(client, "get", f"{USERS}?page=2", supervisor)

    assert first.status_code == 200
    page = first.json()
    assert (page["count"], page["next"], page["previous"], len(page["results"])) == (
        53,
        "http://testserver/api/v1/users/?page=2",
        None,
        50,
    )
    assert page["results"][:2] == [
        {
            "id": supervisor.pk,
            "username": "carla.supervisora",
            "name": "Carla (Supervisão)",
            "email": "",
            "role": "supervisor",
            "availability": "offline",
            "availability_changed_at": None,
            "teams": [],
            "is_active": True,
            "last_login": None,
            "date_joined": iso(supervisor.date_joined),
        },
        {
            "id": diego.pk,
            "username": "diego.agente",
            "name": "Diego (Suporte)",
            "email": "diego@provedor.example.com",
            "role": "agent",
            "availability": "offline",
            "availability_changed_at": iso(diego.date_joined),
            "teams": [{"id": support.pk, "name": "Suporte técnico"}],
            "is_active": True,
            "last_login": None,
            "date_joined": iso(diego.date_joined),
        },
    ]
    assert second.json() == {
        "count": 53,
        "next": None,
        "previous": "http://testserver/api/v1/users/",
        "results": [
            {
                "id": user.pk,
                "username": user.username,
                "name": user.username,
                "email": "",
                "role": "agent",
                "availability": "offline",
                "availability_changed_at": None,
                "teams": [],
                "is_active": True,
                "last_login": None,
                "date_joined": iso(user.date_joined),
            }
            for user in User.objects.filter(username__gte="zz.extra48").order_by("username")
        ],
    }


@pytest.fixture
def crowd(supervisor: User, support: Team, billing: Team) -> None:
    """Staff of every role, availability and team, one of them gone."""
    staff("ana.souza", name="Ana Souza", availability=User.Availability.ONLINE).teams.add(support)
    staff("pedro.souza", role=User.Role.SUPERVISOR).teams.add(support, billing)
    staff("rita.lima", availability=User.Availability.AWAY).teams.add(billing)
    staff("tiago.alves", name="Tiago", is_active=False)


@pytest.mark.parametrize(
    ("query", "usernames"),
    [
        ("role=supervisor", ["carla.supervisora", "pedro.souza"]),
        ("role=agent", ["ana.souza", "rita.lima", "tiago.alves"]),
        ("team={support}", ["ana.souza", "pedro.souza"]),
        ("team={billing}", ["pedro.souza", "rita.lima"]),
        ("availability=online", ["ana.souza"]),
        ("availability=away", ["rita.lima"]),
        ("is_active=false", ["tiago.alves"]),
        ("is_active=true", ["ana.souza", "carla.supervisora", "pedro.souza", "rita.lima"]),
        ("role=agent&is_active=true&team={billing}", ["rita.lima"]),
        # By username or by display name.
        ("search=souza", ["ana.souza", "pedro.souza"]),
        ("search=Tiago", ["tiago.alves"]),
        ("search=supervis", ["carla.supervisora"]),
        ("search=nobody", []),
    ],
)
def test_list_filters_and_search(
    client: Client,
    crowd: None,
    supervisor: User,
    support: Team,
    billing: Team,
    query: str,
    usernames: list[str],
) -> None:
    url = f"{USERS}?{query.format(support=support.pk, billing=billing.pk)}"

    response = call(client, "get", url, supervisor)

    assert response.status_code == 200
    body = response.json()
    assert [user["username"] for user in body["results"]] == usernames
    assert body["count"] == len(usernames)


def test_unknown_team_filter_is_a_400(client: Client, supervisor: User) -> None:
    response = call(client, "get", f"{USERS}?team={NOWHERE}", supervisor)

    assert (response.status_code, response.json()) == (
        400,
        invalid(
            {"team": ["Select a valid choice. That choice is not one of the available choices."]}
        ),
    )


def test_list_costs_the_same_queries_for_3_or_30_users(
    client: Client, supervisor: User, support: Team, billing: Team
) -> None:
    sales = Team.objects.create(name="Comercial")
    teams = [support, billing, sales]

    def add_staff(count: int) -> None:
        start = User.objects.count()
        for n in range(start, start + count):
            staff(f"agente{n:02}").teams.add(teams[n % 3], teams[(n + 1) % 3])

    def queries_for_list(expected_count: int) -> int:
        with CaptureQueriesContext(connection) as queries:
            response = call(client, "get", USERS, supervisor)
        assert response.json()["count"] == expected_count
        agents = [user for user in response.json()["results"] if user["role"] == "agent"]
        assert [len(user["teams"]) for user in agents] == [2] * (expected_count - 1)
        return len(queries)

    add_staff(2)
    few = queries_for_list(3)
    add_staff(27)
    many = queries_for_list(30)

    # The caller, the count, the page of users and all their teams.
    assert few == many == 4


# --- Create ------------------------------------------------------------------


def test_admin_creates_an_agent_with_a_bcrypt_password(
    client: Client, admin: User, agent: User, support: Team, billing: Team
) -> None:
    body = {
        "username": "elisa.nunes",
        "password": STRONG,
        "name": "Elisa (Suporte)",
        "email": "elisa@provedor.example.com",
        "role": "agent",
        "teams": [support.pk, billing.pk],
    }
    turned_away = call(client, "post", USERS, agent, body)
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_ADMINS))
    assert not User.objects.filter(username="elisa.nunes").exists()

    response = call(client, "post", USERS, admin, body)

    assert response.status_code == 201
    user = User.objects.get(username="elisa.nunes")
    assert response.json() == {
        "id": user.pk,
        "username": "elisa.nunes",
        "name": "Elisa (Suporte)",
        "email": "elisa@provedor.example.com",
        "role": "agent",
        "availability": "offline",
        "availability_changed_at": None,
        "teams": [
            {"id": billing.pk, "name": "Financeiro"},
            {"id": support.pk, "name": "Suporte técnico"},
        ],
        "is_active": True,
        "last_login": None,
        "date_joined": iso(user.date_joined),
    }
    assert user.password.startswith("bcrypt_sha256$")
    assert user.check_password(STRONG)
    assert (user.is_staff, user.is_superuser) == (False, False)
    assert "password" not in response.json()


def test_an_admin_may_create_an_admin(client: Client, admin: User) -> None:
    response = call(
        client,
        "post",
        USERS,
        admin,
        {"username": "ines.admin", "password": STRONG, "role": "admin"},
    )

    assert response.status_code == 201
    assert response.json()["role"] == "admin"
    user = User.objects.get(username="ines.admin")
    assert (user.role, user.is_staff, user.is_superuser) == ("admin", True, False)


def test_a_supervisor_cannot_create_anyone(client: Client, supervisor: User) -> None:
    response = call(
        client, "post", USERS, supervisor, {"username": "elisa.nunes", "password": STRONG}
    )

    assert (response.status_code, response.json()) == (403, refused(ONLY_ADMINS))
    assert not User.objects.filter(username="elisa.nunes").exists()


def test_nobody_grants_a_role_above_their_own(supervisor: User) -> None:
    with translation.override("en"), pytest.raises(PermissionDenied) as error:
        services.user_create(
            username="ines.admin", password=STRONG, role=User.Role.ADMIN, actor=supervisor
        )

    assert str(error.value) == "You cannot give a role above your own."
    assert not User.objects.filter(username="ines.admin").exists()


TOO_SHORT = "This password is too short. It must contain at least 10 characters."
TOO_SIMPLE = (
    "This password must mix at least three of: lower case letters, upper case letters, "
    "digits and symbols."
)
HAS_NAME = "This password must not contain your username or name."


@pytest.mark.parametrize(
    ("username", "name", "password", "messages"),
    [
        pytest.param("elisa.nunes", "", "Xq7#kp2", [TOO_SHORT], id="too short"),
        pytest.param("elisa.nunes", "", "Xq7#kp2wz", [TOO_SHORT], id="nine characters"),
        pytest.param("elisa.nunes", "", "abcdefghijk", [TOO_SIMPLE], id="one class"),
        pytest.param("elisa.nunes", "", "abcdefghijK", [TOO_SIMPLE], id="two classes"),
        pytest.param(
            "mariana",
            "",
            "Mariana#2024x",
            ["The password is too similar to the username.", HAS_NAME],
            id="username",
        ),
        pytest.param(
            "elisa.n", "Elisa Conceição", "Xq7#Conceicao", [HAS_NAME], id="name without accents"
        ),
        pytest.param(
            "elisa.n",
            "",
            "qzvkrw",
            [TOO_SHORT, TOO_SIMPLE],
            id="several at once",
        ),
    ],
)
def test_the_password_policy_applies(
    client: Client, admin: User, username: str, name: str, password: str, messages: list[str]
) -> None:
    response = call(
        client, "post", USERS, admin, {"username": username, "name": name, "password": password}
    )

    assert (response.status_code, response.json()) == (400, invalid({"password": messages}))
    assert not User.objects.filter(username=username).exists()


def test_the_smallest_strong_password_is_taken(client: Client, admin: User) -> None:
    response = call(
        client, "post", USERS, admin, {"username": "elisa.nunes", "password": "Xq7#kp2wzt"}
    )

    assert response.status_code == 201
    assert User.objects.get(username="elisa.nunes").check_password("Xq7#kp2wzt")


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        pytest.param(
            {"username": "Diego.Agente"},
            {"username": ["A user with that username already exists."]},
            id="username taken, other case",
        ),
        pytest.param(
            {"role": "boss"}, {"role": ['"boss" is not a valid choice.']}, id="unknown role"
        ),
        pytest.param(
            {"teams": [NOWHERE]},
            {"teams": [f'Invalid pk "{NOWHERE}" - object does not exist.']},
            id="unknown team",
        ),
        pytest.param(
            {"username": "elisa nunes"},
            {"username": ["Use letters, digits and @/./+/-/_ only."]},
            id="space in username",
        ),
        pytest.param(
            {"email": "elisa-at-provedor"},
            {"email": ["Enter a valid email address."]},
            id="bad email",
        ),
    ],
)
def test_create_refuses_bad_fields(
    client: Client, admin: User, diego: User, body: dict[str, Any], errors: dict[str, list[str]]
) -> None:
    before = state()

    response = call(
        client, "post", USERS, admin, {"username": "elisa.nunes", "password": STRONG, **body}
    )

    assert (response.status_code, response.json()) == (400, invalid(errors))
    assert state() == before


def test_create_needs_username_and_password(client: Client, admin: User) -> None:
    response = call(client, "post", USERS, admin, {})

    assert (response.status_code, response.json()) == (
        400,
        invalid({"username": ["This field is required."], "password": ["This field is required."]}),
    )


# --- Change ------------------------------------------------------------------


def test_admin_changes_everything_about_a_user(
    client: Client, admin: User, agent: User, diego: User, billing: Team
) -> None:
    body = {
        "role": "supervisor",
        "name": "Diego Souza",
        "email": "diego.souza@provedor.example.com",
        "availability": "online",
        "teams": [billing.pk],
    }
    turned_away = call(client, "patch", f"{USERS}{diego.pk}/", agent, body)
    assert (turned_away.status_code, turned_away.json()) == (403, refused(ONLY_SUPERVISORS))

    response = call(client, "patch", f"{USERS}{diego.pk}/", admin, body)

    assert response.status_code == 200
    diego.refresh_from_db()
    assert response.json() == {
        "id": diego.pk,
        "username": "diego.agente",
        "name": "Diego Souza",
        "email": "diego.souza@provedor.example.com",
        "role": "supervisor",
        "availability": "online",
        "availability_changed_at": iso(diego.availability_changed_at),
        "teams": [{"id": billing.pk, "name": "Financeiro"}],
        "is_active": True,
        "last_login": None,
        "date_joined": iso(diego.date_joined),
    }
    assert diego.availability_changed_at is not None
    assert (diego.role, diego.is_staff) == ("supervisor", False)


def test_making_someone_admin_lets_them_into_django_admin(
    client: Client, admin: User, diego: User
) -> None:
    response = call(client, "patch", f"{USERS}{diego.pk}/", admin, {"role": "admin"})

    assert response.status_code == 200
    diego.refresh_from_db()
    assert (diego.role, diego.is_staff) == ("admin", True)

    call(client, "patch", f"{USERS}{diego.pk}/", admin, {"role": "agent"})
    diego.refresh_from_db()
    assert (diego.role, diego.is_staff) == ("agent", False)


def test_supervisor_moves_an_agent_between_teams_and_sets_availability(
    client: Client, supervisor: User, diego: User, billing: Team
) -> None:
    response = call(
        client,
        "patch",
        f"{USERS}{diego.pk}/",
        supervisor,
        {"availability": "away", "teams": [billing.pk]},
    )

    assert response.status_code == 200
    assert (response.json()["availability"], response.json()["teams"]) == (
        "away",
        [{"id": billing.pk, "name": "Financeiro"}],
    )
    diego.refresh_from_db()
    assert diego.availability == "away"
    assert list(diego.teams.all()) == [billing]


def test_an_admin_cannot_change_their_own_role(client: Client, admin: User) -> None:
    response = call(client, "patch", f"{USERS}{admin.pk}/", admin, {"role": "agent"})

    assert (response.status_code, response.json()) == (
        403,
        refused("You cannot change your own role."),
    )
    admin.refresh_from_db()
    assert admin.role == "admin"


def test_patch_refuses_bad_fields(client: Client, admin: User, diego: User) -> None:
    before = state()

    response = call(
        client,
        "patch",
        f"{USERS}{diego.pk}/",
        admin,
        {"availability": "busy", "email": "diego-at-provedor", "name": "Diego"},
    )

    assert (response.status_code, response.json()) == (
        400,
        invalid(
            {
                "email": ["Enter a valid email address."],
                "availability": ['"busy" is not a valid choice.'],
            }
        ),
    )
    assert state() == before


def test_an_unknown_user_is_a_404(client: Client, admin: User) -> None:
    response = call(client, "patch", f"{USERS}{NOWHERE}/", admin, {"name": "Ninguém"})

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No User matches the given query.", "code": "not_found"},
    )


# --- Deactivate and activate -------------------------------------------------


@pytest.fixture
def deactivations() -> Iterator[list[tuple[int, int | None]]]:
    """(user id, actor id) for each user_deactivated signal received."""
    received: list[tuple[int, int | None]] = []

    def receiver(sender: type[User], user: User, actor: User | None, **kwargs: Any) -> None:
        received.append((user.pk, getattr(actor, "pk", None)))

    services.user_deactivated.connect(receiver, weak=False)
    yield received
    services.user_deactivated.disconnect(receiver)


def test_deactivating_logs_the_user_out_everywhere(
    client: Client,
    admin: User,
    supervisor: User,
    deactivations: list[tuple[int, int | None]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    supervisor.availability = User.Availability.ONLINE
    supervisor.save()
    refresh = RefreshToken.for_user(supervisor)
    headers_before = bearer(supervisor)
    assert call(client, "get", USERS, supervisor).status_code == 200

    with django_capture_on_commit_callbacks(execute=True):
        response = call(client, "post", f"{USERS}{supervisor.pk}/deactivate/", admin)
        # Listeners hear of it only once the deactivation is committed.
        assert deactivations == []

    assert deactivations == [(supervisor.pk, admin.pk)]
    assert response.status_code == 200
    body = response.json()
    assert (body["id"], body["is_active"], body["availability"]) == (
        supervisor.pk,
        False,
        "offline",
    )
    supervisor.refresh_from_db()
    assert (supervisor.is_active, supervisor.availability) == (False, "offline")
    assert body["availability_changed_at"] == iso(supervisor.availability_changed_at)
    assert BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    with pytest.raises(TokenError, match="Token is blacklisted"):
        RefreshToken(str(refresh))
    after = client.get(USERS, headers={"Accept-Language": "en", **headers_before})
    assert (after.status_code, after.json()) == (
        401,
        {"detail": "User is inactive", "code": "user_inactive"},
    )


def test_an_agent_cannot_deactivate_anyone(
    client: Client,
    agent: User,
    diego: User,
    deactivations: list[tuple[int, int | None]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    refresh = RefreshToken.for_user(diego)

    with django_capture_on_commit_callbacks(execute=True):
        response = call(client, "post", f"{USERS}{diego.pk}/deactivate/", agent)

    assert (response.status_code, response.json()) == (403, refused(ONLY_ADMINS))
    diego.refresh_from_db()
    assert diego.is_active
    assert not BlacklistedToken.objects.filter(token__jti=refresh["jti"]).exists()
    assert deactivations == []


def test_an_admin_cannot_deactivate_themselves(
    client: Client,
    admin: User,
    deactivations: list[tuple[int, int | None]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        response = call(client, "post", f"{USERS}{admin.pk}/deactivate/", admin)

    assert (response.status_code, response.json()) == (
        403,
        refused("You cannot deactivate yourself."),
    )
    admin.refresh_from_db()
    assert admin.is_active
    assert deactivations == []


def test_activating_brings_the_user_back(
    client: Client, admin: User, supervisor: User, diego: User
) -> None:
    old_refresh = RefreshToken.for_user(supervisor)
    call(client, "post", f"{USERS}{supervisor.pk}/deactivate/", admin)

    response = call(client, "post", f"{USERS}{supervisor.pk}/activate/", admin)

    assert response.status_code == 200
    assert (response.json()["is_active"], response.json()["availability"]) == (True, "offline")
    supervisor.refresh_from_db()
    assert supervisor.is_active
    assert call(client, "get", USERS, supervisor).status_code == 200
    # Coming back does not revive the tokens revoked on the way out.
    with pytest.raises(TokenError, match="Token is blacklisted"):
        RefreshToken(str(old_refresh))

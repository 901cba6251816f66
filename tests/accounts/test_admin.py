"""Django admin for staff users and teams: lists, the deactivate action, adding a user."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.tokens import RefreshToken

from accounts import services
from accounts.models import Team, User

USERS = "/admin/accounts/user/"
TEAMS = "/admin/accounts/team/"
EN = {"Accept-Language": "en"}
STRONG = "Cavalo-Bateria-42"


def staff(username: str, **fields: Any) -> User:
    """A user nobody logs in as with a password: no slow bcrypt round."""
    return User.objects.create_user(username=username, password=None, **fields)


def listed(response: HttpResponse) -> list[str]:
    """The rows of a changelist, as their usernames or team names."""
    assert response.status_code == 200
    return [str(getattr(row, "username", row)) for row in response.context["cl"].result_list]


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


@pytest.fixture
def superuser(db: None) -> User:
    # conftest's admin_client logs in a user with the admin role but neither
    # is_staff nor is_superuser, whom Django admin turns away.
    return User.objects.create_superuser(username="root.ops", password=None)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def agent_client(agent: User) -> Client:
    """An agent logged in to the console."""
    client = Client()
    client.force_login(agent)
    return client


@pytest.fixture
def support(db: None) -> Team:
    return Team.objects.create(name="Suporte técnico", description="Internet caiu")


@pytest.fixture
def billing(db: None) -> Team:
    return Team.objects.create(name="Financeiro", description="Boletos e segunda via")


@pytest.fixture
def crowd(support: Team, billing: Team) -> None:
    staff("ana.souza", name="Ana Souza").teams.add(support)
    staff("pedro.souza", role=User.Role.SUPERVISOR).teams.add(support, billing)
    staff("rita.lima", email="rita@provedor.example.com").teams.add(billing)


@pytest.fixture
def deactivations() -> Iterator[list[tuple[int, int | None]]]:
    """(user id, actor id) for each user_deactivated signal received."""
    received: list[tuple[int, int | None]] = []

    def receiver(sender: type[User], user: User, actor: User | None, **kwargs: Any) -> None:
        received.append((user.pk, getattr(actor, "pk", None)))

    services.user_deactivated.connect(receiver, weak=False)
    yield received
    services.user_deactivated.disconnect(receiver)


def test_console_users_are_sent_to_the_admin_login(agent_client: Client, crowd: None) -> None:
    for url in (USERS, f"{USERS}?q=souza", TEAMS, f"{USERS}add/"):
        response = agent_client.get(url, headers=EN)

        assert (response.status_code, response.headers["Location"]) == (
            302,
            f"/admin/login/?next={url.replace('?', '%3F').replace('=', '%3D')}",
        )


@pytest.mark.parametrize(
    ("query", "usernames"),
    [
        ("", ["ana.souza", "bruno.agente", "pedro.souza", "rita.lima", "root.ops"]),
        ("?q=souza", ["ana.souza", "pedro.souza"]),
        ("?q=Ana Souza", ["ana.souza"]),
        ("?q=rita@provedor", ["rita.lima"]),
        ("?role__exact=agent", ["ana.souza", "bruno.agente", "rita.lima", "root.ops"]),
        ("?role__exact=supervisor", ["pedro.souza"]),
        ("?role__exact=agent&q=lima", ["rita.lima"]),
        ("?is_active__exact=0", []),
    ],
)
def test_user_changelist_searches_and_filters(
    root_client: Client, agent: User, crowd: None, query: str, usernames: list[str]
) -> None:

    response = root_client.get(f"{USERS}{query}", headers=EN)

    assert listed(response) == usernames


def test_user_changelist_filters_by_team(root_client: Client, crowd: None, billing: Team) -> None:
    response = root_client.get(f"{USERS}?teams__id__exact={billing.pk}", headers=EN)

    assert listed(response) == ["pedro.souza", "rita.lima"]
    assert '<td class="field-team_names">Financeiro, Suporte técnico</td>' in response.text


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("", ["Financeiro", "Suporte técnico"]),
        ("?q=suporte", ["Suporte técnico"]),
        ("?q=boleto", ["Financeiro"]),
        ("?q=vendas", []),
    ],
)
def test_team_changelist_searches(
    root_client: Client, crowd: None, query: str, names: list[str]
) -> None:
    response = root_client.get(f"{TEAMS}{query}", headers=EN)

    assert listed(response) == names


def test_team_changelist_sorts_by_member_count(
    root_client: Client, crowd: None, billing: Team
) -> None:
    Team.objects.create(name="Comercial")
    billing.members.add(staff("tiago.alves"))

    # Column 3 after the checkbox: members, most first.
    response = root_client.get(f"{TEAMS}?o=-3", headers=EN)

    assert listed(response) == ["Financeiro", "Suporte técnico", "Comercial"]
    assert '<td class="field-member_count">3</td>' in response.text


def test_deactivate_action_logs_the_chosen_users_out(
    root_client: Client,
    superuser: User,
    crowd: None,
    deactivations: list[tuple[int, int | None]],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    ana, pedro, rita = (
        User.objects.get(username=u) for u in ("ana.souza", "pedro.souza", "rita.lima")
    )
    for user in (ana, pedro, rita):
        user.availability = User.Availability.ONLINE
        user.save()
    tokens = {user.username: RefreshToken.for_user(user) for user in (ana, pedro, rita)}

    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post(
            USERS,
            {"action": "deactivate", "_selected_action": [ana.pk, pedro.pk]},
            headers=EN,
            follow=True,
        )

    assert response.redirect_chain == [(USERS, 302)]
    assert flashed(response) == [("success", "2 users deactivated.")]
    assert sorted(deactivations) == sorted([(ana.pk, superuser.pk), (pedro.pk, superuser.pk)])
    assert list(
        User.objects.order_by("username")
        .filter(username__in=["ana.souza", "pedro.souza", "rita.lima"])
        .values_list("username", "is_active", "availability")
    ) == [
        ("ana.souza", False, "offline"),
        ("pedro.souza", False, "offline"),
        ("rita.lima", True, "online"),
    ]
    for username in ("ana.souza", "pedro.souza"):
        with pytest.raises(TokenError, match="Token is blacklisted"):
            RefreshToken(str(tokens[username]))
    RefreshToken(str(tokens["rita.lima"]))


def test_deactivate_action_spares_the_admin_running_it(
    root_client: Client, superuser: User, crowd: None
) -> None:
    rita = User.objects.get(username="rita.lima")

    response = root_client.post(
        USERS,
        {"action": "deactivate", "_selected_action": [superuser.pk, rita.pk]},
        headers=EN,
        follow=True,
    )

    assert flashed(response) == [
        ("error", "root.ops: You cannot deactivate yourself."),
        ("success", "1 user deactivated."),
    ]
    superuser.refresh_from_db()
    rita.refresh_from_db()
    assert (superuser.is_active, rita.is_active) == (True, False)


def test_an_agent_cannot_run_the_deactivate_action(
    agent_client: Client, crowd: None, deactivations: list[tuple[int, int | None]]
) -> None:
    rita = User.objects.get(username="rita.lima")
    token = RefreshToken.for_user(rita)

    response = agent_client.post(
        USERS, {"action": "deactivate", "_selected_action": [rita.pk]}, headers=EN
    )

    assert (response.status_code, response.headers["Location"]) == (
        302,
        "/admin/login/?next=/admin/accounts/user/",
    )
    rita.refresh_from_db()
    assert rita.is_active
    RefreshToken(str(token))
    assert deactivations == []


def add_user_form(**fields: str) -> dict[str, str]:
    return {
        "username": "mariana",
        "usable_password": "true",
        "password1": STRONG,
        "password2": STRONG,
        "name": "Mariana (Financeiro)",
        "role": "agent",
        "Team_members-TOTAL_FORMS": "0",
        "Team_members-INITIAL_FORMS": "0",
        "Team_members-MIN_NUM_FORMS": "0",
        "Team_members-MAX_NUM_FORMS": "1000",
        **fields,
    }


@pytest.mark.parametrize(
    ("password", "messages"),
    [
        pytest.param(
            "Mariana#2024x",
            [
                "The password is too similar to the username.",
                "This password must not contain your username or name.",
            ],
            id="contains the username",
        ),
        pytest.param(
            "abcdefghijk",
            [
                "This password must mix at least three of: lower case letters, "
                "upper case letters, digits and symbols."
            ],
            id="one class",
        ),
        pytest.param(
            "Xq7#kp2",
            ["This password is too short. It must contain at least 10 characters."],
            id="too short",
        ),
    ],
)
def test_admin_add_user_form_applies_the_password_policy(
    root_client: Client, password: str, messages: list[str]
) -> None:
    response = root_client.post(
        f"{USERS}add/", add_user_form(password1=password, password2=password), headers=EN
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"password2": messages}
    assert not User.objects.filter(username="mariana").exists()


def test_admin_add_user_form_takes_a_strong_password(root_client: Client) -> None:
    response = root_client.post(f"{USERS}add/", add_user_form(), headers=EN)

    user = User.objects.get(username="mariana")
    assert (response.status_code, response.headers["Location"]) == (
        302,
        f"{USERS}{user.pk}/change/",
    )
    assert (user.name, user.role, user.is_active) == ("Mariana (Financeiro)", "agent", True)
    assert user.password.startswith("bcrypt_sha256$")
    assert user.check_password(STRONG)

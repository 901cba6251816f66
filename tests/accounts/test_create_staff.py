"""manage.py create_staff: a staff user from the command line."""

from __future__ import annotations

import io
import sys
from collections.abc import Iterator
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import translation

from accounts.models import Team, User

STRONG = "Cavalo-Bateria-42"


@pytest.fixture(autouse=True)
def _no_password_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as if the operator set no password variable."""
    monkeypatch.delenv("STAFF_PASSWORD", raising=False)
    monkeypatch.delenv("OTHER", raising=False)


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    # The policy's messages come from the active language; commands run in English here.
    with translation.override("en"):
        yield


@pytest.fixture
def support(db: None) -> Team:
    return Team.objects.create(name="Suporte técnico")


@pytest.fixture
def billing(db: None) -> Team:
    return Team.objects.create(name="Financeiro")


def create_staff(*args: str) -> str:
    out = StringIO()
    call_command("create_staff", *args, stdout=out)
    return out.getvalue()


def test_creates_a_supervisor_in_teams(
    monkeypatch: pytest.MonkeyPatch, support: Team, billing: Team
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    output = create_staff(
        "carla.souza",
        "--role=supervisor",
        "--name=Carla (Supervisão)",
        "--email=carla@provedor.example.com",
        "--team=suporte técnico",
        "--team=Financeiro",
    )

    assert output == "Created supervisor 'carla.souza' (Suporte técnico, Financeiro).\n"
    user = User.objects.get()
    assert (user.username, user.role, user.name, user.email, user.is_staff, user.is_active) == (
        "carla.souza",
        "supervisor",
        "Carla (Supervisão)",
        "carla@provedor.example.com",
        False,
        True,
    )
    assert list(user.teams.order_by("name")) == [billing, support]
    assert user.password.startswith("bcrypt_sha256$")
    assert user.check_password(STRONG)


def test_an_agent_without_teams_is_the_default(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    output = create_staff("diego")

    assert output == "Created agent 'diego' (no team).\n"
    user = User.objects.get()
    assert (user.role, user.name, list(user.teams.all())) == ("agent", "", [])


def test_an_admin_can_open_django_admin(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    create_staff("ines", "--role=admin")

    user = User.objects.get()
    assert (user.role, user.is_staff, user.is_superuser) == ("admin", True, False)


def test_an_unknown_team_lists_the_known_ones(
    monkeypatch: pytest.MonkeyPatch, support: Team, billing: Team
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    with pytest.raises(CommandError) as error:
        create_staff("diego", "--team=Suporte técnico", "--team=Vendas")

    assert str(error.value) == "No team named 'Vendas' (teams: Financeiro, Suporte técnico)."
    assert not User.objects.exists()


def test_an_unknown_team_when_there_are_none(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    with pytest.raises(CommandError) as error:
        create_staff("diego", "--team=Vendas")

    assert str(error.value) == "No team named 'Vendas' (teams: none yet)."
    assert not User.objects.exists()


def test_an_existing_username_is_refused_whatever_its_case(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    existing = User.objects.create_user(username="diego.agente", password=None)
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    with pytest.raises(CommandError) as error:
        create_staff("Diego.Agente", "--role=admin")

    assert str(error.value) == "A user named 'Diego.Agente' exists already."
    assert list(User.objects.all()) == [existing]
    existing.refresh_from_db()
    assert existing.role == "agent"


@pytest.mark.parametrize(
    ("password", "reasons"),
    [
        pytest.param(
            "Xq7#kp2",
            "This password is too short. It must contain at least 10 characters.",
            id="too short",
        ),
        pytest.param(
            "abcdefghijk",
            "This password must mix at least three of: lower case letters, upper case letters, "
            "digits and symbols.",
            id="one class",
        ),
        pytest.param(
            "Mariana#2024x",
            "The password is too similar to the username. "
            "This password must not contain your username or name.",
            id="contains the username",
        ),
    ],
)
def test_a_weak_password_creates_nobody(
    monkeypatch: pytest.MonkeyPatch, support: Team, password: str, reasons: str
) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", password)

    with pytest.raises(CommandError) as error:
        create_staff("mariana", "--team=Suporte técnico")

    assert str(error.value) == f"Password refused: {reasons}"
    assert not User.objects.exists()
    assert not support.members.exists()


@pytest.mark.parametrize(
    ("args", "variable"),
    [([], "STAFF_PASSWORD"), (["--password-env=OTHER"], "OTHER")],
)
def test_no_password_and_no_terminal_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, db: None, args: list[str], variable: str
) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    if variable == "OTHER":
        # The default variable is not read when another one is named.
        monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    with pytest.raises(CommandError) as error:
        create_staff("diego", *args)

    assert str(error.value) == (f"No password: set {variable} or run on a terminal to be asked.")
    assert not User.objects.exists()


def test_the_password_can_come_from_another_variable(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    monkeypatch.setenv("OTHER", STRONG)

    output = create_staff("diego", "--password-env=OTHER")

    assert output == "Created agent 'diego' (no team).\n"
    assert User.objects.get().check_password(STRONG)


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_on_a_terminal_the_password_is_asked_twice(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    answers = iter([STRONG, STRONG])
    prompts: list[str] = []

    def getpass(prompt: str) -> str:
        prompts.append(prompt)
        return next(answers)

    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    monkeypatch.setattr("getpass.getpass", getpass)

    output = create_staff("diego")

    assert prompts == ["Password: ", "Password (again): "]
    assert output == "Created agent 'diego' (no team).\n"
    assert User.objects.get().check_password(STRONG)


def test_on_a_terminal_two_different_answers_create_nobody(
    monkeypatch: pytest.MonkeyPatch, db: None
) -> None:
    answers = iter([STRONG, "Cavalo-Bateria-43"])
    monkeypatch.setattr(sys, "stdin", FakeTerminal())
    monkeypatch.setattr("getpass.getpass", lambda prompt: next(answers))

    with pytest.raises(CommandError) as error:
        create_staff("diego")

    assert str(error.value) == "The two passwords differ."
    assert not User.objects.exists()


def test_an_unknown_role_is_refused(monkeypatch: pytest.MonkeyPatch, db: None) -> None:
    monkeypatch.setenv("STAFF_PASSWORD", STRONG)

    with pytest.raises(CommandError) as error:
        create_staff("diego", "--role=boss")

    # argparse quotes the choices or not depending on the Python version.
    assert str(error.value).replace("'", "") == (
        "Error: argument --role: invalid choice: boss (choose from agent, supervisor, admin)"
    )
    assert not User.objects.exists()

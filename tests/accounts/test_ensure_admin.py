from __future__ import annotations

import re
from io import StringIO

import pytest
from django.contrib.auth import authenticate
from django.core.management import call_command
from django.core.management.base import CommandError
from pytest_django.fixtures import Settings

from accounts.models import User

BANNER = "=" * 60
DEMO_ADMIN = re.compile(
    rf"{BANNER}\n"
    r"Demo admin created\. Save these, they are shown only once:\n"
    r"  username: admin\n"
    r"  password: (?P<password>\S+)\n"
    rf"{BANNER}\n"
)


@pytest.fixture(autouse=True)
def _no_superuser_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts as if the operator set none of the variables."""
    for name in (
        "DJANGO_SUPERUSER_USERNAME",
        "DJANGO_SUPERUSER_PASSWORD",
        "DJANGO_SUPERUSER_EMAIL",
    ):
        monkeypatch.delenv(name, raising=False)


def ensure_admin() -> str:
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    return out.getvalue()


def test_empty_database_gets_an_admin_whose_printed_password_works(db: None) -> None:
    output = ensure_admin()

    match = DEMO_ADMIN.fullmatch(output)
    assert match, output
    password = match["password"]
    admin = User.objects.get()
    assert (admin.username, admin.role, admin.is_superuser, admin.is_staff) == (
        "admin",
        User.Role.ADMIN,
        True,
        True,
    )
    assert authenticate(username="admin", password=password) == admin
    assert output.count(password) == 1


def test_second_run_creates_nothing_and_shows_no_password(db: None) -> None:
    first = DEMO_ADMIN.fullmatch(ensure_admin())
    assert first

    second = ensure_admin()

    assert second == "An admin user exists; log in with it.\n"
    assert first["password"] not in second
    assert User.objects.count() == 1


def test_each_fresh_install_gets_its_own_password(db: None) -> None:
    first = DEMO_ADMIN.fullmatch(ensure_admin())
    assert first
    User.objects.all().delete()

    second = DEMO_ADMIN.fullmatch(ensure_admin())

    assert second
    assert first["password"] != second["password"]


def test_an_existing_superuser_means_no_demo_admin(db: None) -> None:
    User.objects.create_superuser(username="root.ops", password="Senha-Forte-123")

    assert ensure_admin() == "An admin user exists; log in with it.\n"
    assert list(User.objects.values_list("username", flat=True)) == ["root.ops"]


def test_the_operator_can_choose_the_admin(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "maria.souza")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Cavalo-Bateria-42")
    monkeypatch.setenv("DJANGO_SUPERUSER_EMAIL", "maria@provedor.example.com")

    output = ensure_admin()

    assert output == "Created admin user 'maria.souza'.\n"
    admin = User.objects.get()
    assert (admin.username, admin.email, admin.role, admin.is_superuser, admin.is_staff) == (
        "maria.souza",
        "maria@provedor.example.com",
        User.Role.ADMIN,
        True,
        True,
    )
    assert authenticate(username="maria.souza", password="Cavalo-Bateria-42") == admin


def test_the_chosen_admin_is_created_only_once(db: None, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "maria.souza")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Cavalo-Bateria-42")
    ensure_admin()
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "Outra-Senha-Forte-77")

    output = ensure_admin()

    assert output == "Admin user 'maria.souza' exists.\n"
    assert User.objects.count() == 1
    assert authenticate(username="maria.souza", password="Cavalo-Bateria-42") is not None


def test_a_weak_password_is_refused_and_nobody_is_created(
    db: None, monkeypatch: pytest.MonkeyPatch, settings: Settings
) -> None:
    settings.LANGUAGE_CODE = "pt-br"
    monkeypatch.setenv("DJANGO_SUPERUSER_USERNAME", "maria.souza")
    monkeypatch.setenv("DJANGO_SUPERUSER_PASSWORD", "123")

    with pytest.raises(CommandError) as error:
        ensure_admin()

    assert str(error.value) == (
        "DJANGO_SUPERUSER_PASSWORD is too weak: "
        "Esta senha é muito curta. Ela precisa conter pelo menos 10 caracteres. "
        "Esta senha é muito comum. "
        "Esta senha é inteiramente numérica. "
        "Esta senha deve combinar pelo menos três destes: letras minúsculas, letras maiúsculas, "
        "números e símbolos."
    )
    assert not User.objects.exists()


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DJANGO_SUPERUSER_USERNAME", "maria.souza"),
        ("DJANGO_SUPERUSER_PASSWORD", "Cavalo-Bateria-42"),
    ],
)
def test_only_one_of_the_two_variables_is_refused(
    db: None, monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)

    with pytest.raises(CommandError) as error:
        ensure_admin()

    assert str(error.value) == (
        "Set both DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD, or neither."
    )
    assert not User.objects.exists()


def test_an_agent_called_admin_keeps_their_account(db: None) -> None:
    agent = User.objects.create_user(username="admin", password="Senha-Forte-123")

    output = ensure_admin()

    assert "  username: admin2\n" in output
    password = re.search(r"password: (\S+)", output)[1]  # type: ignore[index]
    assert authenticate(username="admin2", password=password).is_superuser  # type: ignore[union-attr]
    agent.refresh_from_db()
    assert (agent.is_superuser, agent.role, agent.check_password("Senha-Forte-123")) == (
        False,
        User.Role.AGENT,
        True,
    )

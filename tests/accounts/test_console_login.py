"""The console's login and logout pages, with the same failed-login limit as the API."""

from __future__ import annotations

from django.test import Client

from accounts.models import User

PASSWORD = "Senha-Forte-123"


def test_console_home_requires_login(client: Client) -> None:
    response = client.get("/console/")

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/console/"


def test_login_page_speaks_portuguese_by_default(client: Client, db: None) -> None:
    page = client.get("/login/").content.decode()

    assert '<html lang="pt-br">' in page
    assert "<h1>Entrar</h1>" in page
    assert ">Usuário</label>" in page
    assert ">Senha</label>" in page


def test_login_page_speaks_english_on_request(client: Client, db: None) -> None:
    page = client.get("/login/", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<html lang="en">' in page
    assert "<h1>Log in</h1>" in page


def test_language_switch_sticks(client: Client, db: None) -> None:
    response = client.post("/i18n/setlang/", {"language": "en", "next": "/login/"})

    assert response.status_code == 302
    assert "<h1>Log in</h1>" in client.get("/login/").content.decode()


def test_login_leads_to_the_console(client: Client, agent: User) -> None:
    response = client.post("/login/", {"username": agent.username, "password": PASSWORD})

    assert response.status_code == 302
    assert response["Location"] == "/console/"
    page = client.get("/console/").content.decode()
    assert agent.display_name in page


def test_wrong_password_says_so(client: Client, agent: User) -> None:
    response = client.post("/login/", {"username": agent.username, "password": "errada"})

    assert response.status_code == 200
    assert "Usuário ou senha incorretos." in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_sixth_attempt_is_refused_with_a_clear_message(client: Client, agent: User) -> None:
    for _ in range(5):
        assert (
            client.post("/login/", {"username": agent.username, "password": "x"}).status_code == 200
        )

    response = client.post("/login/", {"username": agent.username, "password": PASSWORD})

    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 60
    assert "Muitas tentativas de login sem sucesso. Tente novamente em" in response.content.decode()
    assert "_auth_user_id" not in client.session


def test_failed_logins_on_the_api_count_for_the_console_too(client: Client, agent: User) -> None:
    for _ in range(5):
        client.post(
            "/api/v1/auth/login",
            {"username": agent.username, "password": "x"},
            content_type="application/json",
        )

    response = client.post("/login/", {"username": agent.username, "password": PASSWORD})

    assert response.status_code == 429


def test_logout_ends_the_session(client: Client, agent: User) -> None:
    client.force_login(agent)

    response = client.post("/logout/")

    assert response.status_code == 302
    assert response["Location"] == "/login/"
    assert client.get("/console/").status_code == 302


def test_logout_by_a_plain_link_is_refused(client: Client, agent: User) -> None:
    # A GET would let any page log an agent out with an <img src="/logout/">.
    client.force_login(agent)

    assert client.get("/logout/").status_code == 405
    assert client.get("/console/").status_code == 200

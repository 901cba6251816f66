"""POST /api/v1/auth/login, /refresh, /logout and GET + PATCH /auth/me.

Our own messages are asserted in English (Accept-Language: en): their pt-BR
text is still being written. DRF's and simplejwt's come back in English too.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import jwt
import pytest
from django.conf import settings
from django.contrib.auth.hashers import make_password
from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts import services
from accounts.models import User

PASSWORD = "Senha-Forte-123"  # the conftest users' password
NEW_PASSWORD = "Outra-Senha-Forte-456"
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}
WRONG_CREDENTIALS = {"detail": "Wrong username or password.", "code": "invalid_credentials"}
ACCESS_LIFETIME = 15 * 60
REFRESH_LIFETIME = 24 * 60 * 60


def post(client: Client, path: str, data: dict[str, Any], **extra: Any) -> HttpResponse:
    return client.post(path, data, content_type="application/json", **{**EN, **extra})


def login(client: Client, username: str, password: str, **extra: Any) -> HttpResponse:
    return post(client, "/api/v1/auth/login", {"username": username, "password": password}, **extra)


def refresh(client: Client, token: str) -> HttpResponse:
    return post(client, "/api/v1/auth/refresh", {"refresh": token})


def me(client: Client, access: str) -> HttpResponse:
    return client.get("/api/v1/auth/me", HTTP_AUTHORIZATION=f"Bearer {access}", **EN)


def patch_me(client: Client, access: str, data: dict[str, Any]) -> HttpResponse:
    return client.patch(
        "/api/v1/auth/me",
        data,
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {access}",
        **EN,
    )


def claims_of(token: str) -> dict[str, Any]:
    """The token's claims, checked the way any other service would check them."""
    return jwt.decode(
        token,
        settings.SECRET_KEY,
        algorithms=["HS256"],
        audience=settings.SIMPLE_JWT["AUDIENCE"],
        issuer=settings.SIMPLE_JWT["ISSUER"],
    )


def forge(claims: dict[str, Any], *, key: str | None = None, algorithm: str = "HS256") -> str:
    return jwt.encode(claims, settings.SECRET_KEY if key is None else key, algorithm=algorithm)


def timestamp(value: datetime | None) -> str | None:
    """A datetime as the API writes it: ISO 8601 in the configured time zone."""
    return None if value is None else timezone.localtime(value).isoformat()


def user_body(user: User) -> dict[str, Any]:
    user.refresh_from_db()
    return {
        "id": user.pk,
        "username": user.username,
        "name": user.display_name,
        "email": user.email,
        "role": user.role,
        "availability": user.availability,
        "availability_changed_at": timestamp(user.availability_changed_at),
        "teams": [{"id": team.pk, "name": team.name} for team in user.teams.order_by("name")],
        "is_active": user.is_active,
        "last_login": timestamp(user.last_login),
        "date_joined": timestamp(user.date_joined),
    }


def invalid_token(message: str) -> dict[str, Any]:
    return {
        "detail": "Given token not valid for any token type",
        "code": "token_not_valid",
        "messages": [{"token_class": "AccessToken", "token_type": "access", "message": message}],
    }


def invalid_input(errors: dict[str, list[str]]) -> dict[str, Any]:
    return {"detail": "Invalid input.", "code": "invalid", "errors": errors}


@pytest.fixture
def tokens(agent: User) -> dict[str, str]:
    response = login(Client(), agent.username, PASSWORD)
    assert response.status_code == 200, response.content
    return {"access": response.json()["access"], "refresh": response.json()["refresh"]}


# --- Login -----------------------------------------------------------------------


def test_login_returns_a_token_pair_and_the_user(client: Client, db: None) -> None:
    bia = services.user_create(
        username="bia.suporte",
        password=PASSWORD,
        role=User.Role.SUPERVISOR,
        name="Bia (Suporte)",
        email="bia@provedor.example",
    )
    support = services.team_create(name="Suporte técnico", members=[bia])
    billing = services.team_create(name="Financeiro", members=[bia])

    response = login(client, "bia.suporte", PASSWORD)

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh", "user"}
    bia.refresh_from_db()
    assert body["user"] == {
        "id": bia.pk,
        "username": "bia.suporte",
        "name": "Bia (Suporte)",
        "email": "bia@provedor.example",
        "role": "supervisor",
        "availability": "offline",
        "availability_changed_at": None,
        "teams": [
            {"id": billing.pk, "name": "Financeiro"},
            {"id": support.pk, "name": "Suporte técnico"},
        ],
        "is_active": True,
        "last_login": timestamp(bia.last_login),
        "date_joined": timestamp(bia.date_joined),
    }
    assert me(client, body["access"]).json() == body["user"]


@pytest.mark.parametrize("role", [User.Role.AGENT, User.Role.SUPERVISOR, User.Role.ADMIN])
def test_access_token_carries_audience_issuer_role_and_a_15_minute_life(
    client: Client, db: None, role: str
) -> None:
    user = services.user_create(username="caio.tecnico", password=PASSWORD, role=role)

    body = login(client, "caio.tecnico", PASSWORD).json()

    access = claims_of(body["access"])
    assert set(access) == {
        "aud",
        "iss",
        "token_type",
        "user_id",
        "role",
        "jti",
        "iat",
        "exp",
        "hash_password",
    }
    assert (access["aud"], access["iss"]) == ("ispsupport", "ispsupport")
    assert (access["token_type"], access["user_id"], access["role"]) == (
        "access",
        str(user.pk),
        role,
    )
    assert abs(access["iat"] - time.time()) < 60
    assert len(access["jti"]) == 32
    refresh_claims = claims_of(body["refresh"])
    assert (refresh_claims["token_type"], refresh_claims["role"]) == ("refresh", role)
    assert refresh_claims["exp"] - refresh_claims["iat"] == REFRESH_LIFETIME
    assert_pair_lifetimes(access, refresh_claims)
    assert refresh_claims["jti"] != access["jti"]


def assert_pair_lifetimes(access: dict, refresh_claims: dict) -> None:
    # simplejwt dates the access token's expiry from the refresh token's
    # creation, a moment before the access token's own "iat": across a second
    # boundary exp - iat is 899, so the lifetime is checked against the pair.
    assert access["exp"] == refresh_claims["iat"] + ACCESS_LIFETIME
    assert 0 <= access["iat"] - refresh_claims["iat"] <= 1


def test_login_sets_last_login(client: Client, agent: User) -> None:
    assert agent.last_login is None
    before = timezone.now()

    login(client, agent.username, PASSWORD)

    agent.refresh_from_db()
    assert agent.last_login is not None
    assert before <= agent.last_login <= timezone.now()


def _deactivated(agent: User) -> str:
    services.user_deactivate(user=agent, actor=None)
    return agent.username


@pytest.mark.parametrize(
    ("case", "password"),
    [
        ("wrong password", "Senha-Errada-123"),
        ("unknown user", PASSWORD),
        ("inactive user", PASSWORD),
    ],
)
def test_bad_credentials_get_one_401_that_tells_nothing_apart(
    client: Client, agent: User, case: str, password: str
) -> None:
    username = {
        "wrong password": lambda: agent.username,
        "unknown user": lambda: "ninguem",
        "inactive user": lambda: _deactivated(agent),
    }[case]()

    response = login(client, username, password)

    assert response.status_code == 401
    assert response.json() == WRONG_CREDENTIALS
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert not OutstandingToken.objects.exists()
    agent.refresh_from_db()
    assert agent.last_login is None


def test_login_error_is_in_the_default_language_without_accept_language(
    client: Client, agent: User
) -> None:
    response = client.post(
        "/api/v1/auth/login",
        {"username": agent.username, "password": "Senha-Errada-123"},
        content_type="application/json",
    )

    assert response.status_code == 401
    assert response["Content-Language"] == "pt-br"
    assert response.json()["code"] == "invalid_credentials"
    assert response.json()["detail"] not in ("", WRONG_CREDENTIALS["detail"])


def test_login_without_fields_names_each_missing_field(client: Client, db: None) -> None:
    response = post(client, "/api/v1/auth/login", {})

    assert response.status_code == 400
    assert response.json() == invalid_input(
        {"username": ["This field is required."], "password": ["This field is required."]}
    )


def test_login_with_a_blank_password_is_a_field_error(client: Client, agent: User) -> None:
    response = login(client, agent.username, "")

    assert response.status_code == 400
    assert response.json() == invalid_input({"password": ["This field may not be blank."]})


def test_login_upgrades_a_pbkdf2_hash_to_bcrypt_with_12_rounds(client: Client, agent: User) -> None:
    User.objects.filter(pk=agent.pk).update(
        password=make_password(PASSWORD, hasher="pbkdf2_sha256")
    )

    response = login(client, agent.username, PASSWORD)

    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.password.startswith("bcrypt_sha256$$2b$12$")
    assert agent.check_password(PASSWORD)
    # The tokens were minted from the upgraded hash, so they work at once.
    assert me(client, response.json()["access"]).status_code == 200
    assert refresh(client, response.json()["refresh"]).status_code == 200


# --- The access token on GET /auth/me ----------------------------------------------


def test_valid_access_token_reads_me(client: Client, agent: User, tokens: dict[str, str]) -> None:
    response = me(client, tokens["access"])

    assert response.status_code == 200
    assert response.json() == user_body(agent)


def test_me_without_a_token_is_401(client: Client, db: None) -> None:
    response = client.get("/api/v1/auth/me", **EN)

    assert response.status_code == 401
    assert response.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'


def _wrong_audience(claims: dict[str, Any]) -> str:
    return forge({**claims, "aud": "erp-do-provedor"})


def _wrong_issuer(claims: dict[str, Any]) -> str:
    return forge({**claims, "iss": "https://outro-sistema.example"})


def _no_audience(claims: dict[str, Any]) -> str:
    return forge({k: v for k, v in claims.items() if k != "aud"})


def _alg_none(claims: dict[str, Any]) -> str:
    return forge(claims, key="", algorithm="none")


def _other_key(claims: dict[str, Any]) -> str:
    return forge(claims, key="another-secret-key-of-the-same-length-0123456789abcdef")


def _expired(claims: dict[str, Any]) -> str:
    now = int(time.time())
    return forge({**claims, "iat": now - ACCESS_LIFETIME - 60, "exp": now - 60})


def _refresh_type(claims: dict[str, Any]) -> str:
    return forge({**claims, "token_type": "refresh"})


def _garbage(claims: dict[str, Any]) -> str:
    return "not.a.token"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (_wrong_audience, "Token is invalid"),
        (_wrong_issuer, "Token is invalid"),
        (_no_audience, "Token is invalid"),
        (_alg_none, "Token is invalid"),
        (_other_key, "Token is invalid"),
        (_expired, "Token is expired"),
        (_refresh_type, "Token has wrong type"),
        (_garbage, "Token is invalid"),
    ],
    ids=lambda value: getattr(value, "__name__", "").strip("_") or None,
)
def test_a_bad_access_token_is_401(
    client: Client, tokens: dict[str, str], make: Any, message: str
) -> None:
    bad = make(claims_of(tokens["access"]))

    response = me(client, bad)

    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"] == 'Bearer realm="api"'
    assert response.json() == invalid_token(message)


def test_access_token_stops_working_when_the_user_is_deactivated(
    client: Client, agent: User, admin: User, tokens: dict[str, str]
) -> None:
    services.user_deactivate(user=agent, actor=admin)

    response = me(client, tokens["access"])

    assert response.status_code == 401
    assert response.json() == {"detail": "User is inactive", "code": "user_inactive"}


def test_access_token_stops_working_after_a_password_change(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    services.user_set_password(user=agent, password=NEW_PASSWORD)

    response = me(client, tokens["access"])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The user's password has been changed.",
        "code": "password_changed",
    }


def test_access_token_of_a_deleted_user_is_401(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    agent.delete()

    response = me(client, tokens["access"])

    assert response.status_code == 401
    assert response.json() == {"detail": "User not found", "code": "user_not_found"}


# --- Refresh -----------------------------------------------------------------------


def test_refresh_rotates_the_pair_and_blacklists_the_old_refresh_token(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    response = refresh(client, tokens["refresh"])

    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"access", "refresh"}
    assert body["access"] != tokens["access"]
    assert body["refresh"] != tokens["refresh"]
    new_access, new_refresh = claims_of(body["access"]), claims_of(body["refresh"])
    assert (new_access["token_type"], new_access["user_id"], new_access["role"]) == (
        "access",
        str(agent.pk),
        "agent",
    )
    assert_pair_lifetimes(new_access, new_refresh)
    assert new_refresh["jti"] != claims_of(tokens["refresh"])["jti"]
    assert me(client, body["access"]).status_code == 200

    again = refresh(client, tokens["refresh"])

    assert again.status_code == 401
    assert again.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}
    assert refresh(client, body["refresh"]).status_code == 200


def test_refresh_for_a_user_deactivated_by_the_service_is_401(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    services.user_deactivate(user=agent, actor=None)

    response = refresh(client, tokens["refresh"])

    assert response.status_code == 401
    assert response.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


def test_refresh_for_a_user_unticked_as_active_elsewhere_is_401(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    # Like the "active" box in Django admin: nothing is blacklisted.
    User.objects.filter(pk=agent.pk).update(is_active=False)

    response = refresh(client, tokens["refresh"])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "No active account found for the given token.",
        "code": "no_active_account",
    }


def test_refresh_for_a_deleted_user_is_401_not_500(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    agent.delete()

    response = refresh(client, tokens["refresh"])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "No active account found for the given token.",
        "code": "no_active_account",
    }


def test_refresh_after_a_password_change_is_401(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    services.user_set_password(user=agent, password=NEW_PASSWORD)

    response = refresh(client, tokens["refresh"])

    assert response.status_code == 401
    assert response.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


def test_refresh_after_a_password_change_outside_the_services_is_401(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    # E.g. Django admin's password form: the token carries the old hash's digest.
    agent.set_password(NEW_PASSWORD)
    agent.save(update_fields=["password"])

    response = refresh(client, tokens["refresh"])

    assert response.status_code == 401
    assert response.json() == {
        "detail": "The user's password has been changed.",
        "code": "password_changed",
    }
    assert not BlacklistedToken.objects.exists()


@pytest.mark.parametrize(
    "make", [_wrong_audience, _wrong_issuer, _other_key, _alg_none, _expired, _garbage]
)
def test_refresh_with_a_bad_token_is_401(client: Client, tokens: dict[str, str], make: Any) -> None:
    response = refresh(client, make(claims_of(tokens["refresh"])))

    assert response.status_code == 401
    assert response.json()["code"] == "token_not_valid"
    assert response.json()["detail"] in ("Token is invalid", "Token is expired")


def test_an_access_token_cannot_be_used_to_refresh(client: Client, tokens: dict[str, str]) -> None:
    response = refresh(client, tokens["access"])

    assert response.status_code == 401
    assert response.json() == {"detail": "Token has wrong type", "code": "token_not_valid"}


# --- Logout ------------------------------------------------------------------------


def test_logout_blacklists_the_refresh_token(client: Client, tokens: dict[str, str]) -> None:
    response = post(client, "/api/v1/auth/logout", {"refresh": tokens["refresh"]})

    assert response.status_code == 200
    assert response.json() == {"detail": "Logged out."}
    assert BlacklistedToken.objects.filter(token__jti=claims_of(tokens["refresh"])["jti"]).exists()
    again = refresh(client, tokens["refresh"])
    assert again.status_code == 401
    assert again.json() == {"detail": "Token is blacklisted", "code": "token_not_valid"}


def test_logout_message_is_in_the_default_language_without_accept_language(
    client: Client, tokens: dict[str, str]
) -> None:
    response = client.post(
        "/api/v1/auth/logout", {"refresh": tokens["refresh"]}, content_type="application/json"
    )

    assert response.status_code == 200
    assert response.json()["detail"] not in ("", "Logged out.")


@pytest.mark.parametrize("token", ["garbage", "a.b.c", ""])
def test_logout_with_a_bad_token_is_401_json(client: Client, db: None, token: str) -> None:
    response = post(client, "/api/v1/auth/logout", {"refresh": token} if token else {})

    if token:
        assert response.status_code == 401
        assert response.json() == {
            "detail": "Token is invalid or expired.",
            "code": "token_not_valid",
        }
    else:
        assert response.status_code == 400
        assert response.json() == invalid_input({"refresh": ["This field is required."]})
    assert not BlacklistedToken.objects.exists()


# --- PATCH /auth/me ----------------------------------------------------------------


def test_patch_me_changes_name_and_availability(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    before = timezone.now()

    response = patch_me(client, tokens["access"], {"name": "Bruno (N2)", "availability": "online"})

    assert response.status_code == 200
    agent.refresh_from_db()
    assert (agent.name, agent.availability) == ("Bruno (N2)", "online")
    assert agent.availability_changed_at is not None
    assert before <= agent.availability_changed_at <= timezone.now()
    assert response.json() == user_body(agent)
    assert response.json()["name"] == "Bruno (N2)"


def test_patch_me_with_the_same_availability_keeps_its_timestamp(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    services.user_update(user=agent, actor=agent, availability="away")
    changed_at = agent.availability_changed_at

    response = patch_me(client, tokens["access"], {"availability": "away"})

    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.availability_changed_at == changed_at


def test_patch_me_refuses_an_unknown_availability(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    response = patch_me(client, tokens["access"], {"availability": "busy"})

    assert response.status_code == 400
    assert response.json() == invalid_input({"availability": ['"busy" is not a valid choice.']})
    agent.refresh_from_db()
    assert agent.availability == "offline"


def _assert_nothing_changed(client: Client, agent: User, tokens: dict[str, str]) -> None:
    agent.refresh_from_db()
    assert agent.name == ""
    assert agent.check_password(PASSWORD)
    assert not BlacklistedToken.objects.exists()
    assert me(client, tokens["access"]).status_code == 200


def test_new_password_without_the_old_one_is_a_field_error(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    response = patch_me(client, tokens["access"], {"name": "Bruno", "new_password": NEW_PASSWORD})

    assert response.status_code == 400
    assert response.json() == invalid_input(
        {"old_password": ["Give your current password to change it."]}
    )
    _assert_nothing_changed(client, agent, tokens)


def test_old_password_message_is_in_the_default_language_without_accept_language(
    client: Client, tokens: dict[str, str]
) -> None:
    response = client.patch(
        "/api/v1/auth/me",
        {"new_password": NEW_PASSWORD},
        content_type="application/json",
        HTTP_AUTHORIZATION=f"Bearer {tokens['access']}",
    )

    assert response.status_code == 400
    [message] = response.json()["errors"]["old_password"]
    assert message not in ("", "Give your current password to change it.")


def test_wrong_old_password_is_a_field_error_and_changes_nothing(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    response = patch_me(
        client,
        tokens["access"],
        {"name": "Bruno", "old_password": "Senha-Errada-123", "new_password": NEW_PASSWORD},
    )

    assert response.status_code == 400
    assert response.json() == invalid_input(
        {"old_password": ["Your old password was entered incorrectly."]}
    )
    _assert_nothing_changed(client, agent, tokens)


@pytest.mark.parametrize("weak", ["curta1A", "1234567890123", "bruno.agente-Forte1"])
def test_weak_new_password_is_a_field_error_and_changes_nothing_not_even_the_name(
    client: Client, agent: User, tokens: dict[str, str], weak: str
) -> None:
    response = patch_me(
        client,
        tokens["access"],
        {"name": "Bruno", "old_password": PASSWORD, "new_password": weak},
    )

    assert response.status_code == 400
    body = response.json()
    # The wording belongs to the password validators; here only where it lands.
    assert (body["detail"], body["code"], list(body["errors"])) == (
        "Invalid input.",
        "invalid",
        ["new_password"],
    )
    assert body["errors"]["new_password"]
    assert all(isinstance(message, str) and message for message in body["errors"]["new_password"])
    _assert_nothing_changed(client, agent, tokens)


def test_short_new_password_says_how_long_it_must_be(
    client: Client, tokens: dict[str, str]
) -> None:
    response = patch_me(
        client, tokens["access"], {"old_password": PASSWORD, "new_password": "curta1A"}
    )

    assert (
        "This password is too short. It must contain at least 10 characters."
        in response.json()["errors"]["new_password"]
    )


def test_password_change_by_token_hands_out_new_tokens_and_revokes_the_old_ones(
    client: Client, agent: User, tokens: dict[str, str]
) -> None:
    other_device = login(Client(), agent.username, PASSWORD).json()

    response = patch_me(
        client, tokens["access"], {"old_password": PASSWORD, "new_password": NEW_PASSWORD}
    )

    assert response.status_code == 200
    body = response.json()
    agent.refresh_from_db()
    assert agent.check_password(NEW_PASSWORD)
    assert body == {**user_body(agent), "access": body["access"], "refresh": body["refresh"]}
    assert me(client, body["access"]).status_code == 200
    for old in (tokens, other_device):
        assert me(client, old["access"]).json()["code"] == "password_changed"
        assert refresh(client, old["refresh"]).json() == {
            "detail": "Token is blacklisted",
            "code": "token_not_valid",
        }
    assert refresh(client, body["refresh"]).status_code == 200
    assert login(client, agent.username, PASSWORD).status_code == 401
    assert login(client, agent.username, NEW_PASSWORD).status_code == 200


def console_client(user: User) -> tuple[Client, str]:
    """A logged-in console browser that enforces CSRF, and its CSRF token."""
    browser = Client(enforce_csrf_checks=True)
    assert browser.get("/login/").status_code == 200
    csrf_token = browser.cookies["csrftoken"].value
    browser.force_login(user)
    return browser, csrf_token


def test_password_change_in_the_console_keeps_this_session_and_ends_the_others(
    agent: User,
) -> None:
    here, csrf_token = console_client(agent)
    elsewhere, _ = console_client(agent)
    assert elsewhere.get("/api/v1/auth/me", **EN).status_code == 200

    response = here.patch(
        "/api/v1/auth/me",
        {"old_password": PASSWORD, "new_password": NEW_PASSWORD},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf_token,
        **EN,
    )

    assert response.status_code == 200
    body = response.json()
    assert body == {**user_body(agent), "access": body["access"], "refresh": body["refresh"]}
    assert here.get("/api/v1/auth/me", **EN).json() == user_body(agent)
    gone = elsewhere.get("/api/v1/auth/me", **EN)
    assert gone.status_code == 401
    assert gone.json() == {
        "detail": "Authentication credentials were not provided.",
        "code": "not_authenticated",
    }
    console = elsewhere.get("/console/")
    assert console.status_code == 302
    assert console["Location"].startswith("/login/")


def test_api_call_by_session_without_csrf_token_is_403(agent: User) -> None:
    browser, _ = console_client(agent)

    response = browser.patch(
        "/api/v1/auth/me", {"name": "Bruno"}, content_type="application/json", **EN
    )

    assert response.status_code == 403
    assert response.json() == {
        "detail": "CSRF Failed: CSRF token missing.",
        "code": "permission_denied",
    }
    agent.refresh_from_db()
    assert agent.name == ""
    # Reading needs no CSRF token.
    assert browser.get("/api/v1/auth/me", **EN).status_code == 200


def test_patch_me_by_session_with_csrf_token_changes_the_name(agent: User) -> None:
    browser, csrf_token = console_client(agent)

    response = browser.patch(
        "/api/v1/auth/me",
        {"name": "Bruno (N2)"},
        content_type="application/json",
        HTTP_X_CSRFTOKEN=csrf_token,
        **EN,
    )

    assert response.status_code == 200
    agent.refresh_from_db()
    assert agent.name == "Bruno (N2)"
    assert response.json() == user_body(agent)

"""Admin → WhatsApp numbers → "Check connection": the real Graph client asks
the fake Graph API about each number and the admin reads what it found."""

from __future__ import annotations

from typing import Any

import pytest
from django.http import HttpResponse
from django.test import Client

from accounts import services as accounts_services
from accounts.models import User
from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp import transport
from whatsapp.models import WhatsAppAccount

CHANGELIST = "/admin/whatsapp/whatsappaccount/"
EN = {"Accept-Language": "en"}
FIELDS = "display_phone_number,verified_name,quality_rating,code_verification_status"
NUMBER = {
    "verified_name": "Fibra Rápida Telecom",
    "display_phone_number": "+55 11 4000-1234",
    "quality_rating": "GREEN",
    "code_verification_status": "VERIFIED",
    "id": PHONE_NUMBER_ID,
}


@pytest.fixture
def admin_client(db: None) -> Client:
    """An admin as the users API makes one: the admin role, no superuser bit."""
    user = accounts_services.user_create(
        username="ana.admin", password="Senha-Forte-123", role=User.Role.ADMIN
    )
    client = Client(headers=EN)
    client.force_login(user)
    return client


def number_path(settings: Any, phone_number_id: str = PHONE_NUMBER_ID) -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{phone_number_id}"


def check(client: Client, *accounts: WhatsAppAccount) -> HttpResponse:
    return client.post(
        CHANGELIST,
        {"action": "check_connection", "_selected_action": [a.pk for a in accounts]},
        follow=True,
    )


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    assert response.status_code == 200
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def test_a_good_number_reports_its_verified_name_and_quality(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.reply("GET", number_path(settings), NUMBER)

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "success",
            "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), "
            "quality GREEN",
        )
    ]
    [request] = fake_graph.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        number_path(settings),
        {"fields": [FIELDS]},
    )
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"
    assert request.body == b""
    account.refresh_from_db()
    assert account.is_healthy


def test_a_good_answer_makes_an_unhealthy_number_healthy_again(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    WhatsAppAccount.objects.filter(pk=account.pk).update(is_healthy=False)
    fake_graph.reply("GET", number_path(settings), {**NUMBER, "quality_rating": "RED"})

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "warning",
            "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), "
            "quality RED — Meta may limit how many customers this number reaches; "
            "marked healthy again.",
        )
    ]
    account.refresh_from_db()
    assert account.is_healthy


def test_an_expired_token_is_reported_and_marks_the_number_unhealthy(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET",
        number_path(settings),
        code=190,
        status=401,
        message="Error validating access token: Session has expired.",
    )

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "error",
            "Suporte (+55 11 4000-1234): Meta refused the access token (error 190: Error "
            "validating access token: Session has expired.). It is invalid or expired: the "
            "number is marked unhealthy until you type a new token.",
        )
    ]
    account.refresh_from_db()
    assert (account.is_healthy, account.last_error) == (
        False,
        "190: Error validating access token: Session has expired.",
    )
    assert account.last_error_at is not None


def test_meta_failing_is_a_warning_that_changes_nothing(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET",
        number_path(settings),
        code=2,
        status=503,
        message="Service temporarily unavailable",
    )

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "warning",
            "Suporte (+55 11 4000-1234): could not check now: Meta answered with an error "
            "(HTTP 503, 2: Service temporarily unavailable). Try again in a moment.",
        )
    ]
    account.refresh_from_db()
    assert (account.is_healthy, account.last_error) == (True, "")


def test_a_timeout_is_a_warning(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    settings.WHATSAPP_API_TIMEOUT = 0.2
    fake_graph.reply("GET", number_path(settings), NUMBER, delay=1.0)

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "warning",
            "Suporte (+55 11 4000-1234): could not check now: Meta did not answer within "
            "0.2 s. Try again in a moment.",
        )
    ]
    account.refresh_from_db()
    assert account.is_healthy


def test_a_refused_phone_number_id_is_an_error(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET",
        number_path(settings),
        code=100,
        message="Unsupported get request. Object with ID '106540352242922' does not exist",
    )

    response = check(admin_client, account)

    assert flashed(response) == [
        (
            "error",
            "Suporte (+55 11 4000-1234): Meta refused the check (error 100: Unsupported get "
            "request. Object with ID '106540352242922' does not exist).",
        )
    ]


def test_a_sandbox_number_has_nothing_to_check(
    admin_client: Client, sandbox_account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    response = check(admin_client, sandbox_account)

    assert flashed(response) == [
        (
            "warning",
            "Suporte (+55 11 4000-1234): Sandbox number: nothing to check (no access token).",
        )
    ]
    assert fake_graph.requests == []


def test_the_sandbox_transport_never_calls_meta(
    sandbox_account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    with pytest.raises(transport.TransportError) as caught:
        transport.account_check(sandbox_account)

    assert (caught.value.code, caught.value.retryable) == ("sandbox", False)
    assert fake_graph.requests == []


def test_each_selected_number_gets_its_own_line(
    admin_client: Client,
    account: WhatsAppAccount,
    fake_graph: FakeGraph,
    settings: Any,
) -> None:
    from conversations.models import Inbox

    sandbox = WhatsAppAccount.objects.create(
        inbox=Inbox.objects.create(name="Vendas"),
        name="Vendas",
        phone_number_id="300000000000001",
        display_phone="+55 11 4000-9999",
    )
    fake_graph.reply("GET", number_path(settings), NUMBER)

    response = check(admin_client, account, sandbox)

    assert [level for level, _text in flashed(response)] == ["success", "warning"]
    assert [r.path for r in fake_graph.requests] == [number_path(settings)]


def test_meta_text_in_the_report_is_escaped(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.reply(
        "GET",
        number_path(settings),
        {**NUMBER, "verified_name": "<img src=x onerror=alert(1)>"},
    )

    response = check(admin_client, account)

    assert "&lt;img src=x onerror=alert(1)&gt;" in response.text
    assert "<img src=x" not in response.text


def test_save_and_check_connection_on_the_number_page(
    admin_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    url = f"{CHANGELIST}{account.pk}/change/"
    page = admin_client.get(url)
    assert 'name="_check_connection"' in page.text
    fake_graph.reply("GET", number_path(settings), NUMBER)

    response = admin_client.post(
        url,
        {
            "name": account.name,
            "phone_number_id": account.phone_number_id,
            "display_phone": account.display_phone,
            "business_account_id": account.business_account_id,
            "verify_token": account.verify_token,
            "new_access_token": "EAAG-renewed-token",
            "new_app_secret": "",
            "default_team": account.inbox.default_team_id,
            "is_active": "on",
            "is_healthy": "on",
            "_check_connection": "Save and check connection",
        },
        follow=True,
    )

    assert response.redirect_chain == [(url, 302)]
    assert flashed(response) == [
        (
            "success",
            "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), "
            "quality GREEN",
        )
    ]
    [request] = fake_graph.requests
    assert request.headers["authorization"] == "Bearer EAAG-renewed-token"


def test_the_add_page_has_no_check_button(admin_client: Client) -> None:
    page = admin_client.get(f"{CHANGELIST}add/")

    assert page.status_code == 200
    assert 'name="_check_connection"' not in page.text


def test_an_agent_cannot_run_the_check(
    agent: User, account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    client = Client(headers=EN)
    client.force_login(agent)

    response = client.post(
        CHANGELIST, {"action": "check_connection", "_selected_action": [account.pk]}
    )

    assert (response.status_code, response.headers["Location"]) == (
        302,
        f"/admin/login/?next={CHANGELIST}",
    )
    assert fake_graph.requests == []

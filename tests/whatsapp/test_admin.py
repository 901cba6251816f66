from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Inbox
from tests.whatsapp.conftest import ACCESS_TOKEN, APP_SECRET
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import MessageTemplate, WhatsAppAccount

CHANGELIST = "/admin/whatsapp/whatsappaccount/"


@pytest.fixture
def superuser_client(db: None) -> Client:
    user = User.objects.create_superuser(username="root", password="Senha-Forte-123")
    client = Client()
    client.force_login(user)
    return client


def _assert_no_secret(html: str, account: WhatsAppAccount) -> None:
    for secret in (
        ACCESS_TOKEN,
        APP_SECRET,
        account.access_token_encrypted,
        account.app_secret_encrypted,
    ):
        assert secret not in html
    assert "EAAG" not in html


def test_list_and_change_pages_never_show_the_secrets(
    superuser_client: Client, account: WhatsAppAccount
) -> None:
    listing = superuser_client.get(CHANGELIST)
    change = superuser_client.get(f"{CHANGELIST}{account.pk}/change/")
    add = superuser_client.get(f"{CHANGELIST}add/")

    assert listing.status_code == change.status_code == add.status_code == 200
    for response in (listing, change, add):
        _assert_no_secret(response.content.decode(), account)
    html = change.content.decode()
    assert "verifica-123" in html  # the verify token is not a secret: it is shown
    assert "Stored (hidden)" in html
    assert f"/admin/conversations/inbox/{account.inbox_id}/change/" in html
    assert "106540352242922" in listing.content.decode()


def test_adding_a_number_creates_its_inbox_and_encrypts_the_token(
    superuser_client: Client, support: Team
) -> None:
    response = superuser_client.post(
        f"{CHANGELIST}add/",
        {
            "name": "Vendas",
            "phone_number_id": "300000000000001",
            "display_phone": "+55 11 4000-9999",
            "business_account_id": "400000000000001",
            "verify_token": "verifica-vendas",
            "new_access_token": "EAAG-new-token",
            "new_app_secret": "new-app-secret",
            "default_team": support.pk,
            "is_active": "on",
            "is_healthy": "on",
        },
    )

    assert response.status_code == 302, response.content.decode()[:2000]
    account = WhatsAppAccount.objects.get(phone_number_id="300000000000001")
    assert "EAAG" not in account.access_token_encrypted
    assert account.access_token == "EAAG-new-token"
    assert account.app_secret == "new-app-secret"
    assert not account.is_sandbox
    inbox = Inbox.objects.get(pk=account.inbox_id)
    assert (inbox.name, inbox.channel, inbox.address, inbox.default_team) == (
        "Vendas",
        "whatsapp",
        "+55 11 4000-9999",
        support,
    )


def _change_data(account: WhatsAppAccount, **overrides: Any) -> dict[str, Any]:
    data = {
        "name": account.name,
        "phone_number_id": account.phone_number_id,
        "display_phone": account.display_phone,
        "business_account_id": account.business_account_id,
        "verify_token": account.verify_token,
        "new_access_token": "",
        "new_app_secret": "",
        "default_team": account.inbox.default_team_id or "",
        "is_active": "on",
        "is_healthy": "on",
    }
    data.update(overrides)
    return data


def test_an_empty_secret_field_keeps_the_stored_one(
    superuser_client: Client, account: WhatsAppAccount, finance: Team
) -> None:
    before = account.access_token_encrypted
    response = superuser_client.post(
        f"{CHANGELIST}{account.pk}/change/",
        _change_data(account, name="Suporte 2", default_team=finance.pk),
    )

    assert response.status_code == 302
    account.refresh_from_db()
    assert account.name == "Suporte 2"
    assert account.access_token_encrypted == before
    assert account.app_secret == APP_SECRET
    assert Inbox.objects.get(pk=account.inbox_id).default_team == finance


def test_a_new_token_replaces_and_remove_goes_to_sandbox(
    superuser_client: Client, account: WhatsAppAccount
) -> None:
    url = f"{CHANGELIST}{account.pk}/change/"
    superuser_client.post(url, _change_data(account, new_access_token="EAAG-rotated"))
    account.refresh_from_db()
    assert account.access_token == "EAAG-rotated"

    superuser_client.post(url, _change_data(account, clear_access_token="on"))
    account.refresh_from_db()
    assert account.is_sandbox
    assert account.app_secret == APP_SECRET


def test_sync_action_syncs_and_reports(
    superuser_client: Client, account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.reply(
        "GET",
        f"/{settings.WHATSAPP_API_VERSION}/{account.business_account_id}/message_templates",
        {
            "data": [
                {
                    "name": "fatura",
                    "language": "pt_BR",
                    "category": "UTILITY",
                    "status": "APPROVED",
                    "id": "9",
                    "components": [{"type": "BODY", "text": "Olá {{1}}"}],
                }
            ]
        },
    )

    response = superuser_client.post(
        CHANGELIST,
        {"action": "sync_templates", "_selected_action": [account.pk]},
        follow=True,
    )

    assert response.status_code == 200
    assert "1 created, 0 updated, 0 removed" in response.content.decode()
    assert MessageTemplate.objects.get(account=account).name == "fatura"


def test_sync_action_on_the_sandbox_says_why(
    superuser_client: Client, sandbox_account: WhatsAppAccount
) -> None:
    response = superuser_client.post(
        CHANGELIST,
        {"action": "sync_templates", "_selected_action": [sandbox_account.pk]},
        follow=True,
    )

    assert "sandbox mode" in response.content.decode()


def test_template_pages_are_read_only(superuser_client: Client, account: WhatsAppAccount) -> None:
    template = MessageTemplate.objects.create(
        account=account,
        name="fatura",
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Olá {{1}}"}],
        synced_at=timezone.now(),
    )

    listing = superuser_client.get("/admin/whatsapp/messagetemplate/")
    detail = superuser_client.get(f"/admin/whatsapp/messagetemplate/{template.pk}/change/")
    add = superuser_client.get("/admin/whatsapp/messagetemplate/add/")

    assert listing.status_code == detail.status_code == 200
    assert "fatura" in listing.content.decode()
    assert add.status_code == 403
    assert "&#x27;variables&#x27;: [&#x27;1&#x27;]" in detail.content.decode()
    _assert_no_secret(listing.content.decode() + detail.content.decode(), account)

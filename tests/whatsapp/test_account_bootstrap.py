"""A single-number deployment configured from the environment alone."""

from __future__ import annotations

from typing import Any

import pytest

from conversations.models import Inbox
from tests.whatsapp.conftest import PHONE_NUMBER_ID
from whatsapp.models import WhatsAppAccount
from whatsapp.services import account_bootstrap_from_env, account_for_phone_number_id


@pytest.fixture
def env(settings: Any, db: None) -> Any:
    settings.WHATSAPP_PHONE_NUMBER_ID = "109876543210"
    settings.WHATSAPP_ACCESS_TOKEN = "EAAG-do-ambiente"
    settings.WHATSAPP_APP_SECRET = "segredo-do-ambiente"
    settings.WHATSAPP_VERIFY_TOKEN = "verifica-ambiente"
    return settings


def test_without_a_phone_number_id_nothing_is_created(settings: Any, db: None) -> None:
    settings.WHATSAPP_PHONE_NUMBER_ID = ""

    assert account_bootstrap_from_env() is None
    assert not WhatsAppAccount.objects.exists()


def test_the_number_and_its_inbox_are_created(env: Any) -> None:
    account = account_bootstrap_from_env()

    assert account is not None
    account = WhatsAppAccount.objects.select_related("inbox").get()
    assert (account.phone_number_id, account.name, account.is_active) == (
        "109876543210",
        "WhatsApp",
        True,
    )
    assert (account.access_token, account.app_secret, account.verify_token) == (
        "EAAG-do-ambiente",
        "segredo-do-ambiente",
        "verifica-ambiente",
    )
    assert "EAAG-do-ambiente" not in account.access_token_encrypted
    assert not account.is_sandbox
    assert (account.inbox.name, account.inbox.channel, account.inbox.default_team) == (
        "WhatsApp",
        "whatsapp",
        None,
    )


def test_running_it_again_changes_nothing(env: Any) -> None:
    first = account_bootstrap_from_env()
    assert first is not None

    again = account_bootstrap_from_env()

    assert again is not None
    assert again.pk == first.pk
    assert (WhatsAppAccount.objects.count(), Inbox.objects.count()) == (1, 1)
    assert again.updated_at == first.updated_at


def test_new_credentials_in_the_environment_update_the_number(
    account: WhatsAppAccount, settings: Any
) -> None:
    settings.WHATSAPP_PHONE_NUMBER_ID = PHONE_NUMBER_ID
    settings.WHATSAPP_ACCESS_TOKEN = "EAAG-novo"
    settings.WHATSAPP_APP_SECRET = ""
    settings.WHATSAPP_VERIFY_TOKEN = ""
    assert account_for_phone_number_id(PHONE_NUMBER_ID) is not None  # now cached

    account_bootstrap_from_env()

    account.refresh_from_db()
    assert account.access_token == "EAAG-novo"
    # Left empty in the environment: what the admin typed stays.
    assert (account.app_secret, account.verify_token) == (
        "test-app-secret-0123456789",
        "verifica-123",
    )
    assert account.inbox.name == "WhatsApp Suporte"
    assert WhatsAppAccount.objects.count() == 1
    cached = account_for_phone_number_id(PHONE_NUMBER_ID)
    assert cached is not None and cached.access_token == "EAAG-novo"


def test_without_a_token_it_is_a_sandbox_number(env: Any) -> None:
    env.WHATSAPP_ACCESS_TOKEN = ""

    account = account_bootstrap_from_env()

    assert account is not None and account.is_sandbox


def test_migrate_runs_it_once_connected(env: Any) -> None:
    from django.apps import apps
    from django.db.models.signals import post_migrate

    from whatsapp import signals

    # Idempotent (dispatch_uid), as WhatsAppConfig.ready() calls it too.
    signals.connect()
    post_migrate.send(
        sender=apps.get_app_config("whatsapp"),
        app_config=apps.get_app_config("whatsapp"),
        verbosity=0,
        interactive=False,
        using="default",
        apps=apps,
        plan=[],
    )

    assert WhatsAppAccount.objects.get().phone_number_id == "109876543210"

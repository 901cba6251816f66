"""Shared WhatsApp fixtures: the fake Graph API, a configured number, staff."""

from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.management import call_command

from tests.conversations.conftest import (  # noqa: F401 - shared fixtures
    _fast_password_hashing,
    _no_channel_registrations,
    _no_greeting,
    agent,
    finance,
    outsider,
    supervisor,
    support,
    teammate,
)
from tests.whatsapp.fake_graph import fake_graph  # noqa: F401 - fixture
from whatsapp.models import WhatsAppAccount

APP_SECRET = "test-app-secret-0123456789"
VERIFY_TOKEN = "verifica-123"
ACCESS_TOKEN = "EAAG-test-access-token"
PHONE_NUMBER_ID = "106540352242922"


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """These tests read the English texts; test_portuguese.py checks that a
    default deployment (pt-br) answers Meta, agents and admins in Portuguese."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def account(support: Any) -> WhatsAppAccount:  # noqa: F811 - the imported fixture
    """A live number (it has an access token) whose conversations go to Suporte técnico."""
    from conversations.models import Inbox

    inbox = Inbox.objects.create(
        name="WhatsApp Suporte", address="+55 11 4000-1234", default_team=support
    )
    account = WhatsAppAccount(
        inbox=inbox,
        name="Suporte",
        phone_number_id=PHONE_NUMBER_ID,
        display_phone="+55 11 4000-1234",
        business_account_id="102290129340398",
        verify_token=VERIFY_TOKEN,
    )
    account.access_token = ACCESS_TOKEN
    account.app_secret = APP_SECRET
    account.save()
    return account


@pytest.fixture
def sandbox_account(account: WhatsAppAccount) -> WhatsAppAccount:
    """The same number without an access token: the sandbox transport."""
    account.access_token = ""
    account.save()
    return account


@pytest.fixture
def run_worker() -> Iterator[Callable[[], None]]:
    """``db_worker --batch``: runs every task that is ready, then exits."""
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    loggers = {name: logging.getLogger(name).level for name in ("django_tasks", "django_tasks_db")}

    def run() -> None:
        call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)

"""What every subscribers test starts from: English messages, fast password
hashing, and small builders for plans, subscribers, contracts, invoices and
outages (``tests/subscribers/factories.py``)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.test import Client
from django.utils import translation

from accounts.models import User


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _in_english() -> Iterator[None]:
    """Services answer in the active language; the assertions are in English."""
    with translation.override("en"):
        yield


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(username="root.ops", password=None)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(superuser)
    return client

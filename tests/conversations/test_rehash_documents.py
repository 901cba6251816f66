"""manage.py rehash_documents: lookup hashes after a SECRET_KEY change and
re-encryption after a new Fernet key; only a report without --commit."""

from __future__ import annotations

import re
from collections.abc import Callable
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command

from accounts.models import User
from conversations import services
from conversations.models import Contact, Message
from ispsupport.identity import document_hash

CPF = "52998224725"
CNPJ = "11222333000181"
NEW_SECRET = "rotated-secret-key-7d1e9c4b2a8f6e0d3c5b7a9e1f2d4c6b8a0e2f4d6c8b"


def rehash(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("rehash_documents", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def summary(output: str) -> str:
    """The contacts' summary line (the subscribers' run follows it)."""
    line = next(x for x in output.splitlines() if "contacts with a CPF/CNPJ" in x)
    return re.sub(r"in \d+\.\d s", "in _ s", line)


def test_subscribers_documents_are_rehashed_too(settings: Any, db: None) -> None:
    from ispsupport.identity import document_hash
    from subscribers.models import DOCUMENT_PURPOSE, Subscriber
    from subscribers.services import subscriber_set_document

    owner = Subscriber.objects.create(code="C-1", name="Maria Souza")
    subscriber_set_document(subscriber=owner, raw="529.982.247-25")
    settings.SECRET_KEY = NEW_SECRET

    out, _err = rehash("--commit")

    owner.refresh_from_db()
    assert "1 subscribers with a CPF/CNPJ" in out
    assert owner.document_hash == document_hash("52998224725", purpose=DOCUMENT_PURPOSE)


@pytest.fixture
def documented(contact: Contact, agent: User, receive: Callable[..., Message]) -> list[Contact]:
    """Two contacts with a document and one without."""
    other = receive(wa_id="5521977776666").conversation.contact
    receive(wa_id="5531966665555")
    services.contact_update(contact=contact, actor=agent, document=CPF)
    services.contact_update(contact=other, actor=agent, document=CNPJ)
    return [contact, other]


def stored(contacts: list[Contact]) -> list[tuple[str, str | None]]:
    return [
        (c.document_encrypted, c.document_hash)
        for c in Contact.objects.filter(pk__in=[c.pk for c in contacts]).order_by("pk")
    ]


def test_nothing_to_do_when_keys_are_unchanged(documented: list[Contact]) -> None:
    before = stored(documented)

    output, errors = rehash("--commit")

    assert summary(output) == (
        "2 contacts with a CPF/CNPJ in _ s: 0 lookup hashes changed, "
        "0 documents changed to the newest key, 0 unreadable."
    )
    assert "Contacts: 2/2 checked, 0 hashes to recompute, 0 to re-encrypt" in output
    assert errors == ""
    assert stored(documented) == before


def test_dry_run_reports_and_changes_nothing(documented: list[Contact], settings: Any) -> None:
    before = stored(documented)
    settings.SECRET_KEY = NEW_SECRET

    output, _errors = rehash()

    assert summary(output) == (
        "2 contacts with a CPF/CNPJ in _ s: 2 lookup hashes would change, "
        "0 documents would change to the newest key, 0 unreadable. "
        "Dry run: nothing written; add --commit to apply."
    )
    assert stored(documented) == before
    assert services.contact_find_by_document(CPF) is None  # stale until --commit


def test_commit_fixes_hashes_after_the_secret_key_changes(
    documented: list[Contact], settings: Any
) -> None:
    encrypted = [row[0] for row in stored(documented)]
    settings.SECRET_KEY = NEW_SECRET

    output, _errors = rehash("--commit", "--batch-size", "1")

    assert summary(output) == (
        "2 contacts with a CPF/CNPJ in _ s: 2 lookup hashes changed, "
        "0 documents changed to the newest key, 0 unreadable."
    )
    assert "Contacts: 1/2 checked, 1 hashes to recompute, 0 to re-encrypt" in output
    assert stored(documented) == [
        (encrypted[0], document_hash(CPF)),
        (encrypted[1], document_hash(CNPJ)),
    ]
    assert services.contact_find_by_document("529.982.247-25") == documented[0]
    assert services.contact_find_by_document("11.222.333/0001-81") == documented[1]


def test_commit_reencrypts_with_the_newest_key(documented: list[Contact], settings: Any) -> None:
    new_key = Fernet.generate_key().decode()
    settings.FERNET_KEYS = [new_key, *settings.FERNET_KEYS]

    dry, _errors = rehash()
    output, _errors = rehash("--commit")

    assert "0 lookup hashes would change, 2 documents would change to the newest key" in dry
    assert summary(output) == (
        "2 contacts with a CPF/CNPJ in _ s: 0 lookup hashes changed, "
        "2 documents changed to the newest key, 0 unreadable."
    )
    settings.FERNET_KEYS = [new_key]  # the old key can go now
    assert [Contact.objects.get(pk=c.pk).document for c in documented] == [CPF, CNPJ]


def test_unreadable_documents_are_reported_and_left_alone(
    documented: list[Contact], settings: Any
) -> None:
    before = stored(documented)
    settings.FERNET_KEYS = [Fernet.generate_key().decode()]
    settings.SECRET_KEY = NEW_SECRET

    output, errors = rehash("--commit")

    assert summary(output) == (
        "2 contacts with a CPF/CNPJ in _ s: 0 lookup hashes changed, "
        "0 documents changed to the newest key, 2 unreadable."
    )
    ids = ", ".join(str(c.pk) for c in documented)
    assert errors == (
        f"No key in FERNET_KEYS opens the document of contacts {ids}: put the old key back "
        "in FERNET_KEYS (after the new one) and run again.\n"
    )
    assert stored(documented) == before

"""manage.py rotate_encryption_keys: every encrypted field moves to the newest
key of FERNET_KEYS, so the old key can be dropped and everything still decrypts."""

from __future__ import annotations

import hashlib
import hmac
import re
from io import StringIO
from typing import Any

import pytest
from cryptography.fernet import Fernet
from django.core.management import call_command
from django.core.management.base import CommandError

from conversations.models import Contact, Inbox
from conversations.services import contact_find_by_document
from ispsupport.crypto import encrypt
from ispsupport.identity import document_hash
from ispsupport.keyrotation import ColumnReport, encrypted_columns, rotate_all
from subscribers.models import DOCUMENT_PURPOSE, Subscriber
from subscribers.services import subscriber_set_document
from whatsapp.models import WhatsAppAccount
from whatsapp.services import signature_valid

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
UNKNOWN_KEY = Fernet.generate_key().decode()

CPF = "52998224725"
OTHER_CPF = "11144477735"
CNPJ = "11222333000181"
TOKEN = "EAAG-rotation-access-token"
APP_SECRET = "rotation-app-secret-0123"


def rotate(*args: str) -> str:
    out = StringIO()
    call_command("rotate_encryption_keys", *args, stdout=out, stderr=StringIO())
    return re.sub(r"\(\d+\.\d s\)", "(_ s)", out.getvalue())


def summary(output: str) -> str:
    return output.strip().splitlines()[-1]


def contact_with(document: str, wa_id: str) -> Contact:
    return Contact.objects.create(
        wa_id=wa_id,
        phone=f"+{wa_id}",
        document_encrypted=encrypt(document),
        document_hash=document_hash(document),
    )


@pytest.fixture
def stored(settings: Any, db: None) -> dict[str, Any]:
    """One of every encrypted thing, written while KEY_A alone is configured."""
    settings.FERNET_KEYS = [KEY_A]
    contacts = [contact_with(CPF, "5511988887777"), contact_with(CNPJ, "5521977776666")]
    Contact.objects.create(wa_id="5531966665555")  # no document: nothing to rotate
    subscriber = Subscriber.objects.create(code="S1", name="Maria Souza")
    subscriber_set_document(subscriber=subscriber, raw=OTHER_CPF)
    inbox = Inbox.objects.create(name="WhatsApp", address="+551140001234")
    account = WhatsAppAccount(inbox=inbox, name="Suporte", phone_number_id="106540352242922")
    account.access_token = TOKEN
    account.app_secret = APP_SECRET
    account.save()
    return {"contacts": contacts, "subscriber": subscriber, "account": account}


def ciphertexts() -> list[str]:
    values = list(
        Contact.objects.exclude(document_encrypted="")
        .order_by("pk")
        .values_list("document_encrypted", flat=True)
    )
    values += list(Subscriber.objects.order_by("pk").values_list("document_encrypted", flat=True))
    for account in WhatsAppAccount.objects.order_by("pk"):
        values += [account.access_token_encrypted, account.app_secret_encrypted]
    return values


def signed(body: bytes) -> str:
    return "sha256=" + hmac.new(APP_SECRET.encode(), body, hashlib.sha256).hexdigest()


def test_every_encrypted_field_of_the_project_is_rotated(db: None) -> None:
    columns = {c.label: c for c in encrypted_columns()}

    assert sorted(columns) == [
        "conversations.Contact (document_encrypted)",
        "subscribers.Subscriber (document_encrypted)",
        "whatsapp.WhatsAppAccount (access_token_encrypted, app_secret_encrypted)",
    ]
    # The lookup hashes are recomputed with each table's own salt, as written.
    contact = columns["conversations.Contact (document_encrypted)"]
    subscriber = columns["subscribers.Subscriber (document_encrypted)"]
    assert contact.is_document and subscriber.is_document
    assert contact.document_purpose == "conversations.Contact.document"
    assert document_hash(CPF, purpose=contact.document_purpose) == document_hash(CPF)
    assert subscriber.document_purpose == DOCUMENT_PURPOSE
    assert not columns[
        "whatsapp.WhatsAppAccount (access_token_encrypted, app_secret_encrypted)"
    ].is_document


def test_after_rotating_the_old_key_can_be_dropped(stored: dict[str, Any], settings: Any) -> None:
    body = b'{"object":"whatsapp_business_account","entry":[]}'
    assert signature_valid(body=body, header=signed(body))  # the secrets are cached now
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    output = rotate("--commit")

    assert summary(output) == (
        "5 encrypted values in 3 columns (_ s): 5 re-encrypted with the newest key, "
        "0 already on it, 0 unreadable. The older keys in FERNET_KEYS can now be removed."
    )
    assert "conversations.Contact (document_encrypted): 2/2 checked, 2 re-encrypted" in output
    settings.FERNET_KEYS = [KEY_B]
    contacts = [Contact.objects.get(pk=c.pk) for c in stored["contacts"]]
    assert [c.document for c in contacts] == [CPF, CNPJ]
    assert Subscriber.objects.get(pk=stored["subscriber"].pk).document == OTHER_CPF
    account = WhatsAppAccount.objects.get(pk=stored["account"].pk)
    assert (account.access_token, account.app_secret) == (TOKEN, APP_SECRET)
    assert all(Fernet(KEY_B).decrypt(value.encode()) for value in ciphertexts())
    # Lookups by CPF still work, and the webhook's cached secrets were dropped.
    assert contact_find_by_document("529.982.247-25") == contacts[0]
    assert signature_valid(body=body, header=signed(body))


def test_dry_run_counts_what_is_not_on_the_newest_key(
    stored: dict[str, Any], settings: Any
) -> None:
    before = ciphertexts()
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    output = rotate("--batch-size", "1")

    assert summary(output) == (
        "5 encrypted values in 3 columns (_ s): 5 not yet on the newest key, 0 already on it, "
        "0 unreadable. Dry run: nothing written; add --commit to re-encrypt."
    )
    assert "conversations.Contact (document_encrypted): 1/2 checked, 1 to re-encrypt" in output
    assert ciphertexts() == before


def test_nothing_to_do_when_everything_is_on_the_newest_key(
    stored: dict[str, Any], settings: Any
) -> None:
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    rotate("--commit")
    after_first_run = ciphertexts()

    output = rotate("--commit")

    assert (
        "5 encrypted values in 3 columns (_ s): 0 re-encrypted with the newest key, 5 already on it"
        in output
    )
    assert ciphertexts() == after_first_run


def test_an_interrupted_run_continues_where_it_stopped(
    stored: dict[str, Any], settings: Any
) -> None:
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    def crash_after_first_batch(report: ColumnReport) -> None:
        raise KeyboardInterrupt  # the operator's Ctrl-C, or the machine going down

    with pytest.raises(KeyboardInterrupt):
        rotate_all(commit=True, batch_size=1, progress=crash_after_first_batch)
    # The first batch (one contact) committed; everything else is still on KEY_A.
    first = Contact.objects.exclude(document_encrypted="").order_by("pk").first()
    assert first is not None
    done = first.document_encrypted
    assert Fernet(KEY_B).decrypt(done.encode()).decode() == CPF
    assert sum(1 for value in ciphertexts() if _opens(KEY_B, value)) == 1

    output = rotate("--commit", "--batch-size", "1")

    assert summary(output).startswith(
        "5 encrypted values in 3 columns (_ s): 4 re-encrypted with the newest key, "
        "1 already on it, 0 unreadable."
    )
    assert Contact.objects.get(pk=first.pk).document_encrypted == done  # not redone
    settings.FERNET_KEYS = [KEY_B]
    assert [Contact.objects.get(pk=c.pk).document for c in stored["contacts"]] == [CPF, CNPJ]


def _opens(key: str, value: str) -> bool:
    try:
        Fernet(key).decrypt(value.encode())
    except Exception:
        return False
    return True


def test_values_no_key_opens_fail_the_run_and_say_which(
    stored: dict[str, Any], settings: Any
) -> None:
    lost = stored["contacts"][1]
    Contact.objects.filter(pk=lost.pk).update(
        document_encrypted=Fernet(UNKNOWN_KEY).encrypt(CNPJ.encode()).decode()
    )
    settings.FERNET_KEYS = [KEY_B, KEY_A]
    out = StringIO()

    with pytest.raises(CommandError) as failure:
        call_command("rotate_encryption_keys", "--commit", stdout=out, stderr=StringIO())

    assert str(failure.value) == (
        f"No key in FERNET_KEYS opens 1 value(s) (conversations.Contact (document_encrypted) "
        f"rows {lost.pk}). Do NOT drop any key yet: put the key they were encrypted with back "
        "in FERNET_KEYS (after the newest) and run again."
    )
    assert "4 re-encrypted with the newest key, 0 already on it, 1 unreadable." in out.getvalue()
    settings.FERNET_KEYS = [KEY_B]
    assert Contact.objects.get(pk=stored["contacts"][0].pk).document == CPF


def test_a_bad_batch_size_is_refused(db: None) -> None:
    with pytest.raises(CommandError, match="--batch-size must be at least 1"):
        call_command("rotate_encryption_keys", "--batch-size", "0", stdout=StringIO())


def test_help_says_what_it_does(run_manage: Any) -> None:
    result = run_manage("rotate_encryption_keys", "--help")

    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    assert "newest (first) key of FERNET_KEYS" in text
    assert "--commit" in text and "--batch-size" in text

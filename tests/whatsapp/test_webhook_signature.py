"""Only Meta gets in: the signature is checked over the exact raw bytes before
anything is parsed, a bad body gets a 400 with a reason, a number we do not
serve gets a 200 (so Meta stops retrying) and nothing is stored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import OperationalError
from django.test import Client
from django.utils import timezone

from conversations.models import Contact, Conversation, Message
from tests.whatsapp.payloads import dumps, envelope, post, sign, text
from whatsapp import services
from whatsapp.models import WhatsAppAccount


def _nothing_stored() -> bool:
    return not (
        Message.objects.exists() or Contact.objects.exists() or Conversation.objects.exists()
    )


def test_a_signed_delivery_is_stored(client: Client, account: WhatsAppAccount) -> None:
    response = post(client, envelope(messages=[text("Oi")]))

    assert response.status_code == 200
    assert response.json()["messages"] == 1
    assert Message.objects.get().text == "Oi"


def test_with_a_trailing_slash_too(client: Client, account: WhatsAppAccount) -> None:
    response = post(client, envelope(messages=[text("Oi")]), url="/api/v1/whatsapp/webhook/")

    assert response.status_code == 200
    assert Message.objects.count() == 1


@pytest.mark.parametrize(
    "signature",
    [
        "",  # header missing
        "sha256=" + "0" * 64,
        "sha1=abc",
        "garbage",
        "sha256=",
    ],
)
def test_a_missing_or_bad_signature_stores_nothing(
    client: Client, account: WhatsAppAccount, signature: str
) -> None:
    response = post(client, envelope(messages=[text("Oi")]), signature=signature)

    assert response.status_code == 403
    assert response.json() == {
        "detail": "Invalid or missing X-Hub-Signature-256.",
        "code": "permission_denied",
    }
    assert _nothing_stored()


def test_a_signature_with_another_secret_stores_nothing(
    client: Client, account: WhatsAppAccount
) -> None:
    response = post(client, envelope(messages=[text("Oi")]), secret="not-the-app-secret")

    assert response.status_code == 403
    assert _nothing_stored()


def test_the_signature_is_over_the_raw_bytes_not_a_reserialisation(
    client: Client, account: WhatsAppAccount
) -> None:
    payload = envelope(messages=[text("Não tenho sinal")])
    raw = dumps(payload)  # "N\u00e3o", as Meta sends it
    assert b"\\u00e3" in raw
    reserialised = json.dumps(payload, ensure_ascii=False).encode()

    forged = post(client, raw, signature=sign(reserialised))

    assert forged.status_code == 403
    assert _nothing_stored()

    genuine = post(client, raw)

    assert genuine.status_code == 200
    assert Message.objects.get().text == "Não tenho sinal"


def test_a_tampered_body_with_the_original_signature_stores_nothing(
    client: Client, account: WhatsAppAccount
) -> None:
    raw = dumps(envelope(messages=[text("Oi")]))
    tampered = raw.replace(b"Oi", b"Ok")

    response = post(client, tampered, signature=sign(raw))

    assert response.status_code == 403
    assert _nothing_stored()


def test_the_environment_secret_and_every_active_numbers_secret_are_accepted(
    client: Client, account: WhatsAppAccount, settings: Any
) -> None:
    settings.WHATSAPP_APP_SECRET = "segredo-do-ambiente"
    from conversations.models import Inbox

    other = WhatsAppAccount(
        inbox=Inbox.objects.create(name="Vendas"), name="Vendas", phone_number_id="999000111"
    )
    other.app_secret = "segredo-de-vendas"
    other.save()

    by_env = post(client, envelope(messages=[text("a")]), secret="segredo-do-ambiente")
    by_other = post(
        client,
        envelope(messages=[text("b")], phone_number_id="999000111"),
        secret="segredo-de-vendas",
    )

    assert (by_env.status_code, by_other.status_code) == (200, 200)
    assert Message.objects.count() == 2


def test_an_inactive_numbers_secret_is_refused(client: Client, account: WhatsAppAccount) -> None:
    account.is_active = False
    account.save()

    response = post(client, envelope(messages=[text("Oi")]))

    assert response.status_code == 403
    assert _nothing_stored()


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (b"{not json", "body is not valid JSON"),
        (b"\xff\xfe", "body is not valid JSON"),
        (b"[]", "object is not 'whatsapp_business_account'"),
        (b'{"object":"page","entry":[]}', "object is not 'whatsapp_business_account'"),
        (b'{"object":"whatsapp_business_account"}', "entry is not a list"),
        (b'{"object":"whatsapp_business_account","entry":[{"id":"1"}]}',
         "entry without a changes list"),
        (b'{"object":"whatsapp_business_account","entry":[{"changes":[{"field":"messages"}]}]}',
         "change without a value object"),
    ],
)  # fmt: skip
def test_a_signed_body_that_is_not_an_envelope_is_a_400(
    client: Client, account: WhatsAppAccount, body: bytes, reason: str
) -> None:
    response = post(client, body)

    assert response.status_code == 400
    assert response.json() == {
        "detail": f"Not a WhatsApp webhook: {reason}.",
        "code": "invalid_envelope",
    }
    assert _nothing_stored()


def test_an_unknown_number_gets_a_200_and_nothing_is_stored(
    client: Client, account: WhatsAppAccount
) -> None:
    response = post(client, envelope(messages=[text("Oi")], phone_number_id="404404404"))

    assert response.status_code == 200
    assert response.json()["skipped"] == 1
    assert _nothing_stored()
    account.refresh_from_db()
    assert account.last_webhook_at is None


def test_an_inactive_number_gets_a_200_and_nothing_is_stored(
    client: Client, account: WhatsAppAccount, settings: Any
) -> None:
    # Signed with the environment's secret: the number itself is switched off.
    settings.WHATSAPP_APP_SECRET = "segredo-do-ambiente"
    account.is_active = False
    account.save()

    response = post(client, envelope(messages=[text("Oi")]), secret="segredo-do-ambiente")

    assert response.status_code == 200
    assert _nothing_stored()


def test_a_delivery_records_when_the_number_last_heard_from_meta(
    client: Client, account: WhatsAppAccount
) -> None:
    before = timezone.now()

    post(client, envelope(messages=[text("Oi")]))

    account.refresh_from_db()
    assert account.last_webhook_at is not None
    assert before <= account.last_webhook_at <= timezone.now()


def test_the_number_lookup_is_cached_and_forgotten_when_the_number_changes(
    client: Client, account: WhatsAppAccount, django_assert_num_queries: Any
) -> None:
    post(client, envelope(messages=[text("1")]))
    with django_assert_num_queries(0):
        assert services.account_for_phone_number_id(account.phone_number_id) == account

    account.is_active = False
    account.save()

    assert services.account_for_phone_number_id(account.phone_number_id) is None


def test_a_database_that_is_down_answers_503_so_meta_retries(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    def unreachable() -> list[tuple[str, str]]:
        raise OperationalError("connection refused")

    monkeypatch.setattr(services, "_encrypted_credentials", unreachable)

    response = post(client, envelope(messages=[text("Oi")]))

    assert response.status_code == 503
    assert response["Retry-After"] == "30"
    assert response.json() == {
        "detail": "The database is unavailable; try again later.",
        "code": "unavailable",
    }

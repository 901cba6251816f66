"""Bodies no database column can take as they are, found by the property tests
(tests/property/test_webhook_parser.py) to answer Meta with a 500.

Meta retries a 500 for days, so: a body that is not JSON is refused whole
(400); text is stored cleaned (no NUL, which PostgreSQL refuses; a lone
surrogate, which no UTF-8 encoder takes, becomes U+FFFD); a message or status
whose id no column can hold is skipped with its reason logged, and the rest of
the delivery is stored (200)."""

from __future__ import annotations

import json
import math

import pytest
from django.test import Client
from structlog.testing import capture_logs

from conversations.models import Contact, Message
from tests.whatsapp.payloads import MARIA_PHONE, contact, envelope, post, status, text
from whatsapp.models import WhatsAppAccount
from whatsapp.payloads import EnvelopeError, clean_json, clean_text, parse_envelope

OBJECT = b'{"object":"whatsapp_business_account","entry":[],"n":'


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"[" * 100_000 + b"]" * 100_000, "body is nested too deep"),
        # Python reads it, but storing it would recurse as deep again.
        (b"[" * 70 + b"]" * 70, "body is nested too deep"),
        (OBJECT + b"9" * 5000 + b"}", "body is not valid JSON"),
        (OBJECT + b"NaN}", "body is not valid JSON: NaN is not a JSON number"),
        (OBJECT + b"-Infinity}", "body is not valid JSON: -Infinity is not a JSON number"),
        (OBJECT + b"1e400}", "body is not valid JSON: a number is out of range"),
    ],
    ids=["nested-100000", "nested-70", "integer-5000-digits", "nan", "infinity", "1e400"],
)
def test_what_no_json_column_stores_is_refused(raw: bytes, reason: str) -> None:
    with pytest.raises(EnvelopeError) as refused:
        parse_envelope(raw)

    assert str(refused.value) == reason


def test_meta_s_own_numbers_still_parse() -> None:
    document = envelope(messages=[text("x", id_="wamid.N1", extra={"f": 1.5e300, "i": 10**30})])

    [change] = parse_envelope(json.dumps(document).encode()).changes

    assert change.messages[0].payload["extra"] == {"f": 1.5e300, "i": 10**30}


def test_a_4000_digit_integer_is_stored(client: Client, account: WhatsAppAccount) -> None:
    # Within Python's 4300 digits; every JSON column takes it.
    item = text("x", id_="wamid.BIG", extra=10**3999)

    response = post(client, envelope(messages=[item]))

    assert response.status_code == 200, response.content
    assert Message.objects.get().payload["extra"] == 10**3999


def test_cleaning_keeps_everything_else() -> None:
    assert clean_text("a\x00b\ud800c é 👍") == "ab\ufffdc é 👍"
    assert clean_json({"k\x00": ["\x00", {"\udfff": 1.5}], "n": None}) == {
        "k": ["", {"\ufffd": 1.5}],
        "n": None,
    }


def test_a_nan_is_a_400_and_nothing_is_stored(client: Client, account: WhatsAppAccount) -> None:
    document = envelope(messages=[text("x", id_="wamid.NAN", extra=math.nan)])

    response = post(client, json.dumps(document).encode())

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_envelope"
    assert not Message.objects.exists()


def test_nul_and_lone_surrogates_are_stored_cleaned(
    client: Client, account: WhatsAppAccount
) -> None:
    item = text("a\x00b\ud800", id_="wamid.CLEAN", **{"k\x00": "v\x00"})

    response = post(client, envelope(messages=[item], contacts=[contact(name="Ma\x00ria")]))

    assert response.status_code == 200, response.content
    assert response.json()["messages"] == 1
    stored = Message.objects.select_related("conversation__contact").get()
    assert stored.text == "ab\ufffd"
    assert stored.payload["k"] == "v"
    assert "k\x00" not in stored.payload
    assert stored.payload["text"] == {"body": "ab\ufffd"}
    assert stored.conversation.contact.profile_name == "Maria"


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (text("x", id_="wamid." + "A" * 200), "message id is longer than 128 characters"),
        (text("x", id_="wamid.NUL\x00"), "message id contains NUL or a lone surrogate"),
        (
            text("x", id_="wamid.LONGFROM", from_="5" * 40, from_user_id=None),
            "sender wa_id is longer than 32 characters",
        ),
        (
            text("x", id_="wamid.LONGBSUID", from_user_id="B" * 200),
            "sender user_id is longer than 128 characters",
        ),
    ],
    ids=["id-over-128", "nul-in-id", "from-over-32", "user-id-over-128"],
)
def test_a_message_with_an_id_no_column_holds_is_skipped_and_the_rest_stored(
    client: Client, account: WhatsAppAccount, bad: dict[str, object], reason: str
) -> None:
    good = text("Minha internet caiu", id_="wamid.GOOD")
    # The lone contact entry is the author of both: only their message ids differ.
    contacts = [contact(wa_id=MARIA_PHONE, user_id=None)]

    with capture_logs() as logs:
        response = post(client, envelope(messages=[bad, good], contacts=contacts))

    assert response.status_code == 200, response.content
    assert (response.json()["messages"], response.json()["skipped"]) == (1, 1)
    assert list(Message.objects.values_list("external_id", flat=True)) == ["wamid.GOOD"]
    [refused] = [log for log in logs if log["event"] == "whatsapp_webhook_item_refused"]
    assert (refused["item"], refused["reason"], refused["log_level"]) == (
        "message",
        reason,
        "warning",
    )
    # The reason only: an id may be a phone number.
    assert "5" * 40 not in str(refused) and "B" * 200 not in str(refused)


def test_a_status_with_nul_in_its_id_is_skipped(client: Client, account: WhatsAppAccount) -> None:
    response = post(client, envelope(statuses=[status("wamid.OUT\x00", "delivered")]))

    assert response.status_code == 200, response.content
    assert (response.json()["statuses"], response.json()["skipped"]) == (0, 1)


def test_a_phone_number_id_with_nul_is_no_number_of_ours(
    client: Client, account: WhatsAppAccount
) -> None:
    document = envelope(messages=[text("x", id_="wamid.PNID")], phone_number_id="1\x00")

    response = post(client, document)

    assert response.status_code == 200, response.content
    assert response.json()["skipped"] == 1
    assert not Contact.objects.exists()


def test_a_reply_to_an_id_with_nul_names_no_message() -> None:
    # Cleaning it would name another message: it is dropped instead.
    item = text("x", id_="wamid.R1", context={"from": MARIA_PHONE, "id": "wamid.OUT1\x00"})

    [change] = parse_envelope(json.dumps(envelope(messages=[item])).encode()).changes

    assert change.messages[0].reply_to_external_id is None

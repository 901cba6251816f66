"""Who a customer is: one contact per person across BSUID, WhatsApp id and the
phone with or without the ninth digit; CPF/CNPJ validated, encrypted at rest
and found by a keyed hash."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.exceptions import ValidationError
from django.utils import translation

from accounts.models import User
from conversations.models import Contact
from conversations.services import contact_find_by_document, contact_resolve, contact_update
from ispsupport.identity import canonical_phone, clean_document, document_hash

CPF = "52998224725"
CNPJ = "11222333000181"
ALPHANUMERIC_CNPJ = "12ABC34501DE35"  # the Receita Federal's own example


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


# --- phones ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "typed", "expected"),
    [
        ("5511988887777", False, "+5511988887777"),
        ("551188887777", False, "+5511988887777"),  # pre-2016 WhatsApp id of a mobile
        ("+55 (11) 8888-7777", False, "+5511988887777"),
        ("552161234567", False, "+5521961234567"),  # mobiles start with 6 to 9
        ("551133334444", False, "+551133334444"),  # a landline gets no ninth digit
        ("(11) 98888-7777", True, "+5511988887777"),  # typed without the country code
        ("(11) 8888-7777", True, "+5511988887777"),
        ("(11) 3333-4444", True, "+551133334444"),
        ("14155552671", False, "+14155552671"),
        ("", False, None),
        ("abc", False, None),
        ("1234", False, None),
        ("1234567890123456", False, None),
    ],
)
def test_canonical_phone(raw: str, typed: bool, expected: str | None) -> None:
    assert canonical_phone(raw, typed=typed) == expected


# --- resolving a contact --------------------------------------------------------------


def test_a_new_person_is_created_with_every_identifier(db: None) -> None:
    contact = contact_resolve(bsuid="BR.abc", wa_id="551188887777", name="Maria")

    contact.refresh_from_db()
    assert (contact.bsuid, contact.wa_id, contact.phone, contact.profile_name) == (
        "BR.abc",
        "551188887777",
        "+5511988887777",
        "Maria",
    )
    assert contact.last_seen_at is not None


def test_bsuid_wins_over_wa_id(db: None) -> None:
    by_bsuid = Contact.objects.create(bsuid="BR.abc")
    Contact.objects.create(wa_id="5511988887777", phone="+5511988887777")

    assert contact_resolve(bsuid="BR.abc", wa_id="5511988887777") == by_bsuid


def test_a_known_phone_links_a_new_bsuid(db: None) -> None:
    known = Contact.objects.create(wa_id="5511988887777", phone="+5511988887777")

    found = contact_resolve(bsuid="BR.abc", wa_id="5511988887777", username="maria.fibra")

    assert found == known
    known.refresh_from_db()
    assert (known.bsuid, known.username) == ("BR.abc", "maria.fibra")


def test_the_nine_digit_phone_typed_by_staff_finds_the_eight_digit_wa_id(db: None) -> None:
    typed = Contact.objects.create(name="Maria Souza", phone="+5511988887777")

    found = contact_resolve(wa_id="551188887777", name="Maria")

    assert found == typed
    typed.refresh_from_db()
    assert (typed.wa_id, typed.phone, typed.name, typed.profile_name) == (
        "551188887777",
        "+5511988887777",
        "Maria Souza",
        "Maria",
    )
    assert Contact.objects.count() == 1


def test_an_identifier_of_another_contact_is_not_taken_over(db: None) -> None:
    by_bsuid = Contact.objects.create(bsuid="BR.abc")
    by_phone = Contact.objects.create(wa_id="5511988887777", phone="+5511988887777")

    found = contact_resolve(bsuid="BR.abc", wa_id="5511988887777")

    assert found == by_bsuid
    by_bsuid.refresh_from_db()
    by_phone.refresh_from_db()
    assert (by_bsuid.bsuid, by_bsuid.wa_id, by_bsuid.phone) == ("BR.abc", None, None)
    assert (by_phone.bsuid, by_phone.wa_id) == (None, "5511988887777")


def test_a_contact_needs_an_identity(db: None) -> None:
    with pytest.raises(ValidationError) as exc:
        contact_resolve(bsuid="  ", wa_id="", name="Fulano")

    assert exc.value.messages == ["A contact needs a WhatsApp user id or phone."]
    assert not Contact.objects.exists()


# --- documents ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("529.982.247-25", CPF),
        (CPF, CPF),
        ("11.222.333/0001-81", CNPJ),
        ("12.ABC.345/01DE-35", ALPHANUMERIC_CNPJ),
        ("12.abc.345/01de-35", ALPHANUMERIC_CNPJ),
    ],
)
def test_valid_documents_are_cleaned(raw: str, expected: str) -> None:
    assert clean_document(raw) == expected


@pytest.mark.parametrize(
    "raw",
    ["529.982.247-24", "111.111.111-11", "11.222.333/0001-82", "12.ABC.345/01DE-36", "123", ""],
)
def test_invalid_documents_are_refused(raw: str) -> None:
    with pytest.raises(ValidationError) as exc:
        clean_document(raw)

    assert exc.value.messages == ["Enter a valid CPF or CNPJ."]


def test_a_cpf_is_encrypted_at_rest_and_read_back(contact: Contact, agent: User) -> None:
    contact_update(contact=contact, actor=agent, document="529.982.247-25")

    row = Contact.objects.values("document_encrypted", "document_hash").get(pk=contact.pk)
    assert row["document_encrypted"]
    assert CPF not in row["document_encrypted"]
    assert row["document_hash"] == document_hash(CPF)
    assert CPF not in row["document_hash"]
    fresh = Contact.objects.get(pk=contact.pk)
    assert fresh.document == CPF
    assert fresh.document_masked == "•••••••4725"


def test_an_alphanumeric_cnpj_round_trips(contact: Contact, agent: User) -> None:
    contact_update(contact=contact, actor=agent, document="12.ABC.345/01DE-35")

    fresh = Contact.objects.get(pk=contact.pk)
    assert fresh.document == ALPHANUMERIC_CNPJ
    assert fresh.document_masked == "••••••••••DE35"
    assert ALPHANUMERIC_CNPJ not in fresh.document_encrypted


def test_found_by_document_however_it_is_typed(contact: Contact, agent: User) -> None:
    contact_update(contact=contact, actor=agent, document=CPF)

    assert contact_find_by_document("529.982.247-25") == contact
    assert contact_find_by_document(" 529 982 247 25 ") == contact
    assert contact_find_by_document("168.995.350-09") is None
    assert contact_find_by_document("not a document") is None


def test_an_invalid_document_is_refused_and_nothing_is_stored(
    contact: Contact, agent: User
) -> None:
    with pytest.raises(ValidationError) as exc:
        contact_update(contact=contact, actor=agent, document="111.111.111-11", name="Maria S.")

    assert exc.value.message_dict == {"document": ["Enter a valid CPF or CNPJ."]}
    fresh = Contact.objects.get(pk=contact.pk)
    assert (fresh.document_encrypted, fresh.document_hash, fresh.name) == ("", None, "")


def test_two_contacts_cannot_share_a_document(contact: Contact, agent: User) -> None:
    other = Contact.objects.create(wa_id="5521977776666", phone="+5521977776666")
    contact_update(contact=other, actor=agent, document=CPF)

    with pytest.raises(ValidationError) as exc:
        contact_update(contact=contact, actor=agent, document="529.982.247-25")

    assert exc.value.message_dict == {"document": ["Another contact already has this CPF/CNPJ."]}
    assert Contact.objects.get(pk=contact.pk).document_hash is None


def test_clearing_the_document(contact: Contact, agent: User) -> None:
    contact_update(contact=contact, actor=agent, document=CPF)

    contact_update(contact=contact, actor=agent, document="")

    fresh = Contact.objects.get(pk=contact.pk)
    assert (fresh.document_encrypted, fresh.document_hash) == ("", None)
    assert (fresh.document, fresh.document_masked) == ("", "")
    assert contact_find_by_document(CPF) is None


def test_the_lookup_hash_depends_on_the_secret_key(settings: object) -> None:
    before = document_hash(CPF)
    settings.SECRET_KEY = "another-secret-key-for-this-test-only-0123456789abcdef"  # type: ignore[attr-defined]

    assert document_hash(CPF) != before


# --- staff edits of the phone ---------------------------------------------------------


def test_staff_type_a_phone_without_the_country_code(contact: Contact, agent: User) -> None:
    other = Contact.objects.create(bsuid="BR.only")

    contact_update(contact=other, actor=agent, phone="(21) 97777-6666")

    assert Contact.objects.get(pk=other.pk).phone == "+5521977776666"


def test_a_phone_of_another_contact_or_not_a_phone_is_refused(
    contact: Contact, agent: User
) -> None:
    other = Contact.objects.create(bsuid="BR.only")

    with pytest.raises(ValidationError) as taken:
        contact_update(contact=other, actor=agent, phone="(11) 8888-7777")
    with pytest.raises(ValidationError) as invalid:
        contact_update(contact=other, actor=agent, phone="12")

    assert taken.value.message_dict == {"phone": ["Another contact already has this phone."]}
    assert invalid.value.message_dict == {
        "phone": ["Enter a valid phone number, e.g. +55 11 98888-7777."]
    }
    assert Contact.objects.get(pk=other.pk).phone is None

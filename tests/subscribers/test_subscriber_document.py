"""subscriber_set_document: a valid CPF/CNPJ is stored encrypted, found by its
keyed hash, and never shared by two subscribers."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import connection

from ispsupport.identity import document_hash
from subscribers.builtin import DatabaseDirectory
from subscribers.models import DOCUMENT_PURPOSE, Subscriber
from subscribers.services import subscriber_set_document
from tests.subscribers.factories import CNPJ, CPF, CPF_TYPED, OTHER_CPF, make_subscriber

pytestmark = pytest.mark.django_db


def stored_columns(subscriber: Subscriber) -> tuple[str, str | None]:
    """The row as the database holds it, read without the model."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT document_encrypted, document_hash FROM subscribers_subscriber WHERE id = %s",
            [subscriber.pk],
        )
        return cursor.fetchone()


def test_the_document_is_stored_encrypted_and_found_by_its_hash() -> None:
    subscriber = make_subscriber()

    subscriber_set_document(subscriber=subscriber, raw=CPF_TYPED)

    encrypted, digest = stored_columns(subscriber)
    assert encrypted and CPF not in encrypted and CPF_TYPED not in encrypted
    assert digest == document_hash(CPF, purpose=DOCUMENT_PURPOSE)
    # Salted per table: the contacts' hash of the same CPF is another value.
    assert digest != document_hash(CPF)
    subscriber.refresh_from_db()
    assert subscriber.document == CPF
    assert subscriber.document_masked == "***.982.247-**"
    found = DatabaseDirectory().find_by_document(CPF)
    assert found is not None and found.code == subscriber.code


def test_a_cnpj_is_accepted_and_masked_as_one() -> None:
    subscriber = make_subscriber()

    subscriber_set_document(subscriber=subscriber, raw="11.222.333/0001-81")

    subscriber.refresh_from_db()
    assert subscriber.document == CNPJ
    assert subscriber.document_masked == "**.222.333/0001-**"


def test_an_invalid_document_is_refused_and_nothing_changes() -> None:
    subscriber = make_subscriber(document=CPF)

    with pytest.raises(ValidationError) as caught:
        subscriber_set_document(subscriber=subscriber, raw="123.456.789-00")

    assert caught.value.messages == ["Enter a valid CPF or CNPJ."]
    subscriber.refresh_from_db()
    assert subscriber.document == CPF


def test_another_subscribers_document_is_refused() -> None:
    make_subscriber("S1", document=CPF)
    other = make_subscriber("S2", "João Santos", document=OTHER_CPF)

    with pytest.raises(ValidationError) as caught:
        subscriber_set_document(subscriber=other, raw=CPF_TYPED)

    assert caught.value.messages == ["Another subscriber already has this CPF/CNPJ."]
    other.refresh_from_db()
    assert other.document == OTHER_CPF


def test_setting_the_same_document_again_is_fine() -> None:
    subscriber = make_subscriber(document=CPF)

    subscriber_set_document(subscriber=subscriber, raw=CPF_TYPED)

    subscriber.refresh_from_db()
    assert subscriber.document == CPF


def test_an_empty_document_removes_it() -> None:
    subscriber = make_subscriber(document=CPF)

    subscriber_set_document(subscriber=subscriber, raw="  ")

    assert stored_columns(subscriber) == ("", None)
    assert DatabaseDirectory().find_by_document(CPF) is None
    # Its CPF is free for someone else now.
    subscriber_set_document(subscriber=make_subscriber("S2"), raw=CPF)

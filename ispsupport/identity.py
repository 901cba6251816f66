"""Who a customer is: canonical phone numbers and CPF/CNPJ documents."""

from __future__ import annotations

import re

import phonenumbers
from django.core.exceptions import ValidationError
from django.utils.crypto import salted_hmac
from django.utils.translation import gettext as _
from validate_docbr import CNPJ, CPF

_NON_DIGITS = re.compile(r"\D")
_DOCUMENT_CHARS = re.compile(r"[^0-9A-Z]")


def canonical_phone(raw: str, *, typed: bool = False) -> str | None:
    """E.164 for ``raw``, or None if it is not a phone number.

    A WhatsApp id always carries its country code; a number ``typed`` by staff
    without one (``(11) 98888-7777``) is Brazilian.

    Brazilian mobiles are always given the ninth digit: WhatsApp still reports
    many pre-2016 accounts as 55 11 8888-7777, while the customer (and the ISP's
    ERP) know them as 55 11 98888-7777. Both must name one contact.
    """
    digits = _NON_DIGITS.sub("", raw or "")
    if not digits or len(digits) > 15:
        return None
    if typed and len(digits) in (10, 11) and not raw.strip().startswith("+"):
        digits = "55" + digits  # a Brazilian number typed without the country code
    if digits.startswith("55") and len(digits) == 12 and digits[4] in "6789":
        # 55 + area code + 8-digit mobile (mobiles start with 6-9; landlines 2-5).
        digits = digits[:4] + "9" + digits[4:]
    try:
        number = phonenumbers.parse("+" + digits)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_possible_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def clean_document(raw: str) -> str:
    """A valid CPF (11 digits) or CNPJ (14 characters, alphanumeric since 2026),
    without punctuation; ValidationError otherwise."""
    value = _DOCUMENT_CHARS.sub("", (raw or "").upper())
    if len(value) == 11 and value.isdigit() and CPF().validate(value):
        return value
    if len(value) == 14 and CNPJ().validate(value):
        return value
    raise ValidationError(_("Enter a valid CPF or CNPJ."), code="invalid_document")


def document_hash(document: str, *, purpose: str = "conversations.Contact.document") -> str:
    """A keyed hash for exact lookups without decrypting every row.

    Keyed with SECRET_KEY (salted, so it is not the hash used elsewhere): the
    hashes of a stolen database cannot be brute-forced over the small CPF space
    without the key. Rotating SECRET_KEY means recomputing this column
    (``manage.py rehash_documents``).
    """
    # ``purpose`` salts the hash per table, so the same CPF hashes differently
    # in contacts and in subscribers.
    return salted_hmac(purpose, document, algorithm="sha256").hexdigest()

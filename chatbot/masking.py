"""Personal data out of a customer's text before it leaves the system.

``mask_personal_data`` swaps CPF, CNPJ (numeric and the 2026 alphanumeric
format), phone numbers, e-mail addresses, boleto lines and any other run of
six or more digits for placeholders (``[CPF]``, ``[CNPJ]``, ``[TELEFONE]``,
``[EMAIL]``, ``[BOLETO]``, ``[NÚMERO]``). What a reader of the message needs
and that identifies nobody stays: a menu answer ("2"), a plan ("300 mega"),
"2 via", a date ("10/12", "10/12/2025"), an hour ("8h", "18:30"), a price.

The placeholders tell the model what kind of thing was there ("paguei o boleto
[BOLETO]" still reads as an invoice question). Masking errs on the side of
masking: a run of six or more digits that is none of the known kinds is still
replaced.
"""

from __future__ import annotations

import re

CPF = "[CPF]"
CNPJ = "[CNPJ]"
PHONE = "[TELEFONE]"
EMAIL = "[EMAIL]"
BOLETO = "[BOLETO]"
NUMBER = "[NÚMERO]"

# Fewer digits than this in a row (separators aside) are kept.
MIN_DIGITS = 6

_EMAIL = re.compile(r"[\w.%+-]+@[\w-]+(?:\.[\w-]+)+")

# 12 alphanumeric characters and 2 check digits, punctuated or not
# (12.ABC.345/01DE-35 since July 2026, 11.222.333/0001-81 before).
_CNPJ = re.compile(
    r"(?<![0-9A-Za-z])[0-9A-Za-z]{2}\.?[0-9A-Za-z]{3}\.?[0-9A-Za-z]{3}/?[0-9A-Za-z]{4}-?\d{2}"
    r"(?![0-9A-Za-z])"
)

# A CPF written as one: 123.456.789-09, 123.456.78909, 123456789-09, 123 456 789 09.
_CPF = re.compile(
    r"(?<!\d)(?:\d{3}\.\d{3}\.\d{3}[-.\s]?\d{2}|\d{3}\s\d{3}\s\d{3}[-\s]\d{2}|\d{9}-\d{2})(?!\d)"
)

# A boleto's digitable line as banks print it: groups of digits split by dots
# and spaces ("23790.12345 60000.123456 70000.123456 1 23450000010000").
_DIGIT_GROUPS = re.compile(r"(?<!\d)\d{4,}(?:[.\s-]+\d+){2,}")
_GROUPED_LINE_DIGITS = 24

# A phone written as one: with +55, a DDD in brackets or followed by a
# separator, and the number split by a separator: +55 (11) 98888-7777,
# (11) 98888-7777, 11 9 8888 7777, 98888-7777, 4000-1234. Unsplit digit runs
# (11988887777) are left to _DIGITS, which tells a phone from a CPF.
_PHONE = re.compile(
    r"(?<![\w+])"
    r"(?:\+\s?55[\s.-]?|55\s)?"
    r"(?:\(\s?\d{2}\s?\)\s?|\d{2}[\s.-])?"
    r"(?:9[\s.]?\d{4}[\s.-]\d{4}|9\d{4}[\s.-]?\d{4}|\d{4}[\s.-]\d{4})"
    r"(?!\w)"
)
_BRACKETED_PHONE = re.compile(r"(?<![\w+])(?:\+\s?55\s?)?\(\s?\d{2}\s?\)\s?\d{8,9}(?!\w)")

# Any other run of digits, joined by dots or hyphens (not spaces: "2 300 mega"
# are separate numbers); a leading "+" goes with it (+5511988887777).
_DIGITS = re.compile(r"\+?\d+(?:[.-]\d+)*")
_DATE = re.compile(r"\d{1,2}[.-]\d{1,2}[.-]\d{2,4}|\d{4}-\d{1,2}-\d{1,2}")

# Valid DDDs have no zero (11 to 99).
_PHONE_DIGITS = re.compile(r"(?:55)?[1-9]{2}(?:9\d{8}|[2-5]\d{7})|9\d{8}")


def mask_personal_data(text: str) -> str:
    """``text`` with personal data replaced by placeholders."""
    if not text:
        return text
    text = _EMAIL.sub(EMAIL, text)
    text = _CNPJ.sub(_cnpj, text)
    text = _CPF.sub(CPF, text)
    text = _DIGIT_GROUPS.sub(_digit_groups, text)
    text = _BRACKETED_PHONE.sub(PHONE, text)
    text = _PHONE.sub(_phone, text)
    return _DIGITS.sub(_digits, text)


def _cnpj(match: re.Match[str]) -> str:
    raw = match.group()
    chars = re.sub(r"[./-]", "", raw).upper()
    punctuated = "/" in raw and raw.count(".") == 2
    if punctuated or ("/" in raw and chars.isdigit()) or is_valid_cnpj(chars):
        return CNPJ
    return raw  # an ordinary word, or digits the later rules judge


def _digit_groups(match: re.Match[str]) -> str:
    digits = re.sub(r"\D", "", match.group())
    if len(digits) < _GROUPED_LINE_DIGITS:
        return match.group()
    return _classify(digits)


def _phone(match: re.Match[str]) -> str:
    raw = match.group()
    if raw.isdigit():
        return _classify(raw)  # "988887777": no separator, judged like any digits
    return PHONE


def _digits(match: re.Match[str]) -> str:
    raw = match.group()
    digits = re.sub(r"\D", "", raw)
    if len(digits) < MIN_DIGITS or _DATE.fullmatch(raw.lstrip("+")):
        return raw
    return _classify(digits)


def _classify(digits: str) -> str:
    if len(digits) in (44, 47, 48):  # barcode, bank and utility digitable lines
        return BOLETO
    if len(digits) == 11 and is_valid_cpf(digits):
        return CPF
    if len(digits) == 14 and is_valid_cnpj(digits):
        return CNPJ
    if _PHONE_DIGITS.fullmatch(digits):
        return PHONE
    return NUMBER


def is_valid_cpf(digits: str) -> bool:
    """Whether 11 digits carry a CPF's check digits."""
    if len(digits) != 11 or not digits.isdigit() or len(set(digits)) == 1:
        return False
    numbers = [int(d) for d in digits]
    for size in (9, 10):
        total = sum(n * w for n, w in zip(numbers[:size], range(size + 1, 1, -1), strict=True))
        if (total * 10 % 11) % 10 != numbers[size]:
            return False
    return True


def is_valid_cnpj(chars: str) -> bool:
    """Whether 14 characters carry a CNPJ's check digits; the first 12 may be
    letters (the alphanumeric CNPJ: each character counts as its ASCII code
    minus 48, so digits keep their value)."""
    chars = chars.upper()
    if (
        len(chars) != 14
        or not chars[:12].isalnum()
        or not chars[:12].isascii()
        or not chars[12:].isdigit()
        or len(set(chars)) == 1
    ):
        return False
    values = [ord(c) - 48 for c in chars]
    for size in (12, 13):
        weights = list(range(size - 7, 1, -1)) + list(range(9, 1, -1))
        total = sum(v * w for v, w in zip(values[:size], weights, strict=True))
        remainder = total % 11
        if (0 if remainder < 2 else 11 - remainder) != values[size]:
            return False
    return True

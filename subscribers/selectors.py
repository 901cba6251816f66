"""Reads of the subscriber tables, in a constant number of queries whatever
the page size."""

from __future__ import annotations

import contextlib
import re

from django.core.exceptions import ValidationError
from django.db.models import Prefetch, Q, QuerySet

from ispsupport.identity import canonical_phone, clean_document, document_hash
from subscribers.models import DOCUMENT_PURPOSE, Contract, Outage, Subscriber

_NON_DIGITS = re.compile(r"\D")


def subscriber_search(q: str = "") -> QuerySet[Subscriber]:
    """Subscribers by name (contains), code (exact), phone digits or CPF/CNPJ,
    each with its contracts and their plans (one query for the page, one for
    the contracts)."""
    rows = Subscriber.objects.prefetch_related(
        Prefetch("contracts", queryset=Contract.objects.select_related("plan").order_by("code"))
    ).order_by("name", "id")
    q = q.strip()
    if not q:
        return rows
    match = Q(name__icontains=q) | Q(code=q)
    digits = _NON_DIGITS.sub("", q)
    if len(digits) >= 4:
        match |= Q(phone__contains=digits)
    if len(digits) >= 10 and (phone := canonical_phone(q, typed=True)):
        match |= Q(phone=phone)  # typed without the ninth digit: (11) 8888-7777
    with contextlib.suppress(ValidationError):
        # Stored encrypted: only its keyed hash can be matched, and only exactly.
        match |= Q(document_hash=document_hash(clean_document(q), purpose=DOCUMENT_PURPOSE))
    return rows.filter(match)


def outages_open() -> QuerySet[Outage]:
    """Outages not resolved yet, the newest first."""
    return Outage.objects.filter(resolved_at__isnull=True).order_by("-started_at", "-id")

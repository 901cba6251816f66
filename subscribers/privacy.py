"""LGPD for the ISP's subscriber records stored here (the built-in directory's
tables, or the copies an ERP sync writes): finding one person's records, their
export, and their erasure.

Used by the chatbot app's ``export_contact_data`` and ``erase_contact``, which
join them with the helpdesk's contacts (the core may not import this app).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import structlog
from django.contrib.admin.models import DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.db import transaction
from django.db.models import Count, Q, QuerySet

from accounts.models import User
from ispsupport.identity import document_hash
from subscribers.directory import forget_cached
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Subscriber

logger = structlog.get_logger(__name__)

# What admin's history shows for an erased record.
ERASED = "[apagado]"


def _when(value: Any) -> str | None:
    return value.isoformat() if value else None


def subscribers_of(
    *, codes: Iterable[str], documents: Iterable[str], phones: Iterable[str]
) -> QuerySet[Subscriber]:
    """The subscriber records of one person, ordered by id.

    Matched by customer code and CPF/CNPJ (both name one person); by phone only
    when exactly one subscriber has that phone, as the bot identifies people: a
    family's shared phone must not reach someone else's contract.
    """
    hashes = [document_hash(d, purpose=DOCUMENT_PURPOSE) for d in set(documents) if d]
    phones = {p for p in phones if p}
    unique_phones = list(
        Subscriber.objects.filter(phone__in=phones)
        .values("phone")
        .annotate(n=Count("id"))
        .filter(n=1)
        .values_list("phone", flat=True)
    )
    condition = Q(pk__in=[])
    codes = {c for c in codes if c}
    if codes:
        condition |= Q(code__in=codes)
    if hashes:
        condition |= Q(document_hash__in=hashes)
    if unique_phones:
        condition |= Q(phone__in=unique_phones)
    return Subscriber.objects.filter(condition).order_by("pk")


def subscriber_records(
    *, codes: Iterable[str], documents: Iterable[str], phones: Iterable[str]
) -> list[dict[str, Any]]:
    """The stored subscriber records of one person (``subscribers_of``), with
    their contracts and invoices, JSON-ready."""
    rows = subscribers_of(codes=codes, documents=documents, phones=phones).prefetch_related(
        "contracts__plan", "contracts__invoices"
    )
    return [
        {
            "code": subscriber.code,
            "name": subscriber.name,
            "document": subscriber.document,
            "phone": subscriber.phone,
            "email": subscriber.email,
            "region": subscriber.region,
            "address": subscriber.address,
            "created_at": _when(subscriber.created_at),
            "updated_at": _when(subscriber.updated_at),
            "contracts": [
                {
                    "code": contract.code,
                    "plan": {
                        "code": contract.plan.code,
                        "name": contract.plan.name,
                        "download_mbps": contract.plan.download_mbps,
                        "upload_mbps": contract.plan.upload_mbps,
                        "price": str(contract.plan.price),
                    },
                    "status": contract.status,
                    "suspension_reason": contract.suspension_reason,
                    "installation_address": contract.address,
                    "trust_unlocked_until": _when(contract.trust_unlocked_until),
                    "last_trust_unlock_at": _when(contract.last_trust_unlock_at),
                    "created_at": _when(contract.created_at),
                    "invoices": [
                        {
                            "code": invoice.code,
                            "amount": str(invoice.amount),
                            "due_date": _when(invoice.due_date),
                            "status": invoice.status,
                            "digitable_line": invoice.digitable_line,
                            "pix_code": invoice.pix_code,
                            "paid_at": _when(invoice.paid_at),
                        }
                        for invoice in contract.invoices.all()
                    ],
                }
                for contract in subscriber.contracts.all()
            ],
        }
        for subscriber in rows
    ]


def shared_phone_records(*, phones: Iterable[str], exported: set[str]) -> int:
    """How many subscriber records have one of ``phones`` along with someone
    else, and were left out of the export for that reason."""
    phones = {p for p in phones if p}
    if not phones:
        return 0
    return Subscriber.objects.filter(phone__in=phones).exclude(code__in=exported).count()


# --- Erasure -----------------------------------------------------------------------


@dataclass
class SubscriberErasureCounts:
    subscribers: int = 0
    contracts: int = 0
    invoices: int = 0
    admin_history: int = 0


def _history(subscribers: QuerySet[Subscriber]) -> QuerySet[LogEntry]:
    """Admin history rows of these records: a subscriber's names them."""
    ids = list(subscribers.values_list("pk", flat=True))
    contracts = list(Contract.objects.filter(subscriber_id__in=ids).values_list("pk", flat=True))
    invoices = list(Invoice.objects.filter(contract_id__in=contracts).values_list("pk", flat=True))
    types = ContentType.objects.get_for_models(Subscriber, Contract, Invoice)
    return LogEntry.objects.exclude(object_repr=ERASED).filter(
        Q(content_type=types[Subscriber], object_id__in=[str(pk) for pk in ids])
        | Q(content_type=types[Contract], object_id__in=[str(pk) for pk in contracts])
        | Q(content_type=types[Invoice], object_id__in=[str(pk) for pk in invoices])
    )


def subscriber_erasure_preview(subscribers: QuerySet[Subscriber]) -> SubscriberErasureCounts:
    """What ``subscribers_erase`` would delete, counted; changes nothing."""
    ids = list(subscribers.values_list("pk", flat=True))
    return SubscriberErasureCounts(
        subscribers=len(ids),
        contracts=Contract.objects.filter(subscriber_id__in=ids).count(),
        invoices=Invoice.objects.filter(contract__subscriber_id__in=ids).count(),
        admin_history=_history(subscribers).count(),
    )


@transaction.atomic
def subscribers_erase(
    subscribers: QuerySet[Subscriber], *, actor: User, reason: str
) -> SubscriberErasureCounts:
    """Delete these subscriber records with their contracts and invoices.

    Deleted rather than anonymised: they are a copy of the ISP's ERP, which
    keeps its own under its legal bases; nothing here counts them. Admin's
    history of them is scrubbed and the deletion recorded there by ``actor``;
    the directory cache forgets the person at once.
    """
    rows = list(subscribers.select_for_update().order_by("pk"))
    counts = subscriber_erasure_preview(Subscriber.objects.filter(pk__in=[s.pk for s in rows]))
    for entry in _history(Subscriber.objects.filter(pk__in=[s.pk for s in rows])):
        entry.object_repr = ERASED
        entry.change_message = ""
        entry.save(update_fields=["object_repr", "change_message"])
    forget_cached(
        phones=[s.phone for s in rows],
        documents=[s.document for s in rows],
        codes=[s.code for s in rows],
    )
    subscriber_type = ContentType.objects.get_for_model(Subscriber)
    for subscriber in rows:
        LogEntry.objects.create(
            user=actor,
            content_type=subscriber_type,
            object_id=str(subscriber.pk),
            object_repr=ERASED,
            action_flag=DELETION,
            change_message=(
                f"LGPD erasure (manage.py erase_contact). Reason: {reason}. Deleted with "
                "its contracts and invoices."
            ),
        )
    Subscriber.objects.filter(pk__in=[s.pk for s in rows]).delete()
    logger.info(
        "subscribers_erased",
        subscriber_ids=[s.pk for s in rows],
        actor_id=actor.pk,
        contracts=counts.contracts,
        invoices=counts.invoices,
    )
    return counts

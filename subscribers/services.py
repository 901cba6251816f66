"""Every change to plans, subscribers, contracts, invoices and outages.

An ERP keeps these tables in step through the bulk upserts, keyed by its own
``code``. A batch is checked whole before anything is written: one bad item
and nothing changes, so a failed sync can simply be sent again once fixed.
Send plans and subscribers before the contracts that name them, and contracts
before their invoices: a reference must name a row that already exists.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, TypeVar

from django.core.exceptions import ValidationError
from django.db import IntegrityError, models, transaction
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework import serializers

from ispsupport import crypto
from ispsupport.errors import ServiceError
from ispsupport.identity import clean_document, document_hash
from subscribers.items import (
    ContractItemSerializer,
    InvoiceItemSerializer,
    OutageItemSerializer,
    PlanItemSerializer,
    SubscriberItemSerializer,
)
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Outage, Plan, Subscriber

MAX_BULK_ITEMS = 1000

Row = TypeVar("Row", bound=models.Model)
Item = dict[str, Any]
Errors = dict[int, dict[str, list[str]]]


# --- Documents ------------------------------------------------------------------------


def _document_hash(document: str) -> str:
    return document_hash(document, purpose=DOCUMENT_PURPOSE)


def _duplicate_document() -> ValidationError:
    return ValidationError(
        _("Another subscriber already has this CPF/CNPJ."), code="duplicate_document"
    )


def subscriber_document_clean(raw: str, *, subscriber: Subscriber | None = None) -> str:
    """The CPF/CNPJ in ``raw`` without punctuation ("" when empty), or a
    ValidationError when it is not valid or ``subscriber`` would share it with
    another subscriber."""
    if not (raw or "").strip():
        return ""
    document = clean_document(raw)
    others = Subscriber.objects.filter(document_hash=_document_hash(document))
    if subscriber is not None and subscriber.pk is not None:
        others = others.exclude(pk=subscriber.pk)
    if others.exists():
        raise _duplicate_document()
    return document


def subscriber_set_document(*, subscriber: Subscriber, raw: str) -> Subscriber:
    """Store the CPF/CNPJ encrypted, with its lookup hash; an empty ``raw`` removes it."""
    document = subscriber_document_clean(raw, subscriber=subscriber)
    subscriber.document_encrypted = crypto.encrypt(document) if document else ""
    subscriber.document_hash = _document_hash(document) if document else None
    try:
        with transaction.atomic():
            subscriber.save(update_fields=["document_encrypted", "document_hash", "updated_at"])
    except IntegrityError:
        # Another request gave this document to someone else after our check.
        raise _duplicate_document() from None
    return subscriber


# --- Outages ------------------------------------------------------------------------


def outage_resolve(*, outage: Outage, at: datetime | None = None) -> Outage:
    """Close the outage (now, or ``at``); an outage already closed stays as it was."""
    if outage.resolved_at is not None:
        return outage
    at = at or timezone.now()
    if at < outage.started_at:
        raise ValidationError(
            _("An outage cannot be resolved before it started."), code="resolved_before_start"
        )
    outage.resolved_at = at
    outage.save(update_fields=["resolved_at"])
    return outage


# --- Bulk upserts -------------------------------------------------------------------


class _Batch:
    """One call's items, parsed and checked; errors collected by item index."""

    def __init__(self, items: object, shape: type[serializers.Serializer]) -> None:
        if not isinstance(items, list):
            raise serializers.ValidationError(
                {"items": [_('Expected a list of items: {"items": [...]}.')]}, code="not_a_list"
            )
        if len(items) > MAX_BULK_ITEMS:
            raise serializers.ValidationError(
                {
                    "items": [
                        _(
                            "At most %(max)d items per call; this one has %(count)d. "
                            "Split it into several calls."
                        )
                        % {"max": MAX_BULK_ITEMS, "count": len(items)}
                    ]
                },
                code="too_many_items",
            )
        self.errors: Errors = {}
        self.items: list[tuple[int, Item]] = []
        first_at: dict[str, int] = {}
        for index, raw in enumerate(items):
            parsed = shape(data=raw)
            if not parsed.is_valid():
                self.errors[index] = {
                    field: list(messages) if isinstance(messages, list) else [messages]
                    for field, messages in parsed.errors.items()
                }
                continue
            item = dict(parsed.validated_data)
            code = item["code"]
            if code in first_at:
                self.error(
                    index,
                    "code",
                    _("This code is already item %(index)d of this call.")
                    % {"index": first_at[code]},
                )
                continue
            first_at[code] = index
            self.items.append((index, item))

    def error(self, index: int, field: str, message: str) -> None:
        self.errors.setdefault(index, {}).setdefault(field, []).append(message)

    def codes(self, field: str = "code") -> set[str]:
        return {item[field] for _index, item in self.items if item.get(field)}

    def existing(self, model: type[Row]) -> dict[str, Row]:
        """The rows this call updates, locked: a change made meanwhile (a trust
        unlock by the bot) is not overwritten with what was read before it."""
        rows = model.objects.select_for_update().filter(code__in=self.codes()).order_by("pk")
        return {row.code: row for row in rows}  # type: ignore[attr-defined]

    def require_for_new(self, existing: dict[str, Any], fields: Iterable[str]) -> None:
        for index, item in self.items:
            if item["code"] in existing:
                continue
            for field in fields:
                if field not in item:
                    self.error(index, field, _("This field is required for a new code."))

    def references(self, field: str, model: type[Row], message: str) -> dict[str, Row]:
        """The rows the items name in ``field`` by code; an error for each unknown one."""
        found = {row.code: row for row in model.objects.filter(code__in=self.codes(field))}  # type: ignore[attr-defined]
        for index, item in self.items:
            code = item.get(field)
            if code and code not in found:
                self.error(index, field, message % {"code": code})
        return found

    def raise_if_invalid(self) -> None:
        if self.errors:
            detail = {str(index): self.errors[index] for index in sorted(self.errors)}
            raise serializers.ValidationError({"items": detail}, code="invalid_items")


def _write(
    model: type[Row],
    batch: _Batch,
    existing: dict[str, Row],
    apply: Callable[[Row, Item, bool], None],
) -> dict[str, int]:
    """Create the new codes and update the others, with every field of the model
    (the rows are locked, so what was not in the item is written back as read)."""
    now = timezone.now()
    creates: list[Row] = []
    updates: list[Row] = []
    for _index, item in batch.items:
        row = existing.get(item["code"])
        new = row is None
        if row is None:
            row = model(code=item["code"])  # type: ignore[call-arg]
        apply(row, item, new)
        (creates if new else updates).append(row)
    fields = [
        f.name
        for f in model._meta.concrete_fields
        if not f.primary_key and f.name not in ("code", "created_at")
    ]
    if "updated_at" in fields:
        for row in updates:
            row.updated_at = now  # type: ignore[attr-defined]
    try:
        with transaction.atomic():
            model.objects.bulk_create(creates)
            if updates:
                model.objects.bulk_update(updates, fields)
    except IntegrityError:
        # A concurrent call created one of these codes (or gave away a CPF)
        # between our check and our write.
        raise ServiceError(
            _("Another call changed these records at the same time; send this one again."),
            code="conflict",
        ) from None
    return {"created": len(creates), "updated": len(updates)}


def _set(row: models.Model, item: Item, fields: Iterable[str]) -> None:
    for field in fields:
        if field in item:
            setattr(row, field, item[field])


@transaction.atomic
def plans_upsert(*, items: list[Item]) -> dict[str, int]:
    """Create or update plans by code: ``{"created": n, "updated": m}``."""
    batch = _Batch(items, PlanItemSerializer)
    existing = batch.existing(Plan)
    batch.require_for_new(existing, ("name", "price"))
    batch.raise_if_invalid()

    def apply(plan: Plan, item: Item, new: bool) -> None:
        _set(plan, item, ("name", "download_mbps", "upload_mbps", "price", "active"))

    return _write(Plan, batch, existing, apply)


@transaction.atomic
def subscribers_upsert(*, items: list[Item]) -> dict[str, int]:
    """Create or update subscribers by code. A document left out is kept; an
    empty one is removed; one that another subscriber has is refused."""
    batch = _Batch(items, SubscriberItemSerializer)
    existing = batch.existing(Subscriber)
    batch.require_for_new(existing, ("name",))
    hashes: dict[int, str] = {
        index: _document_hash(item["document"])
        for index, item in batch.items
        if item.get("document")
    }
    holders = dict(
        Subscriber.objects.filter(document_hash__in=set(hashes.values())).values_list(
            "document_hash", "code"
        )
    )
    # Two items of this call giving one document to two codes conflict too;
    # a swap between two subscribers takes two calls.
    for index, item in batch.items:
        digest = hashes.get(index)
        if digest is None:
            continue
        holder = holders.setdefault(digest, item["code"])
        if holder != item["code"]:
            batch.error(index, "document", _("Another subscriber already has this CPF/CNPJ."))
    batch.raise_if_invalid()

    def apply(subscriber: Subscriber, item: Item, new: bool) -> None:
        _set(subscriber, item, ("name", "phone", "email", "region", "address"))
        if "document" in item:
            document = item["document"]
            subscriber.document_encrypted = crypto.encrypt(document) if document else ""
            subscriber.document_hash = _document_hash(document) if document else None

    return _write(Subscriber, batch, existing, apply)


@transaction.atomic
def contracts_upsert(*, items: list[Item]) -> dict[str, int]:
    """Create or update contracts by code; ``subscriber`` and ``plan`` name
    existing rows by their codes."""
    batch = _Batch(items, ContractItemSerializer)
    existing = batch.existing(Contract)
    batch.require_for_new(existing, ("subscriber", "plan"))
    subscribers = batch.references(
        "subscriber", Subscriber, _("No subscriber has the code %(code)s.")
    )
    plans = batch.references("plan", Plan, _("No plan has the code %(code)s."))
    for index, item in batch.items:
        current = existing.get(item["code"])
        status = item.get("status") or (current.status if current else Contract.Status.ACTIVE)
        if item.get("suspension_reason") and status != Contract.Status.SUSPENDED:
            batch.error(
                index,
                "suspension_reason",
                _("A suspension reason is only allowed with the status suspended."),
            )
    batch.raise_if_invalid()

    def apply(contract: Contract, item: Item, new: bool) -> None:
        _set(contract, item, ("status", "suspension_reason", "address"))
        if "subscriber" in item:
            contract.subscriber = subscribers[item["subscriber"]]
        if "plan" in item:
            contract.plan = plans[item["plan"]]
        if contract.status != Contract.Status.SUSPENDED:
            contract.suspension_reason = Contract.SuspensionReason.NONE
            # Paid or cancelled: a trust unlock in force ends with the
            # suspension (the date of the last one still limits the next).
            contract.trust_unlocked_until = None

    return _write(Contract, batch, existing, apply)


@transaction.atomic
def invoices_upsert(*, items: list[Item]) -> dict[str, int]:
    """Create or update invoices by code; ``contract`` names an existing
    contract by code. An invoice that becomes paid without ``paid_at`` is paid now."""
    batch = _Batch(items, InvoiceItemSerializer)
    existing = batch.existing(Invoice)
    batch.require_for_new(existing, ("contract", "amount", "due_date"))
    contracts = batch.references("contract", Contract, _("No contract has the code %(code)s."))
    for index, item in batch.items:
        current = existing.get(item["code"])
        status = item.get("status") or (current.status if current else Invoice.Status.OPEN)
        if item.get("paid_at") and status != Invoice.Status.PAID:
            batch.error(index, "paid_at", _("Only a paid invoice has a payment date."))
    batch.raise_if_invalid()
    now = timezone.now()

    def apply(invoice: Invoice, item: Item, new: bool) -> None:
        _set(invoice, item, ("amount", "due_date", "status", "digitable_line", "pix_code"))
        if "contract" in item:
            invoice.contract = contracts[item["contract"]]
        if invoice.status != Invoice.Status.PAID:
            invoice.paid_at = None
        elif item.get("paid_at"):
            invoice.paid_at = item["paid_at"]
        elif invoice.paid_at is None:
            invoice.paid_at = now

    return _write(Invoice, batch, existing, apply)


@transaction.atomic
def outages_upsert(*, items: list[Item]) -> dict[str, int]:
    """Create or update outages by code; ``resolved_at`` closes one (null reopens it)."""
    batch = _Batch(items, OutageItemSerializer)
    existing = batch.existing(Outage)
    batch.require_for_new(existing, ("region", "title"))
    now = timezone.now()
    for index, item in batch.items:
        current = existing.get(item["code"])
        started = item.get("started_at") or (current.started_at if current else now)
        for field in ("forecast_at", "resolved_at"):
            moment = item[field] if field in item else getattr(current, field, None)
            if moment is not None and moment < started:
                batch.error(index, field, _("This is before the outage started."))
    batch.raise_if_invalid()

    def apply(outage: Outage, item: Item, new: bool) -> None:
        _set(
            outage,
            item,
            ("region", "title", "description", "started_at", "forecast_at", "resolved_at"),
        )
        if new and "started_at" not in item:
            outage.started_at = now

    return _write(Outage, batch, existing, apply)

"""The built-in directory: this app's own tables."""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Prefetch, QuerySet
from django.utils import timezone

from ispsupport.identity import document_hash
from subscribers.directory import (
    ContractInfo,
    InvoiceInfo,
    OutageInfo,
    PlanInfo,
    SubscriberDirectory,
    SubscriberInfo,
    UnlockResult,
)
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Outage, Plan, Subscriber
from subscribers.text import fold


def _plan(plan: Plan) -> PlanInfo:
    return PlanInfo(
        code=plan.code,
        name=plan.name,
        download_mbps=plan.download_mbps,
        upload_mbps=plan.upload_mbps,
        price=plan.price,
    )


def _contract(contract: Contract, subscriber_code: str) -> ContractInfo:
    return ContractInfo(
        code=contract.code,
        subscriber_code=subscriber_code,
        plan=_plan(contract.plan),
        status=contract.status,
        suspension_reason=contract.suspension_reason,
        address=contract.address,
        trust_unlocked_until=contract.trust_unlocked_until if contract.trust_unlocked else None,
    )


def _subscriber(subscriber: Subscriber) -> SubscriberInfo:
    return SubscriberInfo(
        code=subscriber.code,
        name=subscriber.name,
        phone=subscriber.phone,
        region=subscriber.region,
        contracts=tuple(_contract(c, subscriber.code) for c in subscriber.contracts.all()),
    )


def _subscribers() -> QuerySet[Subscriber]:
    return Subscriber.objects.prefetch_related(
        Prefetch("contracts", queryset=Contract.objects.select_related("plan").order_by("code"))
    )


class DatabaseDirectory(SubscriberDirectory):
    def find_by_phone(self, phone: str) -> list[SubscriberInfo]:
        if not phone:
            return []
        return [_subscriber(s) for s in _subscribers().filter(phone=phone).order_by("code")]

    def find_by_document(self, document: str) -> SubscriberInfo | None:
        found = (
            _subscribers()
            .filter(document_hash=document_hash(document, purpose=DOCUMENT_PURPOSE))
            .first()
        )
        return _subscriber(found) if found else None

    def get(self, code: str) -> SubscriberInfo | None:
        found = _subscribers().filter(code=code).first()
        return _subscriber(found) if found else None

    def open_invoices(self, subscriber_code: str) -> list[InvoiceInfo]:
        invoices = (
            Invoice.objects.filter(
                contract__subscriber__code=subscriber_code, status=Invoice.Status.OPEN
            )
            .select_related("contract")
            .order_by("due_date", "id")
        )
        return [
            InvoiceInfo(
                code=i.code,
                contract_code=i.contract.code,
                amount=i.amount,
                due_date=i.due_date,
                digitable_line=i.digitable_line,
                pix_code=i.pix_code,
            )
            for i in invoices
        ]

    @transaction.atomic
    def request_trust_unlock(self, contract_code: str) -> UnlockResult:
        contract = Contract.objects.select_for_update().filter(code=contract_code).first()
        if contract is None:
            return UnlockResult("not_found")
        if contract.status == Contract.Status.CANCELLED:
            return UnlockResult("cancelled")
        if contract.trust_unlocked:
            return UnlockResult("already_unlocked", until=contract.trust_unlocked_until)
        if contract.status != Contract.Status.SUSPENDED:
            return UnlockResult("not_suspended")
        if contract.suspension_reason != Contract.SuspensionReason.NON_PAYMENT:
            return UnlockResult("not_for_non_payment")
        now = timezone.now()
        interval = timedelta(days=settings.TRUST_UNLOCK_INTERVAL_DAYS)
        if contract.last_trust_unlock_at and contract.last_trust_unlock_at + interval > now:
            return UnlockResult(
                "used_recently", next_allowed_at=contract.last_trust_unlock_at + interval
            )
        contract.last_trust_unlock_at = now
        contract.trust_unlocked_until = now + timedelta(days=settings.TRUST_UNLOCK_DAYS)
        contract.save(update_fields=["last_trust_unlock_at", "trust_unlocked_until", "updated_at"])
        return UnlockResult("unlocked", until=contract.trust_unlocked_until)

    def open_outages(self, region: str) -> list[OutageInfo]:
        wanted = fold(region)
        if not wanted:
            return []
        # Regions are few and short: fold in Python so "São João" matches
        # "sao joao" on SQLite and PostgreSQL alike without an extension.
        return [
            OutageInfo(
                code=o.code,
                region=o.region,
                title=o.title,
                description=o.description,
                started_at=o.started_at,
                forecast_at=o.forecast_at,
            )
            for o in Outage.objects.filter(resolved_at__isnull=True).order_by("started_at")
            if fold(o.region) == wanted
        ]

"""Rows for the subscribers tests, written straight to the tables (the
document through its service, so it is encrypted as in production)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

from django.utils import timezone

from subscribers import services
from subscribers.models import Contract, Invoice, Outage, Plan, Subscriber

# Valid documents nobody else in the suite uses for subscribers.
CPF = "52998224725"
CPF_TYPED = "529.982.247-25"
OTHER_CPF = "11144477735"
CNPJ = "11222333000181"


def make_plan(
    code: str = "P300", name: str = "Fibra 300 Mega", price: str = "99.90", **fields: object
) -> Plan:
    fields.setdefault("download_mbps", 300)
    fields.setdefault("upload_mbps", 150)
    return Plan.objects.create(code=code, name=name, price=Decimal(price), **fields)


def make_subscriber(
    code: str = "S1",
    name: str = "Maria Souza",
    *,
    phone: str = "+5511988887777",
    region: str = "Centro",
    document: str = "",
    **fields: object,
) -> Subscriber:
    subscriber = Subscriber.objects.create(
        code=code, name=name, phone=phone, region=region, **fields
    )
    if document:
        services.subscriber_set_document(subscriber=subscriber, raw=document)
    return subscriber


def make_contract(
    code: str = "C1",
    *,
    subscriber: Subscriber,
    plan: Plan,
    status: str = Contract.Status.ACTIVE,
    suspension_reason: str = "",
    **fields: object,
) -> Contract:
    return Contract.objects.create(
        code=code,
        subscriber=subscriber,
        plan=plan,
        status=status,
        suspension_reason=suspension_reason,
        **fields,
    )


def make_invoice(
    code: str = "F1",
    *,
    contract: Contract,
    due_date: date,
    amount: str = "99.90",
    status: str = Invoice.Status.OPEN,
    **fields: object,
) -> Invoice:
    return Invoice.objects.create(
        code=code,
        contract=contract,
        amount=Decimal(amount),
        due_date=due_date,
        status=status,
        **fields,
    )


def make_outage(
    code: str = "O1",
    *,
    region: str = "Centro",
    title: str = "Fibra rompida",
    started_at: datetime | None = None,
    **fields: object,
) -> Outage:
    return Outage.objects.create(
        code=code,
        region=region,
        title=title,
        started_at=started_at or timezone.now(),
        **fields,
    )

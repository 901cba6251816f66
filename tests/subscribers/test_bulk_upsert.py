"""The ERP's sync: bulk upserts by code, all items checked before anything is
written, errors reported by item index."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from ispsupport.identity import document_hash
from subscribers import services
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Outage, Plan, Subscriber
from tests.subscribers.factories import (
    CPF,
    CPF_TYPED,
    OTHER_CPF,
    make_contract,
    make_invoice,
    make_outage,
    make_plan,
    make_subscriber,
)

pytestmark = pytest.mark.django_db


def errors_of(call: Any, **kwargs: Any) -> Any:
    """The ``detail`` of the ValidationError the call raises, as plain data."""
    with pytest.raises(ValidationError) as caught:
        call(**kwargs)
    return _plain(caught.value.detail)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return str(value)


# --- The batch as a whole ------------------------------------------------------------


def test_plans_are_created_then_updated_by_code() -> None:
    result = services.plans_upsert(
        items=[
            {"code": "P300", "name": "Fibra 300", "price": "99.90", "download_mbps": 300},
            {"code": "P500", "name": "Fibra 500", "price": 119.9, "upload_mbps": "250"},
        ]
    )

    assert result == {"created": 2, "updated": 0}
    assert list(Plan.objects.order_by("code").values_list("code", "name", "price")) == [
        ("P300", "Fibra 300", Decimal("99.90")),
        ("P500", "Fibra 500", Decimal("119.90")),
    ]

    result = services.plans_upsert(
        items=[
            {"code": "P300", "price": "89.90", "active": False},
            {"code": "P1G", "name": "1 Giga", "price": "199.90"},
        ]
    )

    assert result == {"created": 1, "updated": 1}
    p300 = Plan.objects.get(code="P300")
    # Fields the item leaves out keep their values.
    assert (p300.name, p300.price, p300.download_mbps, p300.active) == (
        "Fibra 300",
        Decimal("89.90"),
        300,
        False,
    )
    assert Plan.objects.count() == 3


def test_one_bad_item_writes_nothing_and_every_error_is_reported_by_index() -> None:
    make_plan("P300", "Fibra 300")

    errors = errors_of(
        services.plans_upsert,
        items=[
            {"code": "P300", "name": "Renamed"},
            {"code": "P500", "name": "Fibra 500", "price": "abc", "download_mbps": "fast"},
            "not an object",
            {"code": "P1G"},
            {"name": "no code", "price": "1.00"},
            {"code": "P300", "name": "Twice"},
            {"code": "P2G", "name": "Fibra 2 Giga", "price": "-1", "active": "maybe"},
        ],
    )

    assert errors == {
        "items": {
            "1": {
                "download_mbps": ["A valid integer is required."],
                "price": ["A valid number is required."],
            },
            "2": {"non_field_errors": ["Invalid data. Expected a dictionary, but got str."]},
            "3": {
                "name": ["This field is required for a new code."],
                "price": ["This field is required for a new code."],
            },
            "4": {"code": ["This field is required."]},
            "5": {"code": ["This code is already item 0 of this call."]},
            "6": {
                "price": ["Ensure this value is greater than or equal to 0."],
                "active": ["Must be a valid boolean."],
            },
        }
    }
    assert list(Plan.objects.values_list("code", "name")) == [("P300", "Fibra 300")]


@pytest.mark.parametrize("items", [None, "x", {"code": "P1"}, 42])
def test_items_must_be_a_list(items: Any) -> None:
    assert errors_of(services.plans_upsert, items=items) == {
        "items": ['Expected a list of items: {"items": [...]}.']
    }


def test_at_most_1000_items_per_call() -> None:
    items = [{"code": f"P{n}", "name": f"Plan {n}", "price": "10.00"} for n in range(1001)]

    assert errors_of(services.plans_upsert, items=items) == {
        "items": ["At most 1000 items per call; this one has 1001. Split it into several calls."]
    }
    assert not Plan.objects.exists()

    assert services.plans_upsert(items=items[:1000]) == {"created": 1000, "updated": 0}


def test_an_empty_batch_changes_nothing() -> None:
    assert services.plans_upsert(items=[]) == {"created": 0, "updated": 0}


# --- Subscribers ----------------------------------------------------------------------


def test_subscribers_phone_is_canonical_and_document_encrypted() -> None:
    result = services.subscribers_upsert(
        items=[
            {
                "code": "S1",
                "name": "Maria Souza",
                "phone": "(11) 8888-7777",
                "document": CPF_TYPED,
                "email": "maria@example.com",
                "region": "Centro",
                "address": "Rua XV, 120",
            },
            {"code": "S2", "name": "João Santos", "phone": "+55 21 97777-6666"},
        ]
    )

    assert result == {"created": 2, "updated": 0}
    maria = Subscriber.objects.get(code="S1")
    # Typed without the ninth digit: stored with it, as WhatsApp and the ERP meet.
    assert (maria.phone, maria.email, maria.region, maria.address) == (
        "+5511988887777",
        "maria@example.com",
        "Centro",
        "Rua XV, 120",
    )
    assert CPF not in maria.document_encrypted
    assert maria.document == CPF
    assert maria.document_hash == document_hash(CPF, purpose=DOCUMENT_PURPOSE)
    joao = Subscriber.objects.get(code="S2")
    assert (joao.phone, joao.document_encrypted, joao.document_hash) == ("+5521977776666", "", None)


def test_a_document_left_out_is_kept_and_an_empty_one_removed() -> None:
    make_subscriber("S1", document=CPF)
    make_subscriber("S2", "João Santos", document=OTHER_CPF)

    result = services.subscribers_upsert(
        items=[{"code": "S1", "name": "Maria S. Souza"}, {"code": "S2", "document": ""}]
    )

    assert result == {"created": 0, "updated": 2}
    maria, joao = Subscriber.objects.order_by("code")
    assert (maria.name, maria.document) == ("Maria S. Souza", CPF)
    assert (joao.name, joao.document, joao.document_hash) == ("João Santos", "", None)


def test_subscriber_errors_name_the_field() -> None:
    make_subscriber("S1", document=CPF)

    errors = errors_of(
        services.subscribers_upsert,
        items=[
            {"code": "S2", "name": "Ana", "document": CPF},
            {"code": "S3", "name": "Bia", "document": "111.111.111-11", "phone": "123"},
            {"code": "S4", "name": "Caio", "document": OTHER_CPF},
            {"code": "S5", "name": "Davi", "document": OTHER_CPF, "email": "not-mail"},
            {"code": "S/6", "name": "Eva", "phone": ["+5511988887777"]},
        ],
    )

    assert errors == {
        "items": {
            "0": {"document": ["Another subscriber already has this CPF/CNPJ."]},
            "1": {
                "document": ["Enter a valid CPF or CNPJ."],
                "phone": ["Enter a valid phone number, e.g. +55 11 98888-7777."],
            },
            "3": {"email": ["Enter a valid email address."]},
            "4": {"code": ["A code cannot contain '/'."], "phone": ["Not a valid string."]},
        }
    }
    assert list(Subscriber.objects.values_list("code", flat=True)) == ["S1"]


def test_two_items_of_one_call_cannot_share_a_document() -> None:
    errors = errors_of(
        services.subscribers_upsert,
        items=[
            {"code": "S1", "name": "Ana", "document": CPF},
            {"code": "S2", "name": "Bia", "document": CPF_TYPED},
        ],
    )

    assert errors == {
        "items": {"1": {"document": ["Another subscriber already has this CPF/CNPJ."]}}
    }
    assert not Subscriber.objects.exists()


# --- Contracts ------------------------------------------------------------------------


def test_contracts_name_their_subscriber_and_plan_by_code() -> None:
    maria = make_subscriber("S1")
    plan = make_plan("P300")
    make_plan("P500", "Fibra 500", "119.90")

    result = services.contracts_upsert(
        items=[
            {"code": "C1", "subscriber": "S1", "plan": "P300", "address": "Rua XV, 120"},
            {
                "code": "C2",
                "subscriber": "S1",
                "plan": "P500",
                "status": "suspended",
                "suspension_reason": "non_payment",
            },
        ]
    )

    assert result == {"created": 2, "updated": 0}
    assert list(
        Contract.objects.order_by("code").values_list(
            "code", "subscriber", "plan", "status", "suspension_reason", "address"
        )
    ) == [
        ("C1", maria.pk, plan.pk, "active", "", "Rua XV, 120"),
        ("C2", maria.pk, Plan.objects.get(code="P500").pk, "suspended", "non_payment", ""),
    ]


def test_contract_references_and_statuses_are_checked() -> None:
    make_subscriber("S1")
    make_plan("P300")

    errors = errors_of(
        services.contracts_upsert,
        items=[
            {"code": "C1", "subscriber": "S9", "plan": "P9"},
            {"code": "C2", "plan": "P300"},
            {"code": "C3", "subscriber": "S1", "plan": "P300", "status": "paused"},
            {"code": "C4", "subscriber": "S1", "plan": "P300", "suspension_reason": "non_payment"},
            {"code": "C5", "subscriber": "S1", "plan": "P300", "suspension_reason": "bored"},
        ],
    )

    assert errors == {
        "items": {
            "0": {
                "subscriber": ["No subscriber has the code S9."],
                "plan": ["No plan has the code P9."],
            },
            "1": {"subscriber": ["This field is required for a new code."]},
            "2": {"status": ['"paused" is not a valid choice.']},
            "3": {
                "suspension_reason": [
                    "A suspension reason is only allowed with the status suspended."
                ]
            },
            "4": {"suspension_reason": ['"bored" is not a valid choice.']},
        }
    }
    assert not Contract.objects.exists()


def test_a_reactivated_contract_loses_its_suspension_and_trust_unlock() -> None:
    now = timezone.now()
    contract = make_contract(
        subscriber=make_subscriber(),
        plan=make_plan(),
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
        trust_unlocked_until=now + timedelta(days=2),
        last_trust_unlock_at=now - timedelta(days=1),
    )

    assert services.contracts_upsert(items=[{"code": "C1", "status": "active"}]) == {
        "created": 0,
        "updated": 1,
    }

    contract.refresh_from_db()
    assert (contract.status, contract.suspension_reason, contract.trust_unlocked_until) == (
        "active",
        "",
        None,
    )
    # The last unlock still counts against the next one.
    assert contract.last_trust_unlock_at is not None


def test_a_suspended_contract_keeps_its_reason_when_the_item_leaves_it_out() -> None:
    contract = make_contract(
        subscriber=make_subscriber(),
        plan=make_plan(),
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
    )

    services.contracts_upsert(items=[{"code": "C1", "address": "Rua Nova, 1"}])

    contract.refresh_from_db()
    assert (contract.status, contract.suspension_reason, contract.address) == (
        "suspended",
        "non_payment",
        "Rua Nova, 1",
    )


# --- Invoices -------------------------------------------------------------------------


@pytest.fixture
def contract() -> Contract:
    return make_contract(subscriber=make_subscriber(), plan=make_plan())


def test_invoices_are_written_with_their_contract(contract: Contract) -> None:
    result = services.invoices_upsert(
        items=[
            {
                "code": "F1",
                "contract": "C1",
                "amount": "99.90",
                "due_date": "2030-01-10",
                "digitable_line": "34191090080000018800301123456707416160000009990",
                "pix_code": "00020126...",
            }
        ]
    )

    assert result == {"created": 1, "updated": 0}
    invoice = Invoice.objects.get()
    assert (
        invoice.contract,
        invoice.amount,
        invoice.due_date,
        invoice.status,
        invoice.paid_at,
        invoice.digitable_line,
    ) == (
        contract,
        Decimal("99.90"),
        date(2030, 1, 10),
        "open",
        None,
        "34191090080000018800301123456707416160000009990",
    )


def test_an_invoice_that_becomes_paid_is_paid_now_unless_told_when(contract: Contract) -> None:
    make_invoice("F1", contract=contract, due_date=date(2030, 1, 10))
    make_invoice("F2", contract=contract, due_date=date(2030, 2, 10))
    before = timezone.now()

    services.invoices_upsert(
        items=[
            {"code": "F1", "status": "paid"},
            {"code": "F2", "status": "paid", "paid_at": "2030-02-08T14:30:00-03:00"},
        ]
    )

    first, second = Invoice.objects.order_by("code")
    assert first.status == "paid" and first.paid_at is not None and first.paid_at >= before
    assert second.paid_at.isoformat() == "2030-02-08T17:30:00+00:00"

    # Sent again (the nightly sync): the payment date stays.
    paid_at = first.paid_at
    services.invoices_upsert(items=[{"code": "F1", "status": "paid", "amount": "99.90"}])
    first.refresh_from_db()
    assert first.paid_at == paid_at

    # A payment reversed: open again, without a payment date.
    services.invoices_upsert(items=[{"code": "F1", "status": "open"}])
    first.refresh_from_db()
    assert (first.status, first.paid_at) == ("open", None)


def test_invoice_errors_name_the_field(contract: Contract) -> None:
    errors = errors_of(
        services.invoices_upsert,
        items=[
            {"code": "F1", "contract": "C9", "amount": "1.00", "due_date": "2030-01-10"},
            {"code": "F2", "contract": "C1", "amount": "1.999", "due_date": "10/01/2030"},
            {
                "code": "F3",
                "contract": "C1",
                "amount": "1",
                "due_date": "2030-01-10",
                "status": "late",
            },
            {
                "code": "F4",
                "contract": "C1",
                "amount": "1",
                "due_date": "2030-01-10",
                "paid_at": "2030-01-09T10:00:00Z",
            },
            {"code": "F5", "contract": "C1"},
        ],
    )

    assert errors == {
        "items": {
            "0": {"contract": ["No contract has the code C9."]},
            "1": {
                "amount": ["Ensure that there are no more than 2 decimal places."],
                "due_date": [
                    "Date has wrong format. Use one of these formats instead: YYYY-MM-DD."
                ],
            },
            "2": {"status": ['"late" is not a valid choice.']},
            "3": {"paid_at": ["Only a paid invoice has a payment date."]},
            "4": {
                "amount": ["This field is required for a new code."],
                "due_date": ["This field is required for a new code."],
            },
        }
    }
    assert not Invoice.objects.exists()


# --- Outages --------------------------------------------------------------------------


def test_outages_are_opened_and_closed_by_the_sync() -> None:
    before = timezone.now()

    services.outages_upsert(
        items=[
            {
                "code": "O1",
                "region": "Jardim América",
                "title": "Fibra rompida",
                "forecast_at": "2999-01-01T12:00:00Z",
            }
        ]
    )

    outage = Outage.objects.get()
    assert outage.is_open and outage.started_at >= before
    assert (outage.region, outage.title, outage.forecast_at.year) == (
        "Jardim América",
        "Fibra rompida",
        2999,
    )

    resolved = timezone.now()
    services.outages_upsert(items=[{"code": "O1", "resolved_at": resolved.isoformat()}])
    outage.refresh_from_db()
    assert outage.resolved_at == resolved
    assert outage.title == "Fibra rompida"

    services.outages_upsert(items=[{"code": "O1", "resolved_at": None}])
    outage.refresh_from_db()
    assert outage.is_open


def test_an_outage_cannot_end_before_it_started() -> None:
    make_outage("O1", started_at=timezone.now())

    errors = errors_of(
        services.outages_upsert,
        items=[
            {"code": "O1", "resolved_at": "2000-01-01T00:00:00Z"},
            {"code": "O2", "title": "Sem região"},
            {
                "code": "O3",
                "region": "Centro",
                "title": "Queda",
                "started_at": "2030-01-01T10:00:00Z",
                "forecast_at": "2030-01-01T09:00:00Z",
            },
        ],
    )

    assert errors == {
        "items": {
            "0": {"resolved_at": ["This is before the outage started."]},
            "1": {"region": ["This field is required for a new code."]},
            "2": {"forecast_at": ["This is before the outage started."]},
        }
    }
    assert Outage.objects.get().is_open


# --- outage_resolve -------------------------------------------------------------------


def test_outage_resolve_closes_it_once() -> None:
    outage = make_outage(started_at=timezone.now() - timedelta(hours=2))
    at = timezone.now() - timedelta(minutes=5)

    services.outage_resolve(outage=outage, at=at)
    services.outage_resolve(outage=outage)

    outage.refresh_from_db()
    assert outage.resolved_at == at


def test_outage_resolve_defaults_to_now() -> None:
    outage = make_outage(started_at=timezone.now() - timedelta(hours=2))
    before = timezone.now()

    services.outage_resolve(outage=outage)

    outage.refresh_from_db()
    assert outage.resolved_at is not None and outage.resolved_at >= before

"""manage.py seed_subscribers: believable demo customers for trying the bot,
safe to run again, and a --reset that only touches DEMO- rows."""

from __future__ import annotations

import re
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.utils import timezone
from validate_docbr import CPF

from ispsupport.identity import canonical_phone
from subscribers.builtin import DatabaseDirectory
from subscribers.management.commands.seed_subscribers import _crc16
from subscribers.models import Contract, Invoice, Outage, Plan, Subscriber
from tests.subscribers.factories import make_contract, make_invoice, make_plan, make_subscriber

pytestmark = pytest.mark.django_db


def seed(*args: str, **options: Any) -> str:
    out = StringIO()
    call_command("seed_subscribers", *args, stdout=out, **options)
    return out.getvalue()


def counts() -> tuple[int, ...]:
    return tuple(model.objects.count() for model in (Plan, Subscriber, Contract, Invoice, Outage))


def test_the_demo_has_plans_subscribers_contracts_invoices_and_an_outage() -> None:
    output = seed()

    assert counts() == (3, 6, 7, 12, 2)
    assert list(Plan.objects.values_list("name", "price")) == [
        ("Fibra 300 Mega", Decimal("99.90")),
        ("Fibra 500 Mega", Decimal("119.90")),
        ("Fibra 1 Giga", Decimal("199.90")),
    ]
    for subscriber in Subscriber.objects.all():
        assert subscriber.code.startswith("DEMO-")
        assert CPF().validate(subscriber.document)
        assert canonical_phone(subscriber.phone) == subscriber.phone
        assert re.fullmatch(r"\+55119\d{8}", subscriber.phone)
        # Printed so a person can be them in the simulator.
        assert subscriber.phone in output
        assert CPF().mask(subscriber.document) in output
    assert "Demo subscribers ready: plans 3 new/0 refreshed" in output


def test_every_active_contract_has_an_open_invoice_due_soon() -> None:
    seed()
    today = timezone.localdate()

    for contract in Contract.objects.filter(status="active"):
        open_ones = contract.invoices.filter(status="open")
        assert [i.due_date > today for i in open_ones] == [True]


def test_one_contract_is_suspended_for_non_payment_with_an_overdue_invoice() -> None:
    seed()

    [suspended] = Contract.objects.filter(status="suspended")
    assert suspended.suspension_reason == "non_payment"
    invoices = DatabaseDirectory().open_invoices(suspended.subscriber.code)
    assert [i.overdue for i in invoices] == [True]
    assert DatabaseDirectory().request_trust_unlock(suspended.code).outcome == "unlocked"
    assert Contract.objects.filter(status="cancelled").count() == 1


def test_invoices_carry_well_formed_boletos_and_pix_codes() -> None:
    seed()

    for invoice in Invoice.objects.all():
        assert re.fullmatch(r"\d{47}", invoice.digitable_line)
        assert invoice.pix_code.startswith("000201")
        assert f"54{len(str(invoice.amount)):02d}{invoice.amount}" in invoice.pix_code
        assert "DEMO" in invoice.pix_code
        body, crc = invoice.pix_code[:-4], invoice.pix_code[-4:]
        assert body.endswith("6304") and crc == _crc16(body)
        assert (invoice.paid_at is not None) == (invoice.status == "paid")


def test_an_outage_is_open_in_jardim_america_for_a_few_hours() -> None:
    seed()
    now = timezone.now()

    [outage] = DatabaseDirectory().open_outages("jardim america")

    assert outage.started_at is not None and outage.started_at < now
    assert outage.forecast_at is not None
    assert 1 < (outage.forecast_at - now).total_seconds() / 3600 <= 3
    assert [s.code for s in DatabaseDirectory().find_by_phone("+5511987650002")] == ["DEMO-SUB-002"]


def test_two_demo_subscribers_share_a_phone() -> None:
    seed()

    found = DatabaseDirectory().find_by_phone("+5511987650001")

    assert [s.name for s in found] == ["Maria Aparecida Souza", "Lucas Souza"]


def test_running_it_again_adds_nothing() -> None:
    seed()
    Outage.objects.filter(code="DEMO-OUT-001").update(resolved_at=timezone.now())

    output = seed()

    assert counts() == (3, 6, 7, 12, 2)
    assert (
        "Demo subscribers ready: plans 0 new/3 refreshed, subscribers 0 new/6 refreshed, "
        "contracts 0 new/7 refreshed, invoices 0 new/12 refreshed, outages 0 new/2 refreshed."
    ) in output
    # Back to the demo's story: the outage is open again.
    assert Outage.objects.get(code="DEMO-OUT-001").is_open


def test_reset_without_commit_only_reports() -> None:
    seed()

    output = seed(reset=True)

    assert output.strip() == (
        "--reset would delete 12 invoices, 7 contracts, 6 subscribers, 3 plans and 2 outages "
        "of the demo (code DEMO-…). Nothing deleted: add --commit to do it."
    )
    assert counts() == (3, 6, 7, 12, 2)


def test_reset_deletes_only_demo_rows_and_seeds_again() -> None:
    seed()
    real = make_subscriber("ERP-1", "Cliente Real", phone="+5511911112222")
    make_contract("ERP-C1", subscriber=real, plan=make_plan("ERP-P1"))
    # A real invoice on a demo contract keeps that contract, its subscriber and plan.
    demo_contract = Contract.objects.get(code="DEMO-CT-004")
    make_invoice("ERP-F1", contract=demo_contract, due_date=timezone.localdate())
    Subscriber.objects.filter(code="DEMO-SUB-002").update(name="Changed")

    output = seed(reset=True, commit=True)

    assert "Reset: deleted 12 invoices, 6 contracts, 5 subscribers, 2 plans and 2 outages" in output
    assert Subscriber.objects.filter(code="ERP-1").exists()
    assert Invoice.objects.filter(code="ERP-F1", contract__code="DEMO-CT-004").exists()
    # Seeded afresh after the reset.
    assert Subscriber.objects.get(code="DEMO-SUB-002").name == "João Pedro Santos"
    assert counts() == (4, 7, 8, 13, 2)


def test_seed_demo_seeds_the_subscribers_too(settings: Any) -> None:
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    out = StringIO()

    call_command("seed_demo", conversations=0, password="Demo-Senha-2024x", stdout=out)
    call_command("seed_demo", conversations=0, reset=True, stdout=out)

    assert counts() == (3, 6, 7, 12, 2)
    assert "Demo subscribers ready:" in out.getvalue()
    assert "--reset would delete 12 invoices" in out.getvalue()

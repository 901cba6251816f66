"""Django admin for the customer records: every page loads, the CPF/CNPJ is
typed into a write-only field and only ever shown masked, outages are
resolved through the service."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from ispsupport.identity import document_hash
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Subscriber
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

ADMIN = "/admin/subscribers"
# The inline formset of contracts on the subscriber page, left empty.
NO_CONTRACTS = {
    "contracts-TOTAL_FORMS": "0",
    "contracts-INITIAL_FORMS": "0",
    "contracts-MIN_NUM_FORMS": "0",
    "contracts-MAX_NUM_FORMS": "1000",
}


@pytest.fixture
def world() -> dict[str, Any]:
    """One of each row, so every change page has something to show."""
    plan = make_plan()
    subscriber = make_subscriber(document=CPF)
    contract = make_contract(
        subscriber=subscriber,
        plan=plan,
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
        trust_unlocked_until=timezone.now() + timedelta(days=1),
    )
    invoice = make_invoice(contract=contract, due_date=timezone.localdate())
    outage = make_outage()
    return {
        "plan": plan,
        "subscriber": subscriber,
        "contract": contract,
        "invoice": invoice,
        "outage": outage,
    }


def listed(response: HttpResponse) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


@pytest.mark.parametrize("model", ["plan", "subscriber", "contract", "invoice", "outage"])
def test_every_page_loads(root_client: Client, world: dict[str, Any], model: str) -> None:
    row = world[model]

    assert root_client.get(f"{ADMIN}/{model}/").status_code == 200
    assert root_client.get(f"{ADMIN}/{model}/{row.pk}/change/").status_code == 200
    assert root_client.get(f"{ADMIN}/{model}/add/").status_code == 200


def test_the_document_is_shown_masked_never_in_clear(
    root_client: Client, world: dict[str, Any]
) -> None:
    subscriber = world["subscriber"]

    changelist = root_client.get(f"{ADMIN}/subscriber/").content.decode()
    change = root_client.get(f"{ADMIN}/subscriber/{subscriber.pk}/change/").content.decode()

    for page in (changelist, change):
        assert "***.982.247-**" in page
        assert CPF not in page and CPF_TYPED not in page


def test_a_document_typed_in_admin_is_stored_encrypted(root_client: Client) -> None:
    response = root_client.post(
        f"{ADMIN}/subscriber/add/",
        {
            "code": "S9",
            "name": "Joana Dias",
            "phone": "(11) 8888-7777",
            "email": "",
            "region": "Centro",
            "address": "",
            "document": CPF_TYPED,
            **NO_CONTRACTS,
        },
    )

    assert response.status_code == 302, response.context["adminform"].form.errors
    subscriber = Subscriber.objects.get(code="S9")
    assert subscriber.phone == "+5511988887777"
    assert CPF not in subscriber.document_encrypted
    assert subscriber.document == CPF
    assert subscriber.document_hash == document_hash(CPF, purpose=DOCUMENT_PURPOSE)


def test_a_document_left_empty_is_kept_and_remove_clears_it(
    root_client: Client, world: dict[str, Any]
) -> None:
    subscriber = world["subscriber"]
    form = {
        "code": subscriber.code,
        "name": "Maria S. Souza",
        "phone": subscriber.phone,
        "email": "",
        "region": subscriber.region,
        "address": "",
        "document": "",
        "contracts-TOTAL_FORMS": "1",
        "contracts-INITIAL_FORMS": "1",
        "contracts-MIN_NUM_FORMS": "0",
        "contracts-MAX_NUM_FORMS": "1000",
        "contracts-0-id": str(world["contract"].pk),
        "contracts-0-subscriber": str(subscriber.pk),
        "contracts-0-code": "C1",
        "contracts-0-plan": str(world["plan"].pk),
        "contracts-0-status": "suspended",
        "contracts-0-suspension_reason": "non_payment",
        "contracts-0-address": "",
    }

    kept = root_client.post(f"{ADMIN}/subscriber/{subscriber.pk}/change/", form)

    assert kept.status_code == 302
    subscriber.refresh_from_db()
    assert (subscriber.name, subscriber.document) == ("Maria S. Souza", CPF)

    cleared = root_client.post(
        f"{ADMIN}/subscriber/{subscriber.pk}/change/", {**form, "clear_document": "on"}
    )

    assert cleared.status_code == 302
    subscriber.refresh_from_db()
    assert (subscriber.document_encrypted, subscriber.document_hash) == ("", None)


def test_a_bad_or_taken_document_is_a_form_error(
    root_client: Client, world: dict[str, Any]
) -> None:
    base = {
        "code": "S9",
        "name": "Joana Dias",
        "phone": "",
        "email": "",
        "region": "",
        "address": "",
        **NO_CONTRACTS,
    }

    taken = root_client.post(f"{ADMIN}/subscriber/add/", {**base, "document": CPF_TYPED})
    invalid = root_client.post(f"{ADMIN}/subscriber/add/", {**base, "document": "123"})
    both = root_client.post(
        f"{ADMIN}/subscriber/add/", {**base, "document": OTHER_CPF, "clear_document": "on"}
    )

    assert taken.context["adminform"].form.errors == {
        "document": ["Another subscriber already has this CPF/CNPJ."]
    }
    assert invalid.context["adminform"].form.errors == {"document": ["Enter a valid CPF or CNPJ."]}
    assert both.context["adminform"].form.errors == {
        "document": ["Type a new CPF/CNPJ or tick 'remove', not both."]
    }
    assert not Subscriber.objects.filter(code="S9").exists()


def test_subscribers_are_found_by_cpf_and_by_a_typed_phone(
    root_client: Client, world: dict[str, Any]
) -> None:
    make_subscriber("S2", "Ana Lima", phone="+5521977776666", document=OTHER_CPF)

    by_cpf = listed(root_client.get(f"{ADMIN}/subscriber/", {"q": CPF_TYPED}))
    by_phone = listed(root_client.get(f"{ADMIN}/subscriber/", {"q": "(11) 8888-7777"}))

    assert by_cpf == [world["subscriber"]]
    assert by_phone == [world["subscriber"]]


def test_a_suspension_reason_needs_a_suspended_contract(
    root_client: Client, world: dict[str, Any]
) -> None:
    contract = world["contract"]

    response = root_client.post(
        f"{ADMIN}/contract/{contract.pk}/change/",
        {
            "code": contract.code,
            "subscriber": str(contract.subscriber_id),
            "plan": str(contract.plan_id),
            "address": "",
            "status": "active",
            "suspension_reason": "non_payment",
        },
    )

    assert response.context["adminform"].form.errors == {
        "suspension_reason": ["A suspension reason is only allowed with the status suspended."]
    }
    contract.refresh_from_db()
    assert contract.status == "suspended"


def test_an_invoice_marked_paid_in_admin_gets_a_payment_date(
    root_client: Client, world: dict[str, Any]
) -> None:
    invoice = world["invoice"]
    before = timezone.now()

    response = root_client.post(
        f"{ADMIN}/invoice/{invoice.pk}/change/",
        {
            "code": invoice.code,
            "contract": str(invoice.contract_id),
            "amount": "99.90",
            "due_date": invoice.due_date.isoformat(),
            "status": "paid",
            "paid_at_0": "",
            "paid_at_1": "",
            "digitable_line": "",
            "pix_code": "",
        },
    )

    assert response.status_code == 302
    invoice.refresh_from_db()
    assert invoice.status == "paid"
    assert invoice.paid_at is not None and invoice.paid_at >= before


def test_invoices_are_found_by_the_subscriber_name(
    root_client: Client, world: dict[str, Any]
) -> None:
    other = make_contract("C2", subscriber=make_subscriber("S2", "Ana Lima"), plan=world["plan"])
    make_invoice("F2", contract=other, due_date=timezone.localdate())

    assert listed(root_client.get(f"{ADMIN}/invoice/", {"q": "Maria"})) == [world["invoice"]]
    assert listed(root_client.get(f"{ADMIN}/invoice/", {"q": "C2"})) == [
        Invoice.objects.get(code="F2")
    ]


def test_the_invoice_list_runs_the_same_queries_for_any_number_of_rows(
    root_client: Client, world: dict[str, Any]
) -> None:
    with CaptureQueriesContext(connection) as one:
        listed(root_client.get(f"{ADMIN}/invoice/"))
    for n in range(4):
        contract = make_contract(
            f"C{n + 10}",
            subscriber=make_subscriber(f"S{n + 10}", f"Cliente {n}"),
            plan=make_plan(f"P{n}"),
        )
        make_invoice(f"F{n + 10}", contract=contract, due_date=timezone.localdate())
    with CaptureQueriesContext(connection) as five:
        assert len(listed(root_client.get(f"{ADMIN}/invoice/"))) == 5

    assert len(one) == len(five)


def test_the_resolve_action_closes_open_outages(root_client: Client, world: dict[str, Any]) -> None:
    open_one = world["outage"]
    closed = make_outage(
        "O2",
        started_at=timezone.now() - timedelta(days=2),
        resolved_at=timezone.now() - timedelta(days=1),
    )
    before = timezone.now()

    response = root_client.post(
        f"{ADMIN}/outage/",
        {"action": "resolve", "_selected_action": [open_one.pk, closed.pk]},
        follow=True,
    )

    open_one.refresh_from_db()
    closed_at = closed.resolved_at
    closed.refresh_from_db()
    assert open_one.resolved_at is not None and open_one.resolved_at >= before
    assert closed.resolved_at == closed_at
    assert flashed(response) == [
        ("success", "1 outage resolved."),
        ("warning", "1 outage was already resolved."),
    ]


def test_outages_are_filtered_by_open_or_resolved(
    root_client: Client, world: dict[str, Any]
) -> None:
    closed = make_outage(
        "O2",
        started_at=timezone.now() - timedelta(days=2),
        resolved_at=timezone.now() - timedelta(days=1),
    )

    assert listed(root_client.get(f"{ADMIN}/outage/", {"state": "open"})) == [world["outage"]]
    assert listed(root_client.get(f"{ADMIN}/outage/", {"state": "resolved"})) == [closed]

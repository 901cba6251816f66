"""Subscribers API: admins sync through the bulk endpoints, staff search and
read; nothing a client sends is ever a 500."""

from __future__ import annotations

import json
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework import serializers

from accounts.models import User
from subscribers.directory import DirectoryError
from subscribers.models import Contract, Plan, Subscriber
from tests.subscribers.factories import (
    CPF,
    CPF_TYPED,
    make_contract,
    make_invoice,
    make_outage,
    make_plan,
    make_subscriber,
)
from tests.support import bearer

pytestmark = pytest.mark.django_db

BASE = "/api/v1/subscribers/"
BULK = {
    "plans": f"{BASE}plans/bulk",
    "subscribers": f"{BASE}bulk",
    "contracts": f"{BASE}contracts/bulk",
    "invoices": f"{BASE}invoices/bulk",
    "outages": f"{BASE}outages/bulk",
}
NOT_LOGGED_IN = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}
ONLY_ADMINS = {"detail": "Only administrators may do this.", "code": "permission_denied"}


def call(
    client: Client, method: str, path: str, user: User | None, body: Any = None
) -> HttpResponse:
    """An API call in English with a JWT for ``user`` (none: anonymous); ``body``
    is sent as JSON, or as it is when already bytes."""
    headers = {"Accept-Language": "en", **(bearer(user) if user is not None else {})}
    if body is None:
        return getattr(client, method)(path, headers=headers)
    data = body if isinstance(body, bytes) else json.dumps(body)
    return getattr(client, method)(path, data, content_type="application/json", headers=headers)


def invalid(errors: Any) -> dict[str, Any]:
    return {"detail": "Invalid input.", "code": "invalid", "errors": errors}


def iso(moment: Any) -> str | None:
    return None if moment is None else serializers.DateTimeField().to_representation(moment)


# --- Who may call ------------------------------------------------------------------


@pytest.mark.parametrize("path", list(BULK.values()))
def test_bulk_needs_an_admin(client: Client, agent: User, path: str) -> None:
    anonymous = call(client, "post", path, None, {"items": []})
    as_agent = call(client, "post", path, agent, {"items": []})

    assert (anonymous.status_code, anonymous.json()) == (401, NOT_LOGGED_IN)
    assert (as_agent.status_code, as_agent.json()) == (403, ONLY_ADMINS)


@pytest.mark.parametrize("path", [BASE, f"{BASE}S1", f"{BASE}outages/"])
def test_reading_needs_a_signed_in_staff_member(client: Client, path: str) -> None:
    response = call(client, "get", path, None)

    assert (response.status_code, response.json()) == (401, NOT_LOGGED_IN)


def test_a_deactivated_user_is_turned_away(client: Client, agent: User) -> None:
    headers = bearer(agent)
    agent.is_active = False
    agent.save()

    response = client.get(BASE, headers={"Accept-Language": "en", **headers})

    assert response.status_code == 401


# --- Bulk ------------------------------------------------------------------------------


def test_a_full_sync_through_the_api(client: Client, admin: User) -> None:
    due = (timezone.localdate() + timedelta(days=5)).isoformat()
    steps = [
        ("plans", [{"code": "P300", "name": "Fibra 300 Mega", "price": "99.90"}]),
        (
            "subscribers",
            [{"code": "S1", "name": "Maria Souza", "phone": "11988887777", "document": CPF_TYPED}],
        ),
        ("contracts", [{"code": "C1", "subscriber": "S1", "plan": "P300"}]),
        ("invoices", [{"code": "F1", "contract": "C1", "amount": "99.90", "due_date": due}]),
        ("outages", [{"code": "O1", "region": "Centro", "title": "Fibra rompida"}]),
    ]
    for name, items in steps:
        response = call(client, "post", BULK[name], admin, {"items": items})
        assert (name, response.status_code, response.json()) == (
            name,
            200,
            {"created": 1, "updated": 0},
        )

    again = call(
        client, "post", BULK["plans"], admin, {"items": [{"code": "P300", "price": "89.90"}]}
    )

    assert again.json() == {"created": 0, "updated": 1}
    assert Plan.objects.get().price == Decimal("89.90")
    maria = Subscriber.objects.get()
    assert (maria.phone, maria.document) == ("+5511988887777", CPF)


def test_item_errors_come_back_by_index(client: Client, admin: User) -> None:
    response = call(
        client,
        "post",
        BULK["subscribers"],
        admin,
        {"items": [{"code": "S1", "name": "Ana"}, {"code": "S2", "name": "Bia", "phone": "12"}]},
    )

    assert response.status_code == 400
    assert response.json() == invalid(
        {"items": {"1": {"phone": ["Enter a valid phone number, e.g. +55 11 98888-7777."]}}}
    )
    assert not Subscriber.objects.exists()


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"items": ['This field is required: send {"items": [...]}.']}),
        ([], {"items": ['This field is required: send {"items": [...]}.']}),
        ("just text", {"items": ['This field is required: send {"items": [...]}.']}),
        (12, {"items": ['This field is required: send {"items": [...]}.']}),
        ({"items": "x"}, {"items": ['Expected a list of items: {"items": [...]}.']}),
        ({"items": {"0": {}}}, {"items": ['Expected a list of items: {"items": [...]}.']}),
        ({"items": None}, {"items": ['Expected a list of items: {"items": [...]}.']}),
        (
            {"items": [None, 3, [], {"code": {"a": 1}, "price": [1]}]},
            {
                "items": {
                    "0": {"non_field_errors": ["No data provided"]},
                    "1": {
                        "non_field_errors": ["Invalid data. Expected a dictionary, but got int."]
                    },
                    "2": {
                        "non_field_errors": ["Invalid data. Expected a dictionary, but got list."]
                    },
                    "3": {
                        "code": ["Not a valid string."],
                        "price": ["A valid number is required."],
                    },
                }
            },
        ),
        (
            {
                "items": [
                    {"code": "P1", "name": "x" * 500, "price": "1e400", "download_mbps": 10**12}
                ]
            },
            {
                "items": {
                    "0": {
                        "name": ["Ensure this field has no more than 120 characters."],
                        "price": ["Ensure that there are no more than 10 digits in total."],
                        "download_mbps": ["Ensure this value is less than or equal to 2147483647."],
                    }
                }
            },
        ),
        (
            {"items": [{"code": "P\x001", "name": "Plan", "price": "NaN"}]},
            {
                "items": {
                    "0": {
                        "code": ["Null characters are not allowed."],
                        "price": ["A valid number is required."],
                    }
                }
            },
        ),
    ],
)
def test_garbage_bodies_are_400s(client: Client, admin: User, body: Any, errors: Any) -> None:
    response = call(client, "post", BULK["plans"], admin, body)

    assert (response.status_code, response.json()) == (400, invalid(errors))
    assert not Plan.objects.exists()


def test_malformed_json_is_a_400(client: Client, admin: User) -> None:
    response = call(client, "post", BULK["plans"], admin, b'{"items": [')

    assert response.status_code == 400
    assert response.json()["code"] == "parse_error"


def test_a_form_post_is_a_400(client: Client, admin: User) -> None:
    response = client.post(
        BULK["plans"], {"items": "x"}, headers={"Accept-Language": "en", **bearer(admin)}
    )

    assert (response.status_code, response.json()) == (
        400,
        invalid({"items": ['Expected a list of items: {"items": [...]}.']}),
    )


def test_more_than_1000_items_is_a_400(client: Client, admin: User) -> None:
    items = [{"code": f"P{n}"} for n in range(1001)]

    response = call(client, "post", BULK["plans"], admin, {"items": items})

    assert (response.status_code, response.json()) == (
        400,
        invalid(
            {
                "items": [
                    "At most 1000 items per call; this one has 1001. Split it into several calls."
                ]
            }
        ),
    )


# --- Reading ---------------------------------------------------------------------------


@pytest.fixture
def maria() -> Subscriber:
    maria = make_subscriber(
        "S1", "Maria Souza", phone="+5511988887777", region="Jardim América", document=CPF
    )
    make_contract(
        "C1",
        subscriber=maria,
        plan=make_plan("P300", "Fibra 300 Mega"),
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
        trust_unlocked_until=timezone.now() + timedelta(days=2),
        address="Rua das Acácias, 45",
    )
    return maria


def contract_json(contract: Contract) -> dict[str, Any]:
    return {
        "code": contract.code,
        "plan": {
            "code": contract.plan.code,
            "name": contract.plan.name,
            "download_mbps": contract.plan.download_mbps,
            "upload_mbps": contract.plan.upload_mbps,
            "price": f"{contract.plan.price:.2f}",
        },
        "status": contract.status,
        "suspension_reason": contract.suspension_reason,
        "address": contract.address,
        "trust_unlocked_until": iso(contract.trust_unlocked_until),
    }


def test_the_list_shows_subscribers_with_masked_documents(
    client: Client, agent: User, maria: Subscriber
) -> None:
    make_subscriber("S2", "Ana Lima", phone="+5521977776666", region="Centro")

    response = call(client, "get", BASE, agent)

    assert response.status_code == 200
    contract = Contract.objects.select_related("plan").get()
    assert response.json() == {
        "count": 2,
        "next": None,
        "previous": None,
        "results": [
            {
                "code": "S2",
                "name": "Ana Lima",
                "phone": "+5521977776666",
                "region": "Centro",
                "document_masked": "",
                "contracts": [],
            },
            {
                "code": "S1",
                "name": "Maria Souza",
                "phone": "+5511988887777",
                "region": "Jardim América",
                "document_masked": "***.982.247-**",
                "contracts": [contract_json(contract)],
            },
        ],
    }
    assert CPF not in response.content.decode()


@pytest.mark.parametrize(
    "q",
    [CPF_TYPED, CPF, "Souza", "maria", "S1", "98888-7777", "(11) 8888-7777", "+55 11 98888 7777"],
)
def test_search_finds_by_name_code_phone_or_document(
    client: Client, agent: User, maria: Subscriber, q: str
) -> None:
    make_subscriber("S2", "Ana Lima", phone="+5521977776666", document="11144477735")

    response = call(client, "get", f"{BASE}?q={q}", agent)

    assert [s["code"] for s in response.json()["results"]] == ["S1"]


def test_search_without_a_match_is_empty(client: Client, agent: User, maria: Subscriber) -> None:
    response = call(client, "get", f"{BASE}?q=39053344705", agent)

    assert response.json()["results"] == []


def test_a_bad_search_is_a_400(client: Client, agent: User) -> None:
    response = call(client, "get", f"{BASE}?q={'x' * 201}", agent)

    assert response.status_code == 400
    assert response.json() == invalid({"q": ["Ensure this field has no more than 200 characters."]})


def test_an_expired_trust_unlock_is_not_shown(
    client: Client, agent: User, maria: Subscriber
) -> None:
    Contract.objects.update(trust_unlocked_until=timezone.now() - timedelta(minutes=1))

    response = call(client, "get", BASE, agent)

    assert response.json()["results"][0]["contracts"][0]["trust_unlocked_until"] is None


# The session, its user, the count, the page, its contracts with their plans.
LIST_QUERIES = 5


def make_many(count: int) -> None:
    plan = Plan.objects.get_or_create(code="P", defaults={"name": "P", "price": 1})[0]
    start = Subscriber.objects.count()
    for n in range(start, start + count):
        subscriber = make_subscriber(f"S{n:03d}", f"Cliente {n}", phone=f"+55119{n:08d}")
        make_contract(f"C{n:03d}a", subscriber=subscriber, plan=plan)
        make_contract(f"C{n:03d}b", subscriber=subscriber, plan=plan)


def test_the_list_runs_the_same_queries_for_1_or_5_subscribers(client: Client, agent: User) -> None:
    client.force_login(agent)
    make_many(1)
    with CaptureQueriesContext(connection) as one:
        assert len(client.get(BASE).json()["results"]) == 1
    make_many(4)
    with CaptureQueriesContext(connection) as five:
        assert len(client.get(BASE).json()["results"]) == 5

    assert len(one) == len(five) == LIST_QUERIES


def test_the_detail_shows_contracts_open_invoices_and_outages(
    client: Client, agent: User, maria: Subscriber
) -> None:
    today = timezone.localdate()
    contract = Contract.objects.select_related("plan").get()
    make_invoice("F-PAID", contract=contract, due_date=today - timedelta(days=40), status="paid")
    make_invoice(
        "F-LATE",
        contract=contract,
        due_date=today - timedelta(days=10),
        digitable_line="34191090080000018800301123456707416160000009990",
        pix_code="000201demo",
    )
    make_invoice("F-NEXT", contract=contract, due_date=today + timedelta(days=20), amount="119.90")
    outage = make_outage(
        "O1",
        region="jardim america",
        title="Fibra rompida",
        started_at=timezone.now() - timedelta(hours=1),
        forecast_at=timezone.now() + timedelta(hours=3),
    )
    make_outage("O2", region="Centro", title="Noutro bairro")

    response = call(client, "get", f"{BASE}S1", agent)

    assert response.status_code == 200
    assert response.json() == {
        "code": "S1",
        "name": "Maria Souza",
        "phone": "+5511988887777",
        "region": "Jardim América",
        "document_masked": "***.982.247-**",
        "contracts": [contract_json(contract)],
        "open_invoices": [
            {
                "code": "F-LATE",
                "contract": "C1",
                "amount": "99.90",
                "due_date": (today - timedelta(days=10)).isoformat(),
                "digitable_line": "34191090080000018800301123456707416160000009990",
                "pix_code": "000201demo",
                "overdue": True,
            },
            {
                "code": "F-NEXT",
                "contract": "C1",
                "amount": "119.90",
                "due_date": (today + timedelta(days=20)).isoformat(),
                "digitable_line": "",
                "pix_code": "",
                "overdue": False,
            },
        ],
        "outages": [
            {
                "code": "O1",
                "region": "jardim america",
                "title": "Fibra rompida",
                "description": "",
                "started_at": iso(outage.started_at),
                "forecast_at": iso(outage.forecast_at),
            }
        ],
    }


def test_an_unknown_subscriber_is_a_404(client: Client, agent: User) -> None:
    response = call(client, "get", f"{BASE}S404", agent)

    assert (response.status_code, response.json()) == (
        404,
        {"detail": "No such subscriber.", "code": "not_found"},
    )


class FailingDirectory:
    """An ERP that is down."""

    def get(self, code: str) -> None:
        raise DirectoryError("ERP timed out")


def test_a_failing_directory_is_a_503(client: Client, agent: User, settings: Any) -> None:
    settings.SUBSCRIBER_DIRECTORY = "tests.subscribers.test_api.FailingDirectory"

    response = call(client, "get", f"{BASE}S1", agent)

    assert (response.status_code, response.json()) == (
        503,
        {
            "detail": "The subscriber directory is not answering; try again in a moment.",
            "code": "directory_unavailable",
        },
    )


def test_the_outage_list_shows_only_open_ones(client: Client, agent: User) -> None:
    now = timezone.now()
    older = make_outage("O1", region="Centro", title="Queda", started_at=now - timedelta(hours=5))
    newer = make_outage(
        "O2", region="Vila Nova", title="Fibra", started_at=now - timedelta(hours=1)
    )
    make_outage("O3", started_at=now - timedelta(days=2), resolved_at=now - timedelta(days=1))

    response = call(client, "get", f"{BASE}outages/", agent)

    assert response.status_code == 200
    assert [o["code"] for o in response.json()["results"]] == ["O2", "O1"]
    assert response.json()["results"][1] == {
        "code": "O1",
        "region": "Centro",
        "title": "Queda",
        "description": "",
        "started_at": iso(older.started_at),
        "forecast_at": None,
    }
    assert newer.is_open

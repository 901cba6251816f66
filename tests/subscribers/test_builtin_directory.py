"""The built-in directory (this app's tables) keeps the directory contract."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

import pytest
from django.utils import timezone

from subscribers.builtin import DatabaseDirectory
from subscribers.directory import SubscriberDirectory, get_directory
from subscribers.models import Contract, Plan, Subscriber
from tests.subscribers.contract import DirectoryContract
from tests.subscribers.factories import make_contract, make_invoice, make_outage, make_subscriber

pytestmark = pytest.mark.django_db


class TestDatabaseDirectory(DirectoryContract):
    def directory(self) -> SubscriberDirectory:
        return DatabaseDirectory()

    def given_plan(
        self, *, code: str, name: str, download_mbps: int, upload_mbps: int, price: Decimal
    ) -> None:
        Plan.objects.create(
            code=code,
            name=name,
            download_mbps=download_mbps,
            upload_mbps=upload_mbps,
            price=price,
        )

    def given_subscriber(
        self, *, code: str, name: str, phone: str = "", region: str = "", document: str = ""
    ) -> None:
        make_subscriber(code, name, phone=phone, region=region, document=document)

    def given_contract(
        self,
        *,
        code: str,
        subscriber: str,
        plan: str,
        status: str = "active",
        suspension_reason: str = "",
        address: str = "",
        trust_unlocked_until: datetime | None = None,
        last_trust_unlock_at: datetime | None = None,
    ) -> None:
        make_contract(
            code,
            subscriber=Subscriber.objects.get(code=subscriber),
            plan=Plan.objects.get(code=plan),
            status=status,
            suspension_reason=suspension_reason,
            address=address,
            trust_unlocked_until=trust_unlocked_until,
            last_trust_unlock_at=last_trust_unlock_at,
        )

    def given_invoice(
        self,
        *,
        code: str,
        contract: str,
        amount: Decimal,
        due_date: date,
        status: str = "open",
        digitable_line: str = "",
        pix_code: str = "",
    ) -> None:
        make_invoice(
            code,
            contract=Contract.objects.get(code=contract),
            amount=str(amount),
            due_date=due_date,
            status=status,
            digitable_line=digitable_line,
            pix_code=pix_code,
        )

    def given_outage(
        self,
        *,
        code: str,
        region: str,
        title: str,
        description: str = "",
        started_at: datetime | None = None,
        forecast_at: datetime | None = None,
        resolved_at: datetime | None = None,
    ) -> None:
        make_outage(
            code,
            region=region,
            title=title,
            description=description,
            started_at=started_at or timezone.now(),
            forecast_at=forecast_at,
            resolved_at=resolved_at,
        )


def test_the_built_in_directory_is_the_default() -> None:
    assert isinstance(get_directory(), DatabaseDirectory)


def test_the_unlock_lasts_the_configured_days(settings: object) -> None:
    settings.TRUST_UNLOCK_DAYS = 5  # type: ignore[attr-defined]
    make_contract(
        "C1",
        subscriber=make_subscriber(),
        plan=Plan.objects.create(code="P", name="P", price=Decimal("1")),
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
    )
    before = timezone.now()

    result = DatabaseDirectory().request_trust_unlock("C1")

    contract = Contract.objects.get(code="C1")
    assert result.until == contract.trust_unlocked_until
    assert contract.last_trust_unlock_at is not None
    assert contract.last_trust_unlock_at >= before
    assert round((contract.trust_unlocked_until - contract.last_trust_unlock_at).days) == 5

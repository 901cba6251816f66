"""The behaviour every ``SubscriberDirectory`` must have, as a reusable test.

The bot and the console only ever talk to a directory, so an ERP adapter (IXC
Soft, SGP, MK-Auth…) is correct when it passes this file. To check one,
subclass ``DirectoryContract`` in a test module of your own, put the known
data in place through the ``given_*`` hooks and return the adapter from
``directory()``:

.. code-block:: python

    # tests/myerp/test_myerp_directory.py
    import pytest
    from tests.subscribers.contract import DirectoryContract
    from myerp.directory import MyErpDirectory

    class TestMyErpDirectory(DirectoryContract):
        @pytest.fixture(autouse=True)
        def _erp(self, fake_erp):          # e.g. a fake ERP API on 127.0.0.1
            self.erp = fake_erp

        def directory(self):
            return MyErpDirectory()

        def given_plan(self, *, code, name, download_mbps, upload_mbps, price):
            self.erp.add_plan(...)
        # ... given_subscriber, given_contract, given_invoice, given_outage

Every test method of this class then runs against the adapter. The hooks
take plain values (documents as digits, phones in E.164, money as Decimal);
each test describes its world through them and asserts only what the
directory returns, so the data may live anywhere. An ERP whose trust-unlock
rules differ still has to report the outcomes below: the hooks receive the
unlock dates (``trust_unlocked_until``, ``last_trust_unlock_at``) so the
adapter's fake can hold a contract in each state.

``tests/subscribers/test_builtin_directory.py`` runs it against the built-in
``DatabaseDirectory``.
"""

from __future__ import annotations

import abc
from datetime import date, datetime, timedelta
from decimal import Decimal

from django.utils import timezone

from subscribers.directory import (
    ContractInfo,
    InvoiceInfo,
    PlanInfo,
    SubscriberDirectory,
    SubscriberInfo,
)

# Valid documents (check digits right), without punctuation as the directory gets them.
CPF_MARIA = "52998224725"
CPF_JOAO = "11144477735"
CPF_NOBODY = "39053344705"
CNPJ_ACME = "11222333000181"


class DirectoryContract(abc.ABC):
    """Subclass as ``Test…`` and implement the hooks; the tests come with it."""

    # --- Hooks an implementation's test provides -----------------------------------

    @abc.abstractmethod
    def directory(self) -> SubscriberDirectory:
        """The implementation under test, seeing what the ``given_*`` hooks put in place."""

    @abc.abstractmethod
    def given_plan(
        self, *, code: str, name: str, download_mbps: int, upload_mbps: int, price: Decimal
    ) -> None: ...

    @abc.abstractmethod
    def given_subscriber(
        self, *, code: str, name: str, phone: str = "", region: str = "", document: str = ""
    ) -> None: ...

    @abc.abstractmethod
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
        """``subscriber`` and ``plan`` are codes given before."""

    @abc.abstractmethod
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
        """``status``: "open", "paid" or "cancelled"."""

    @abc.abstractmethod
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
    ) -> None: ...

    # --- A small world the tests share ----------------------------------------------

    def given_maria(self, **contract: object) -> None:
        """Maria (Centro) with one Fibra 300 contract, C-MARIA; ``contract`` overrides it."""
        self.given_plan(
            code="P300",
            name="Fibra 300 Mega",
            download_mbps=300,
            upload_mbps=150,
            price=Decimal("99.90"),
        )
        self.given_subscriber(
            code="S-MARIA",
            name="Maria Souza",
            phone="+5511988887777",
            region="Centro",
            document=CPF_MARIA,
        )
        self.given_contract(
            **{"code": "C-MARIA", "subscriber": "S-MARIA", "plan": "P300", **contract}  # type: ignore[arg-type]
        )

    def given_maria_suspended(self, **contract: object) -> None:
        self.given_maria(status="suspended", suspension_reason="non_payment", **contract)

    # --- find_by_phone ----------------------------------------------------------------

    def test_find_by_phone_returns_the_subscriber_with_contracts(self) -> None:
        self.given_maria(address="Rua XV de Novembro, 120")

        found = self.directory().find_by_phone("+5511988887777")

        assert found == [
            SubscriberInfo(
                code="S-MARIA",
                name="Maria Souza",
                phone="+5511988887777",
                region="Centro",
                contracts=(
                    ContractInfo(
                        code="C-MARIA",
                        subscriber_code="S-MARIA",
                        plan=PlanInfo(
                            code="P300",
                            name="Fibra 300 Mega",
                            download_mbps=300,
                            upload_mbps=150,
                            price=Decimal("99.90"),
                        ),
                        status="active",
                        suspension_reason="",
                        address="Rua XV de Novembro, 120",
                        trust_unlocked_until=None,
                    ),
                ),
            )
        ]
        assert found[0].first_name == "Maria"

    def test_find_by_phone_returns_everyone_sharing_the_phone(self) -> None:
        self.given_maria()
        self.given_subscriber(code="S-LUCAS", name="Lucas Souza", phone="+5511988887777")
        self.given_subscriber(code="S-JOAO", name="João Santos", phone="+5521977776666")

        found = self.directory().find_by_phone("+5511988887777")

        assert sorted(s.code for s in found) == ["S-LUCAS", "S-MARIA"]

    def test_find_by_phone_without_a_match_is_an_empty_list(self) -> None:
        self.given_maria()

        assert self.directory().find_by_phone("+5511900001111") == []
        assert self.directory().find_by_phone("") == []

    # --- find_by_document -------------------------------------------------------------

    def test_find_by_document_finds_the_holder(self) -> None:
        self.given_maria()
        self.given_subscriber(code="S-JOAO", name="João Santos", document=CPF_JOAO)
        self.given_subscriber(code="S-ACME", name="Acme Ltda", document=CNPJ_ACME)

        maria = self.directory().find_by_document(CPF_MARIA)
        acme = self.directory().find_by_document(CNPJ_ACME)

        assert maria is not None and acme is not None
        assert (maria.code, maria.name) == ("S-MARIA", "Maria Souza")
        assert [c.code for c in maria.contracts] == ["C-MARIA"]
        assert acme.code == "S-ACME"

    def test_find_by_document_without_a_match_is_none(self) -> None:
        self.given_maria()

        assert self.directory().find_by_document(CPF_NOBODY) is None

    # --- get --------------------------------------------------------------------------

    def test_get_returns_every_contract_with_its_plan(self) -> None:
        self.given_maria()
        self.given_plan(
            code="P1G",
            name="Fibra 1 Giga",
            download_mbps=1000,
            upload_mbps=500,
            price=Decimal("199.90"),
        )
        self.given_contract(
            code="C-MARIA-2",
            subscriber="S-MARIA",
            plan="P1G",
            status="suspended",
            suspension_reason="request",
        )

        maria = self.directory().get("S-MARIA")

        assert maria is not None
        contracts = {c.code: c for c in maria.contracts}
        assert set(contracts) == {"C-MARIA", "C-MARIA-2"}
        second = contracts["C-MARIA-2"]
        assert (second.subscriber_code, second.status, second.suspension_reason) == (
            "S-MARIA",
            "suspended",
            "request",
        )
        assert second.plan == PlanInfo(
            code="P1G",
            name="Fibra 1 Giga",
            download_mbps=1000,
            upload_mbps=500,
            price=Decimal("199.90"),
        )
        assert not second.suspended_for_non_payment

    def test_get_an_unknown_code_is_none(self) -> None:
        self.given_maria()

        assert self.directory().get("S-NOBODY") is None

    # --- open_invoices ----------------------------------------------------------------

    def test_open_invoices_oldest_due_first_without_paid_or_cancelled(self) -> None:
        today = timezone.localdate()
        self.given_maria()
        self.given_contract(code="C-MARIA-2", subscriber="S-MARIA", plan="P300")
        self.given_subscriber(code="S-JOAO", name="João Santos")
        self.given_contract(code="C-JOAO", subscriber="S-JOAO", plan="P300")
        self.given_invoice(
            code="F-LATER",
            contract="C-MARIA",
            amount=Decimal("99.90"),
            due_date=today + timedelta(days=20),
            digitable_line="34191090080000018800301123456707416160000009990",
            pix_code="00020126...6304ABCD",
        )
        self.given_invoice(
            code="F-SOON",
            contract="C-MARIA-2",
            amount=Decimal("49.95"),
            due_date=today + timedelta(days=3),
        )
        self.given_invoice(
            code="F-PAID",
            contract="C-MARIA",
            amount=Decimal("99.90"),
            due_date=today - timedelta(days=30),
            status="paid",
        )
        self.given_invoice(
            code="F-CANCELLED",
            contract="C-MARIA",
            amount=Decimal("99.90"),
            due_date=today - timedelta(days=60),
            status="cancelled",
        )
        self.given_invoice(
            code="F-JOAO", contract="C-JOAO", amount=Decimal("99.90"), due_date=today
        )

        invoices = self.directory().open_invoices("S-MARIA")

        assert [i.code for i in invoices] == ["F-SOON", "F-LATER"]
        assert invoices[1] == InvoiceInfo(
            code="F-LATER",
            contract_code="C-MARIA",
            amount=Decimal("99.90"),
            due_date=today + timedelta(days=20),
            digitable_line="34191090080000018800301123456707416160000009990",
            pix_code="00020126...6304ABCD",
        )
        assert invoices[0].amount == Decimal("49.95")

    def test_an_invoice_is_overdue_from_the_day_after_its_due_date(self) -> None:
        today = timezone.localdate()
        self.given_maria()
        for code, days in (("F-YESTERDAY", -1), ("F-TODAY", 0), ("F-TOMORROW", 1)):
            self.given_invoice(
                code=code,
                contract="C-MARIA",
                amount=Decimal("99.90"),
                due_date=today + timedelta(days=days),
            )

        invoices = self.directory().open_invoices("S-MARIA")

        assert [(i.code, i.overdue) for i in invoices] == [
            ("F-YESTERDAY", True),
            ("F-TODAY", False),
            ("F-TOMORROW", False),
        ]

    def test_open_invoices_of_an_unknown_subscriber_is_an_empty_list(self) -> None:
        self.given_maria()

        assert self.directory().open_invoices("S-NOBODY") == []

    # --- request_trust_unlock ---------------------------------------------------------

    def test_a_contract_suspended_for_non_payment_is_unlocked(self) -> None:
        self.given_maria_suspended()
        before = timezone.now()

        result = self.directory().request_trust_unlock("C-MARIA")

        assert result.outcome == "unlocked"
        assert result.granted
        assert result.until is not None and result.until > before
        assert result.next_allowed_at is None
        maria = self.directory().get("S-MARIA")
        assert maria is not None
        assert maria.contracts[0].trust_unlocked_until == result.until

    def test_asking_again_while_unlocked_says_until_when(self) -> None:
        self.given_maria_suspended()
        first = self.directory().request_trust_unlock("C-MARIA")

        again = self.directory().request_trust_unlock("C-MARIA")

        assert (again.outcome, again.until, again.granted) == (
            "already_unlocked",
            first.until,
            True,
        )

    def test_a_contract_unlocked_in_force_is_already_unlocked(self) -> None:
        until = timezone.now() + timedelta(days=1)
        self.given_maria_suspended(
            trust_unlocked_until=until, last_trust_unlock_at=until - timedelta(days=3)
        )

        result = self.directory().request_trust_unlock("C-MARIA")

        assert result.outcome == "already_unlocked"
        assert result.until is not None
        assert abs((result.until - until).total_seconds()) < 1

    def test_an_unlock_used_recently_says_when_it_is_possible_again(self) -> None:
        now = timezone.now()
        self.given_maria_suspended(
            trust_unlocked_until=now - timedelta(hours=1),
            last_trust_unlock_at=now - timedelta(days=2),
        )

        result = self.directory().request_trust_unlock("C-MARIA")

        assert result.outcome == "used_recently"
        assert not result.granted
        assert result.until is None
        assert result.next_allowed_at is not None and result.next_allowed_at > now

    def test_an_active_contract_is_not_suspended(self) -> None:
        self.given_maria()

        result = self.directory().request_trust_unlock("C-MARIA")

        assert (result.outcome, result.granted, result.until) == ("not_suspended", False, None)

    def test_a_contract_suspended_for_another_reason_is_not_unlocked(self) -> None:
        self.given_maria(status="suspended", suspension_reason="request")

        result = self.directory().request_trust_unlock("C-MARIA")

        assert (result.outcome, result.granted) == ("not_for_non_payment", False)

    def test_a_cancelled_contract_is_not_unlocked(self) -> None:
        self.given_maria(status="cancelled")

        result = self.directory().request_trust_unlock("C-MARIA")

        assert (result.outcome, result.granted) == ("cancelled", False)

    def test_an_unknown_contract_is_not_found(self) -> None:
        self.given_maria()

        result = self.directory().request_trust_unlock("C-NOBODY")

        assert (result.outcome, result.granted) == ("not_found", False)

    # --- open_outages -----------------------------------------------------------------

    def test_open_outages_match_the_region_ignoring_case_and_accents(self) -> None:
        now = timezone.now()
        self.given_outage(
            code="O-OPEN",
            region="São João",
            title="Fibra rompida na Av. Brasil",
            description="Equipe no local.",
            started_at=now - timedelta(hours=1),
            forecast_at=now + timedelta(hours=3),
        )
        self.given_outage(
            code="O-RESOLVED",
            region="São João",
            title="Manutenção",
            started_at=now - timedelta(days=2),
            resolved_at=now - timedelta(days=1),
        )
        self.given_outage(code="O-ELSEWHERE", region="Centro", title="Queda de energia")

        outages = self.directory().open_outages("sao  JOAO")

        assert [o.code for o in outages] == ["O-OPEN"]
        [outage] = outages
        assert (outage.region, outage.title, outage.description) == (
            "São João",
            "Fibra rompida na Av. Brasil",
            "Equipe no local.",
        )
        assert outage.forecast_at is not None
        assert abs((outage.forecast_at - (now + timedelta(hours=3))).total_seconds()) < 1

    def test_no_outage_for_another_or_an_empty_region(self) -> None:
        self.given_outage(code="O-OPEN", region="Vila Nova", title="Fibra rompida")

        assert self.directory().open_outages("Jardim América") == []
        assert self.directory().open_outages("") == []

"""Demo customer records for trying the bot: three fibre plans, six
subscribers with valid CPFs and WhatsApp numbers, their contracts (one
suspended for non-payment, one cancelled), invoices with boleto digitable
lines and PIX codes, and one open outage in Jardim América.

Every row's code starts with ``DEMO-``. It writes through the same bulk
upserts as an ERP sync, so running it again refreshes the demo (due dates
move with today) without duplicating anything. ``--reset`` deletes the
``DEMO-`` rows first, and only reports what it would delete unless
``--commit`` is given too.

The boleto lines and PIX codes are well formed (check digits, CRC) but
fictitious: the PIX key is on a ``.example`` domain and says it is a demo.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from rest_framework.exceptions import ValidationError

from subscribers import services
from subscribers.models import Contract, Invoice, Outage, Plan, Subscriber

DEMO = "DEMO-"

# code, name, download, upload, price
PLANS = [
    ("DEMO-FIBRA-300", "Fibra 300 Mega", 300, 150, "99.90"),
    ("DEMO-FIBRA-500", "Fibra 500 Mega", 500, 250, "119.90"),
    ("DEMO-FIBRA-1G", "Fibra 1 Giga", 1000, 500, "199.90"),
]

# code, name, first nine CPF digits, phone, region, address. Maria and her son
# Lucas share one WhatsApp number, as families often do.
SUBSCRIBERS = [
    (
        "DEMO-SUB-001",
        "Maria Aparecida Souza",
        "381470562",
        "+5511987650001",
        "Centro",
        "Rua XV de Novembro, 120, Centro",
    ),
    (
        "DEMO-SUB-002",
        "João Pedro Santos",
        "604218395",
        "+5511987650002",
        "Jardim América",
        "Rua das Acácias, 45, Jardim América",
    ),
    (
        "DEMO-SUB-003",
        "Ana Clara Oliveira",
        "735902184",
        "+5511987650003",
        "Vila Nova",
        "Av. Brasil, 1500, apto 32, Vila Nova",
    ),
    (
        "DEMO-SUB-004",
        "Carlos Eduardo Lima",
        "218563907",
        "+5511987650004",
        "Jardim América",
        "Rua dos Ipês, 310, Jardim América",
    ),
    (
        "DEMO-SUB-005",
        "Fernanda Costa Ribeiro",
        "947316028",
        "+5511987650005",
        "Vila Nova",
        "Rua Sete de Setembro, 88, Vila Nova",
    ),
    (
        "DEMO-SUB-006",
        "Lucas Souza",
        "460729813",
        "+5511987650001",
        "Centro",
        "Rua XV de Novembro, 122, Centro",
    ),
]

# code, subscriber, plan, status, suspension reason
CONTRACTS = [
    ("DEMO-CT-001", "DEMO-SUB-001", "DEMO-FIBRA-300", "active", ""),
    ("DEMO-CT-002", "DEMO-SUB-002", "DEMO-FIBRA-500", "active", ""),
    ("DEMO-CT-003", "DEMO-SUB-003", "DEMO-FIBRA-300", "suspended", "non_payment"),
    ("DEMO-CT-004", "DEMO-SUB-004", "DEMO-FIBRA-1G", "active", ""),
    ("DEMO-CT-005", "DEMO-SUB-005", "DEMO-FIBRA-500", "active", ""),
    ("DEMO-CT-006", "DEMO-SUB-005", "DEMO-FIBRA-300", "cancelled", ""),
    ("DEMO-CT-007", "DEMO-SUB-006", "DEMO-FIBRA-300", "active", ""),
]

# code, contract, days from today to the due date, status. Every active
# contract has an open invoice due soon and last month's paid one; the
# suspended contract's open invoice is overdue.
INVOICES = [
    ("DEMO-FAT-0001", "DEMO-CT-001", -25, "paid"),
    ("DEMO-FAT-0002", "DEMO-CT-001", 5, "open"),
    ("DEMO-FAT-0003", "DEMO-CT-002", -22, "paid"),
    ("DEMO-FAT-0004", "DEMO-CT-002", 8, "open"),
    ("DEMO-FAT-0005", "DEMO-CT-003", -50, "paid"),
    ("DEMO-FAT-0006", "DEMO-CT-003", -20, "open"),
    ("DEMO-FAT-0007", "DEMO-CT-004", -20, "paid"),
    ("DEMO-FAT-0008", "DEMO-CT-004", 10, "open"),
    ("DEMO-FAT-0009", "DEMO-CT-005", -18, "paid"),
    ("DEMO-FAT-0010", "DEMO-CT-005", 12, "open"),
    ("DEMO-FAT-0011", "DEMO-CT-006", -80, "cancelled"),
    ("DEMO-FAT-0012", "DEMO-CT-007", 15, "open"),
]

BANK = "341"
PIX_KEY = "pix@conectafibra.example"
PIX_MERCHANT = "CONECTA FIBRA DEMO"
PIX_CITY = "SAO PAULO"


class Command(BaseCommand):
    help = "Create demo plans, subscribers, contracts, invoices and an outage (codes DEMO-…)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--reset",
            action="store_true",
            help="Delete the DEMO- plans, subscribers, contracts, invoices and outages first "
            "(only reports what it would delete unless --commit is given too).",
        )
        parser.add_argument("--commit", action="store_true", help="Really delete with --reset.")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["reset"]:
            self._reset(commit=options["commit"])
            if not options["commit"]:
                return
        today = timezone.localdate()
        now = timezone.now()
        try:
            with transaction.atomic():
                counts = {
                    "plans": services.plans_upsert(items=_plans()),
                    "subscribers": services.subscribers_upsert(items=_subscribers()),
                    "contracts": services.contracts_upsert(items=_contracts()),
                    "invoices": services.invoices_upsert(items=_invoices(today)),
                    "outages": services.outages_upsert(items=_outages(now)),
                }
        except ValidationError as exc:
            # A real subscriber already holds a demo CPF, say: nothing was written.
            raise CommandError(f"Demo subscribers refused: {exc.detail}") from None
        summary = ", ".join(
            f"{name} {c['created']} new/{c['updated']} refreshed" for name, c in counts.items()
        )
        self.stdout.write(self.style.SUCCESS(f"Demo subscribers ready: {summary}."))
        self._show()

    def _show(self) -> None:
        """Who to be in the WhatsApp simulator."""
        self.stdout.write("Try the bot as one of them (phone, CPF):")
        for code, name, base, phone, region, _address in SUBSCRIBERS:
            contracts = ", ".join(
                status + (f" ({reason})" if reason else "")
                for _c, subscriber, _p, status, reason in CONTRACTS
                if subscriber == code
            )
            self.stdout.write(
                f"  {code}  {name:<24} {phone}  CPF {_format_cpf(cpf(base))}  "
                f"{region:<15} {contracts}"
            )
        self.stdout.write(
            "Open outage in Jardim América; DEMO-SUB-003 is suspended with an overdue invoice."
        )

    def _reset(self, *, commit: bool) -> None:
        """Delete the DEMO- rows, but none a real row still depends on (a real
        invoice on a demo contract keeps that contract, its subscriber and plan)."""
        not_demo_invoice = Invoice.objects.filter(contract=OuterRef("pk")).exclude(
            code__startswith=DEMO
        )
        contracts = Contract.objects.filter(code__startswith=DEMO).exclude(Exists(not_demo_invoice))
        kept_contract = Contract.objects.exclude(pk__in=contracts.values("pk"))
        subscribers = Subscriber.objects.filter(code__startswith=DEMO).exclude(
            Exists(kept_contract.filter(subscriber=OuterRef("pk")))
        )
        plans = Plan.objects.filter(code__startswith=DEMO).exclude(
            Exists(kept_contract.filter(plan=OuterRef("pk")))
        )
        invoices = Invoice.objects.filter(code__startswith=DEMO)
        outages = Outage.objects.filter(code__startswith=DEMO)
        if not commit:
            self.stdout.write(
                f"--reset would delete {invoices.count()} invoices, {contracts.count()} "
                f"contracts, {subscribers.count()} subscribers, {plans.count()} plans and "
                f"{outages.count()} outages of the demo (code {DEMO}…). "
                "Nothing deleted: add --commit to do it."
            )
            return
        with transaction.atomic():
            # Children first, so a cascade never reaches past the DEMO- rows.
            deleted = [
                invoices.delete()[1].get(Invoice._meta.label, 0),
                contracts.delete()[1].get(Contract._meta.label, 0),
                subscribers.delete()[1].get(Subscriber._meta.label, 0),
                plans.delete()[1].get(Plan._meta.label, 0),
                outages.delete()[1].get(Outage._meta.label, 0),
            ]
        self.stdout.write(
            "Reset: deleted {} invoices, {} contracts, {} subscribers, {} plans and "
            "{} outages of the demo.".format(*deleted)
        )


# --- The demo rows ------------------------------------------------------------------


def _plans() -> list[dict[str, Any]]:
    return [
        {"code": code, "name": name, "download_mbps": down, "upload_mbps": up, "price": price}
        for code, name, down, up, price in PLANS
    ]


def _subscribers() -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "name": name,
            "document": cpf(base),
            "phone": phone,
            "email": "",
            "region": region,
            "address": address,
        }
        for code, name, base, phone, region, address in SUBSCRIBERS
    ]


def _contracts() -> list[dict[str, Any]]:
    addresses = {code: address for code, *_rest, address in SUBSCRIBERS}
    return [
        {
            "code": code,
            "subscriber": subscriber,
            "plan": plan,
            "status": status,
            "suspension_reason": reason,
            "address": addresses[subscriber],
        }
        for code, subscriber, plan, status, reason in CONTRACTS
    ]


def _invoices(today: date) -> list[dict[str, Any]]:
    plans = {c_code: plan for c_code, _s, plan, *_rest in CONTRACTS}
    prices = {code: Decimal(price) for code, *_rest, price in PLANS}
    items = []
    for n, (code, contract, days, status) in enumerate(INVOICES, start=1):
        amount = prices[plans[contract]]
        due = today + timedelta(days=days)
        items.append(
            {
                "code": code,
                "contract": contract,
                "amount": str(amount),
                "due_date": due.isoformat(),
                "status": status,
                "digitable_line": digitable_line(
                    bank=BANK, due=due, amount=amount, free=f"109{n:08d}{880000 + n:06d}12345670"
                ),
                "pix_code": pix_code(amount=amount, txid=code.replace("-", "")),
            }
        )
        if status == "paid":
            # Paid a couple of days early, as most customers on auto-debit do.
            paid = datetime.combine(due - timedelta(days=2), time(14, 30))
            items[-1]["paid_at"] = timezone.make_aware(paid).isoformat()
    return items


def _outages(now: datetime) -> list[dict[str, Any]]:
    return [
        {
            "code": "DEMO-OUT-001",
            "region": "Jardim América",
            "title": "Rompimento de fibra na Av. das Palmeiras",
            "description": "Um caminhão rompeu o cabo de fibra óptica que atende o bairro. "
            "A equipe técnica já está no local fazendo a emenda.",
            "started_at": (now - timedelta(hours=1)).isoformat(),
            "forecast_at": (now + timedelta(hours=3)).isoformat(),
            "resolved_at": None,
        },
        {
            "code": "DEMO-OUT-002",
            "region": "Centro",
            "title": "Manutenção programada na OLT Centro",
            "description": "Troca de placa concluída.",
            "started_at": (now - timedelta(days=3, hours=2)).isoformat(),
            "forecast_at": (now - timedelta(days=3)).isoformat(),
            "resolved_at": (now - timedelta(days=3, minutes=20)).isoformat(),
        },
    ]


# --- Brazilian payment formats ------------------------------------------------------


def cpf(base: str) -> str:
    """The CPF whose first nine digits are ``base``, with its check digits."""
    digits = [int(d) for d in base]
    for length in (9, 10):
        total = sum(d * w for d, w in zip(digits, range(length + 1, 1, -1), strict=True))
        digits.append(total * 10 % 11 % 10)
    return "".join(map(str, digits))


def _format_cpf(value: str) -> str:
    return f"{value[:3]}.{value[3:6]}.{value[6:9]}-{value[9:]}"


def _mod10(digits: str) -> int:
    total = 0
    for position, digit in enumerate(reversed(digits)):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def _mod11(digits: str) -> int:
    total = sum(int(d) * (2 + i % 8) for i, d in enumerate(reversed(digits)))
    check = 11 - total % 11
    return 1 if check in (0, 10, 11) else check


def _due_factor(due: date) -> int:
    # Days since 1997-10-07; the factor ran out at 9999 and restarted at 1000
    # on 2025-02-22.
    factor = (due - date(1997, 10, 7)).days
    return factor - 9000 if factor > 9999 else factor


def digitable_line(*, bank: str, due: date, amount: Decimal, free: str) -> str:
    """The 47-digit line of a bank boleto (FEBRABAN layout, check digits right)."""
    if len(bank) != 3 or len(free) != 25:
        raise ValueError("a boleto needs a 3-digit bank and a 25-digit free field")
    tail = f"{_due_factor(due):04d}{int(amount * 100):010d}"
    general = _mod11(f"{bank}9{tail}{free}")
    first, second, third = f"{bank}9{free[:5]}", free[5:15], free[15:]
    return f"{first}{_mod10(first)}{second}{_mod10(second)}{third}{_mod10(third)}{general}{tail}"


def _emv(tag: str, value: str) -> str:
    return f"{tag}{len(value):02d}{value}"


def _crc16(payload: str) -> str:
    crc = 0xFFFF
    for byte in payload.encode():
        crc ^= byte << 8
        for _bit in range(8):
            crc = ((crc << 1) ^ 0x1021) if crc & 0x8000 else crc << 1
            crc &= 0xFFFF
    return f"{crc:04X}"


def pix_code(*, amount: Decimal, txid: str) -> str:
    """A PIX copy-and-paste code (BR Code, EMV), marked as a demo in its own text."""
    account = _emv("00", "br.gov.bcb.pix") + _emv("01", PIX_KEY) + _emv("02", "DEMO - nao pagar")
    payload = (
        _emv("00", "01")
        + _emv("26", account)
        + _emv("52", "0000")
        + _emv("53", "986")
        + _emv("54", f"{amount:.2f}")
        + _emv("58", "BR")
        + _emv("59", PIX_MERCHANT)
        + _emv("60", PIX_CITY)
        + _emv("62", _emv("05", txid[:25]))
        + "6304"
    )
    return payload + _crc16(payload)

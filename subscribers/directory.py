"""The subscriber directory: the one interface the bot and the console use to
look customers up, whatever system holds them.

``SUBSCRIBER_DIRECTORY`` names the implementation (a dotted path to a class
taking no arguments). The built-in one reads this app's tables; an ISP plugs
its ERP by writing a class with these methods and pointing the setting at it.
``tests/subscribers/contract.py`` is the test an adapter must pass.

Everything crosses the boundary as the frozen dataclasses below, so callers
never touch an ERP's objects (or this app's models) directly.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from functools import cache

from django.conf import settings
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django.utils.module_loading import import_string

from ispsupport.cache import get_or_fetch, invalidate


@dataclass(frozen=True)
class PlanInfo:
    code: str
    name: str
    download_mbps: int
    upload_mbps: int
    price: Decimal


@dataclass(frozen=True)
class ContractInfo:
    code: str
    subscriber_code: str
    plan: PlanInfo
    status: str  # "active" | "suspended" | "cancelled"
    suspension_reason: str = ""  # "non_payment" | "request" | "other" | ""
    address: str = ""
    trust_unlocked_until: datetime | None = None

    @property
    def suspended_for_non_payment(self) -> bool:
        return self.status == "suspended" and self.suspension_reason == "non_payment"


@dataclass(frozen=True)
class InvoiceInfo:
    code: str
    contract_code: str
    amount: Decimal
    due_date: date
    digitable_line: str = ""
    pix_code: str = ""

    @property
    def overdue(self) -> bool:
        return self.due_date < timezone.localdate()


@dataclass(frozen=True)
class SubscriberInfo:
    code: str
    name: str
    phone: str = ""
    region: str = ""
    contracts: tuple[ContractInfo, ...] = field(default_factory=tuple)

    @property
    def first_name(self) -> str:
        return self.name.split()[0] if self.name.strip() else ""


@dataclass(frozen=True)
class OutageInfo:
    code: str
    region: str
    title: str
    description: str = ""
    started_at: datetime | None = None
    forecast_at: datetime | None = None


@dataclass(frozen=True)
class UnlockResult:
    """What a trust-unlock request did.

    ``outcome``: "unlocked" (``until`` says until when), "already_unlocked"
    (``until`` too), "used_recently" (``next_allowed_at`` says when it is
    possible again), "not_suspended", "not_for_non_payment", "cancelled",
    "not_found".
    """

    outcome: str
    until: datetime | None = None
    next_allowed_at: datetime | None = None

    @property
    def granted(self) -> bool:
        return self.outcome in ("unlocked", "already_unlocked")


class DirectoryError(Exception):
    """The directory could not answer (an ERP down, a timeout). Callers fall
    back to a person; they never show this text to a customer."""


class SubscriberDirectory(abc.ABC):
    """Where subscribers, contracts, invoices and outages come from.

    Phones are E.164 (``+5511988887777``, ninth digit included); documents are
    CPF (11 digits) or CNPJ (14 characters), without punctuation, already
    validated by the caller. Implementations raise ``DirectoryError`` when the
    system behind them fails, never anything else.
    """

    @abc.abstractmethod
    def find_by_phone(self, phone: str) -> list[SubscriberInfo]:
        """Subscribers registered with this phone (several when a family shares one)."""

    @abc.abstractmethod
    def find_by_document(self, document: str) -> SubscriberInfo | None:
        """The subscriber with this CPF/CNPJ."""

    @abc.abstractmethod
    def get(self, code: str) -> SubscriberInfo | None:
        """The subscriber with this code, with their contracts."""

    @abc.abstractmethod
    def open_invoices(self, subscriber_code: str) -> list[InvoiceInfo]:
        """Unpaid invoices of every contract of the subscriber, oldest due first."""

    @abc.abstractmethod
    def request_trust_unlock(self, contract_code: str) -> UnlockResult:
        """Unlock a contract suspended for non-payment for a few days, once per period."""

    @abc.abstractmethod
    def open_outages(self, region: str) -> list[OutageInfo]:
        """Known open outages affecting ``region`` (case and accents ignored)."""


class CachedDirectory(SubscriberDirectory):
    """An ERP adapter's answers, kept for ``ttl`` seconds.

    The bot looks the same customer up on every message of a conversation and
    an ERP call can take seconds. Keys carry a keyed hash of phones and
    documents, never the values. A trust unlock is never cached. Failures
    (``DirectoryError``) are not cached: the next message asks again.
    """

    def __init__(self, inner: SubscriberDirectory, *, ttl: int = 60) -> None:
        self.inner = inner
        self.ttl = ttl

    def _key(self, kind: str, value: str) -> str:
        return cache_key(kind, value)

    def find_by_phone(self, phone: str) -> list[SubscriberInfo]:
        return get_or_fetch(
            self._key("phone", phone), lambda: self.inner.find_by_phone(phone), ttl=self.ttl
        )

    def find_by_document(self, document: str) -> SubscriberInfo | None:
        return get_or_fetch(
            self._key("document", document),
            lambda: self.inner.find_by_document(document),
            ttl=self.ttl,
        )

    def get(self, code: str) -> SubscriberInfo | None:
        return get_or_fetch(self._key("code", code), lambda: self.inner.get(code), ttl=self.ttl)

    def open_invoices(self, subscriber_code: str) -> list[InvoiceInfo]:
        return get_or_fetch(
            self._key("invoices", subscriber_code),
            lambda: self.inner.open_invoices(subscriber_code),
            ttl=self.ttl,
        )

    def request_trust_unlock(self, contract_code: str) -> UnlockResult:
        # Never cached. The subscriber's cached contracts may say "suspended"
        # for up to ``ttl`` more seconds; asking again then answers
        # "already_unlocked", so the customer is not misled.
        return self.inner.request_trust_unlock(contract_code)

    def open_outages(self, region: str) -> list[OutageInfo]:
        return get_or_fetch(
            self._key("outages", region.casefold()),
            lambda: self.inner.open_outages(region),
            ttl=self.ttl,
        )


@cache
def _directory_class(path: str) -> type[SubscriberDirectory]:
    return import_string(path)  # type: ignore[no-any-return]


def get_directory() -> SubscriberDirectory:
    """The configured directory (``SUBSCRIBER_DIRECTORY``).

    The built-in one reads this database, always fresh and cheap; any other
    (an ERP adapter) is wrapped in ``CachedDirectory``.
    """
    directory = _directory_class(settings.SUBSCRIBER_DIRECTORY)()
    if settings.SUBSCRIBER_DIRECTORY == "subscribers.builtin.DatabaseDirectory":
        return directory
    return CachedDirectory(directory)


def cache_key(kind: str, value: str) -> str:
    digest = salted_hmac("subscribers.directory.cache", value, algorithm="sha256")
    return f"subscribers:{kind}:{digest.hexdigest()[:32]}"


def forget_cached(*, phones: Iterable[str], documents: Iterable[str], codes: Iterable[str]) -> None:
    """Drop ``CachedDirectory``'s answers about one person (after an erasure),
    rather than let them live out their ``ttl``."""
    keys = [cache_key("phone", p) for p in phones if p]
    keys += [cache_key("document", d) for d in documents if d]
    keys += [cache_key(kind, c) for c in codes if c for kind in ("code", "invoices")]
    if keys:
        invalidate(*keys)

"""The one get-or-fetch helper for cached reads.

A cache that is down degrades to a direct read: it never fails a request. Calls
go through the ``redis`` breaker so that, once Redis is known to be down, a
request does not wait out a socket timeout on every cache call.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pybreaker
import structlog
from django.core.cache import cache

from ispsupport.breakers import get_breaker
from ispsupport.metrics import CACHE_OPERATIONS

T = TypeVar("T")
logger = structlog.get_logger(__name__)
_MISSING = object()


def _guarded(op: str, func: Callable[..., object], *args: object) -> tuple[bool, object]:
    """Run one cache call through the breaker; (ok, value)."""
    try:
        return True, get_breaker("redis").call(func, *args)
    except pybreaker.CircuitBreakerError:
        CACHE_OPERATIONS.labels(op, "skipped").inc()
    except Exception as exc:
        CACHE_OPERATIONS.labels(op, "error").inc()
        logger.warning("cache_error", op=op, error=type(exc).__name__)
    return False, None


def get_or_fetch(key: str, fetch: Callable[[], T], *, ttl: int) -> T:
    """The cached value for ``key``, or ``fetch()``'s result, cached for ``ttl`` s.

    ``None`` is a valid value and is cached too.
    """
    ok, value = _guarded("get", cache.get, key, _MISSING)
    if ok and value is not _MISSING:
        CACHE_OPERATIONS.labels("get", "hit").inc()
        return value  # type: ignore[return-value]
    if ok:
        CACHE_OPERATIONS.labels("get", "miss").inc()
    fresh = fetch()
    if ok:
        stored, _ = _guarded("set", cache.set, key, fresh, ttl)
        if stored:
            CACHE_OPERATIONS.labels("set", "ok").inc()
    return fresh


def invalidate(*keys: str) -> None:
    """Forget cached values; call it in the service that changes them."""
    ok, _ = _guarded("delete", cache.delete_many, list(keys))
    if ok:
        CACHE_OPERATIONS.labels("delete", "ok").inc()


# Gauges read from the database at scrape time: one query per 10 s at most,
# however many Prometheus servers scrape however many processes.
SCRAPE_CACHE_SECONDS = 10


def fetch_for_scrape(*fetches: tuple[str, Callable[[], Any]]) -> list[Any] | None:
    """Each ``(key, fetch)``'s value, cached ``SCRAPE_CACHE_SECONDS``; None when
    one fails, so that a scrape while the database is down reports the other
    collectors' series rather than answering 500."""
    try:
        return [get_or_fetch(key, fetch, ttl=SCRAPE_CACHE_SECONDS) for key, fetch in fetches]
    except Exception as exc:
        logger.warning("metrics_query_failed", error=type(exc).__name__)
        return None

"""The named circuit breakers around every external dependency.

With REDIS_URL set, a breaker's state lives in Redis so that every daphne and
worker process sees the same open/closed state; without it, in process memory.
The ``redis`` breaker itself always lives in memory: it must still work, and
open, while Redis is the thing that is down.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pybreaker
import redis
import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError
from django.utils.translation import gettext
from redis.backoff import NoBackoff
from redis.retry import Retry

from ispsupport.errors import ServiceError

logger = structlog.get_logger(__name__)


@dataclass(frozen=True)
class BreakerSpec:
    name: str
    fail_max: int
    reset_timeout: int
    description: str


SPECS: dict[str, BreakerSpec] = {
    spec.name: spec
    for spec in (
        BreakerSpec("whatsapp", 3, 30, "Meta WhatsApp Cloud API (Graph API)"),
        BreakerSpec("database", 5, 60, "PostgreSQL"),
        BreakerSpec("gemini", 3, 45, "Google Gemini API"),
        BreakerSpec("redis", 3, 30, "Redis (cache, channel layer, breaker state)"),
    )
}

# Breakers whose state may not live in the service they guard.
_MEMORY_ONLY = {"redis"}

_lock = threading.Lock()
_breakers: dict[str, pybreaker.CircuitBreaker] = {}


class UnknownBreakerError(KeyError):
    pass


class _LogListener(pybreaker.CircuitBreakerListener):
    def state_change(
        self,
        cb: pybreaker.CircuitBreaker,
        old_state: pybreaker.CircuitBreakerState | None,
        new_state: pybreaker.CircuitBreakerState,
    ) -> None:
        if old_state is not None and old_state.name == new_state.name:
            return
        logger.warning(
            "circuit_breaker_state_changed",
            breaker=cb.name,
            old_state=old_state.name if old_state else None,
            new_state=new_state.name,
        )


def storage_kind() -> str:
    return "redis" if settings.REDIS_URL else "memory"


def _storage(spec: BreakerSpec) -> pybreaker.CircuitBreakerStorage:
    if settings.REDIS_URL and spec.name not in _MEMORY_ONLY:
        client = redis.Redis.from_url(
            settings.REDIS_URL,
            socket_timeout=settings.REDIS_TIMEOUT,
            socket_connect_timeout=settings.REDIS_TIMEOUT,
        )
        try:
            return pybreaker.CircuitRedisStorage(
                pybreaker.STATE_CLOSED,
                client,
                namespace=f"{settings.BREAKER_NAMESPACE}:{spec.name}",
            )
        except redis.RedisError:
            # Redis is down at start-up: guard with local state rather than not
            # at all; the next process start picks up the shared state again.
            logger.warning("circuit_breaker_storage_fallback", breaker=spec.name)
    return pybreaker.CircuitMemoryStorage(pybreaker.STATE_CLOSED)


def get_breaker(name: str) -> pybreaker.CircuitBreaker:
    """The process-wide breaker called ``name``, created on first use."""
    try:
        spec = SPECS[name]
    except KeyError:
        raise UnknownBreakerError(name) from None
    breaker = _breakers.get(name)
    if breaker is None:
        with _lock:
            breaker = _breakers.get(name)
            if breaker is None:
                breaker = pybreaker.CircuitBreaker(
                    fail_max=spec.fail_max,
                    reset_timeout=spec.reset_timeout,
                    state_storage=_storage(spec),
                    name=spec.name,
                    listeners=[_LogListener()],
                    # The failure that trips the breaker really happened: its
                    # caller gets that error, so CircuitBreakerError always
                    # means "not attempted" (the cache counts it as skipped).
                    throw_new_error_on_trip=False,
                    # Only "PostgreSQL is unreachable" opens the database
                    # breaker; a duplicate key or a bug in a query is an
                    # answer from a working server (pybreaker counts it as a
                    # success), not a reason to refuse everyone.
                    exclude=[lambda exc: not isinstance(exc, OperationalError | InterfaceError)]
                    if name == "database"
                    else [],
                )
                _breakers[name] = breaker
    return breaker


def breaker_status(name: str) -> dict[str, Any]:
    """One breaker's state as every process sharing it sees it (see
    ``all_breaker_statuses``)."""
    if name not in SPECS:
        raise UnknownBreakerError(name)
    return _statuses([name])[0]


def all_breaker_statuses() -> list[dict[str, Any]]:
    """Every breaker's state.

    Redis-stored breakers are read straight from Redis in one round trip made
    through the ``redis`` breaker: a Redis outage costs one REDIS_TIMEOUT at
    most (nothing once that breaker is open) and shows as ``"unknown"`` with
    a ``reason``, not as the "closed" pybreaker falls back to when it cannot
    read its storage.
    """
    return _statuses(list(SPECS))


def reset_breaker(name: str) -> dict[str, Any]:
    """Close the breaker and zero its failure count, for every process sharing it.

    Raises ``BreakerStateUnavailableError`` when the shared state cannot be
    written (Redis down): pybreaker would only log it and report "closed".
    """
    if name not in SPECS:
        raise UnknownBreakerError(name)
    if _is_shared(name):
        # First, so a dead Redis fails here, fast, before get_breaker() spends
        # its own timeouts creating a Redis storage.
        _write_closed(name)
    get_breaker(name).close()
    status = breaker_status(name)
    if status["state"] == UNKNOWN:
        raise BreakerStateUnavailableError(name, status["reason"])
    logger.info("circuit_breaker_reset", breaker=name)
    return status


UNKNOWN = "unknown"
STATES = (pybreaker.STATE_CLOSED, pybreaker.STATE_OPEN, pybreaker.STATE_HALF_OPEN, UNKNOWN)
# What a breaker keeps in Redis (pybreaker's CircuitRedisStorage keys) that a status shows.
_SHARED_FIELDS = ("state", "fail_counter", "opened_at")


class BreakerStateUnavailableError(ServiceError):
    """The breaker's shared state cannot be read or written (Redis is down)."""

    def __init__(self, name: str, reason: str) -> None:
        super().__init__(
            gettext(
                "The %(name)s circuit breaker was not reset: its shared state in Redis "
                "cannot be reached (%(reason)s). Try again when Redis is back."
            )
            % {"name": name, "reason": reason},
            code="breaker_state_unavailable",
            status=503,
        )
        self.name = name
        self.reason = reason


def _is_shared(name: str) -> bool:
    return bool(settings.REDIS_URL) and name not in _MEMORY_ONLY


def _shared_key(name: str, field: str) -> str:
    """The Redis key pybreaker's CircuitRedisStorage (see ``_storage``) keeps
    ``field`` of breaker ``name`` under."""
    base = pybreaker.CircuitRedisStorage.BASE_NAMESPACE
    return f"{settings.BREAKER_NAMESPACE}:{name}:{base}:{field}"


@functools.lru_cache(maxsize=4)
def _client(url: str, timeout: float) -> redis.Redis:
    # No retries, said explicitly: redis-py 8's Redis() retries a failed
    # command up to 10 times with backoff (measured: 6.8 s on a hung server
    # with a 0.2 s timeout); a status read must cost one REDIS_TIMEOUT at most.
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        retry=Retry(NoBackoff(), 0),
    )


class _RedisUnavailable(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _through_redis_breaker(func: Callable[[redis.Redis], Any]) -> Any:
    """``func(client)`` through the ``redis`` breaker; ``_RedisUnavailable``
    with a short reason when Redis fails or that breaker is open (then
    without trying)."""
    client = _client(settings.REDIS_URL, settings.REDIS_TIMEOUT)
    try:
        return get_breaker("redis").call(func, client)
    except pybreaker.CircuitBreakerError:
        raise _RedisUnavailable("redis breaker open") from None
    except redis.RedisError as exc:
        logger.warning("circuit_breaker_storage_unreachable", error=type(exc).__name__)
        raise _RedisUnavailable(f"redis unreachable: {type(exc).__name__}") from exc


def _statuses(names: list[str]) -> list[dict[str, Any]]:
    shared = [name for name in names if _is_shared(name)]
    values: dict[str, list[bytes | None]] = {}
    reason = None
    if shared:
        keys = [_shared_key(name, field) for name in shared for field in _SHARED_FIELDS]
        try:
            raw = _through_redis_breaker(lambda client: client.mget(keys))
        except _RedisUnavailable as exc:
            reason = exc.reason
        else:
            width = len(_SHARED_FIELDS)
            values = {name: raw[i * width : (i + 1) * width] for i, name in enumerate(shared)}
    statuses = []
    for name in names:
        if not _is_shared(name):
            statuses.append(_local_status(name))
        elif reason is not None:
            statuses.append(_unknown_status(name, reason))
        else:
            statuses.append(_shared_status(name, values[name]))
    return statuses


def _status(
    name: str, state: str, counter: int | None, opened_at: datetime | None
) -> dict[str, Any]:
    spec = SPECS[name]
    return {
        "name": spec.name,
        "description": spec.description,
        "state": state,
        "fail_counter": counter,
        "fail_max": spec.fail_max,
        "reset_timeout_seconds": spec.reset_timeout,
        "opened_at": opened_at.isoformat() if opened_at and state != "closed" else None,
        "storage": "redis" if _is_shared(name) else "memory",
    }


def _local_status(name: str) -> dict[str, Any]:
    storage = get_breaker(name)._state_storage
    return _status(name, storage.state, storage.counter, storage.opened_at)


def _shared_status(name: str, raw: list[bytes | None]) -> dict[str, Any]:
    # Missing keys: no process has used the breaker yet, and pybreaker starts closed.
    state, counter, opened_at = raw
    return _status(
        name,
        state.decode() if state else pybreaker.STATE_CLOSED,
        int(counter or 0),
        datetime.fromtimestamp(int(opened_at), UTC) if opened_at else None,
    )


def _unknown_status(name: str, reason: str) -> dict[str, Any]:
    return {**_status(name, UNKNOWN, None, None), "reason": reason}


def _write_closed(name: str) -> None:
    """What ``CircuitBreaker.close()`` writes, written so that a failure raises
    instead of being logged and ignored by pybreaker's storage."""

    def write(client: redis.Redis) -> None:
        pipe = client.pipeline()
        pipe.set(_shared_key(name, "state"), pybreaker.STATE_CLOSED)
        pipe.set(_shared_key(name, "fail_counter"), 0)
        pipe.set(_shared_key(name, "success_counter"), 0)
        pipe.execute()

    try:
        _through_redis_breaker(write)
    except _RedisUnavailable as exc:
        raise BreakerStateUnavailableError(name, exc.reason) from exc


def forget_breakers() -> None:
    """Drop the process's breaker objects (tests switch storage between runs)."""
    with _lock:
        _breakers.clear()

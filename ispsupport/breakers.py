"""The named circuit breakers around every external dependency.

With REDIS_URL set, a breaker's state lives in Redis so that every daphne and
worker process sees the same open/closed state; without it, in process memory.
The ``redis`` breaker itself always lives in memory: it must still work, and
open, while Redis is the thing that is down.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pybreaker
import redis
import structlog
from django.conf import settings

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
                )
                _breakers[name] = breaker
    return breaker


def breaker_status(name: str) -> dict[str, Any]:
    spec = SPECS[name]
    breaker = get_breaker(name)
    storage = breaker._state_storage
    opened_at: datetime | None = storage.opened_at
    state = storage.state
    return {
        "name": spec.name,
        "description": spec.description,
        "state": state,
        "fail_counter": storage.counter,
        "fail_max": spec.fail_max,
        "reset_timeout_seconds": spec.reset_timeout,
        "opened_at": opened_at.isoformat() if opened_at and state != "closed" else None,
        "storage": "memory" if name in _MEMORY_ONLY else storage_kind(),
    }


def all_breaker_statuses() -> list[dict[str, Any]]:
    return [breaker_status(name) for name in SPECS]


def reset_breaker(name: str) -> dict[str, Any]:
    """Close the breaker and zero its failure count, for every process sharing it."""
    get_breaker(name).close()
    logger.info("circuit_breaker_reset", breaker=name)
    return breaker_status(name)


def forget_breakers() -> None:
    """Drop the process's breaker objects (tests switch storage between runs)."""
    with _lock:
        _breakers.clear()

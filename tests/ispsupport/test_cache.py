from __future__ import annotations

import subprocess
import time
import uuid
from collections.abc import Callable

import pytest
from django.conf import settings
from django.test import override_settings

from ispsupport.breakers import get_breaker
from ispsupport.cache import get_or_fetch, invalidate
from ispsupport.metrics import CACHE_OPERATIONS
from tests.support import black_hole, free_port, redis_cache

OPERATIONS = [
    (op, result)
    for op in ("get", "set", "delete")
    for result in ("hit", "miss", "ok", "error", "skipped")
]


def _counts() -> dict[str, float]:
    # Collect this counter alone: REGISTRY.get_sample_value runs every
    # collector, and the conversations collector reads through the cache too.
    samples = {
        (sample.labels["op"], sample.labels["result"]): sample.value
        for family in CACHE_OPERATIONS.collect()
        for sample in family.samples
        if sample.name == "cache_operations_total"
    }
    return {f"{op}/{result}": samples.get((op, result), 0.0) for op, result in OPERATIONS}


def _changed_since(before: dict[str, float]) -> dict[str, float]:
    """cache_operations_total series that moved, by how much."""
    after = _counts()
    return {key: after[key] - before[key] for key in after if after[key] != before[key]}


class Fetcher:
    """The slow read behind the cache; remembers how often it ran."""

    def __init__(self, value: object) -> None:
        self.value = value
        self.calls = 0

    def __call__(self) -> object:
        self.calls += 1
        return self.value


def _key() -> str:
    # Unique per test: REDIS_URL may point at a Redis other runs share.
    return f"test:plan:{uuid.uuid4().hex}"


def test_a_miss_fetches_and_the_next_read_hits() -> None:
    key, fetch = _key(), Fetcher({"plan": "Fibra 300", "price": "99.90"})
    before = _counts()

    first = get_or_fetch(key, fetch, ttl=60)
    second = get_or_fetch(key, fetch, ttl=60)

    assert first == second == {"plan": "Fibra 300", "price": "99.90"}
    assert fetch.calls == 1
    assert _changed_since(before) == {"get/miss": 1, "set/ok": 1, "get/hit": 1}


def test_none_is_cached_like_any_value() -> None:
    key, fetch = _key(), Fetcher(None)
    before = _counts()

    assert get_or_fetch(key, fetch, ttl=60) is None
    assert get_or_fetch(key, fetch, ttl=60) is None

    assert fetch.calls == 1
    assert _changed_since(before) == {"get/miss": 1, "set/ok": 1, "get/hit": 1}


def test_invalidate_forgets_the_value() -> None:
    key, other = _key(), _key()
    get_or_fetch(key, Fetcher("old"), ttl=60)
    get_or_fetch(other, Fetcher("kept"), ttl=60)
    before = _counts()

    invalidate(key)

    assert get_or_fetch(key, Fetcher("new"), ttl=60) == "new"
    assert get_or_fetch(other, Fetcher("ignored"), ttl=60) == "kept"
    assert _changed_since(before) == {
        "delete/ok": 1,
        "get/miss": 1,
        "set/ok": 1,
        "get/hit": 1,
    }


def test_a_dead_redis_degrades_to_direct_reads_then_opens_the_breaker() -> None:
    key, fetch = _key(), Fetcher("from the database")
    before = _counts()

    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)):
        for _ in range(3):
            assert get_or_fetch(key, fetch, ttl=60) == "from the database"

        assert _changed_since(before) == {"get/error": 3}
        assert get_breaker("redis").current_state == "open"

        assert get_or_fetch(key, fetch, ttl=60) == "from the database"
        invalidate(key)

    assert fetch.calls == 4
    assert _changed_since(before) == {"get/error": 3, "get/skipped": 1, "delete/skipped": 1}


def test_an_open_breaker_spares_callers_the_socket_timeout() -> None:
    key, fetch = _key(), Fetcher("from the database")

    with (
        black_hole() as port,
        override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{port}/0", timeout=0.2)),
    ):
        for _ in range(3):
            started = time.monotonic()
            assert get_or_fetch(key, fetch, ttl=60) == "from the database"
            assert time.monotonic() - started >= 0.2
        before = _counts()

        started = time.monotonic()
        for _ in range(20):
            assert get_or_fetch(key, fetch, ttl=60) == "from the database"
        elapsed = time.monotonic() - started

    # Twenty socket timeouts would take 4 s; the margin is for a loaded CI machine.
    assert elapsed < 2.0
    assert _changed_since(before) == {"get/skipped": 20}


@pytest.mark.redis
def test_the_cache_is_shared_with_other_processes(
    run_manage: Callable[..., subprocess.CompletedProcess[str]],
) -> None:
    key = _key()
    read = f"from django.core.cache import cache; print(repr(cache.get({key!r}, 'absent')))"
    get_or_fetch(key, Fetcher("Fibra 300"), ttl=60)

    seen = run_manage("shell", "--no-imports", "-c", read)

    assert seen.returncode == 0, seen.stderr
    assert seen.stdout.strip() == "'Fibra 300'"

    invalidate(key)
    seen = run_manage("shell", "--no-imports", "-c", read)

    assert seen.stdout.strip() == "'absent'"
    assert settings.CACHES["default"]["BACKEND"] == "django_redis.cache.RedisCache"

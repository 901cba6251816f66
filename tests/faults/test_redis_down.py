"""Redis dies while Meta keeps delivering, then comes back.

A real daphne process on PostgreSQL (a database of its own) and on a Redis of
the test's own, which the test kills mid-run and restarts on the same port.
Redis carries the cache, the channel layer and the breakers' shared state;
none of them may cost a delivery, and none may need a restart to come back.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.test import override_settings

from ispsupport.breakers import get_breaker
from ispsupport.cache import get_or_fetch
from tests.faults.conftest import (
    BreakerClock,
    FaultDatabase,
    PrivateRedis,
    Served,
    assert_no_secrets_in,
    delivery,
)
from tests.ispsupport.test_cache import Fetcher, _changed_since, _counts
from tests.support import redis_cache

pytestmark = pytest.mark.redis

# Generous for loopback: a delivery that waits out socket timeouts on a dead
# Redis, once per cache call, would blow it.
FAST = 3.0


def _post_new(served: Served, external_id: str) -> float:
    answer = served.post_webhook(delivery(external_id))
    assert (answer.status, answer.body["messages"], answer.body["duplicates"]) == (200, 1, 0)
    return answer.seconds


def _post_again(served: Served, external_id: str) -> float:
    answer = served.post_webhook(delivery(external_id))
    assert (answer.status, answer.body["messages"], answer.body["duplicates"]) == (200, 0, 1)
    return answer.seconds


@pytest.mark.postgres
@pytest.mark.server
def test_ingest_survives_redis_dying_and_everything_recovers_without_a_restart(
    fault_database: FaultDatabase,
    private_redis: PrivateRedis,
    serve: Callable[..., Served],
) -> None:
    served = serve(
        DATABASE_URL=fault_database.url(), REDIS_URL=private_redis.url, HEALTH_CHECK_TIMEOUT="2"
    )
    before = [f"wamid.FAULT.REDIS.BEFORE.{n}" for n in range(5)]
    during = [f"wamid.FAULT.REDIS.DURING.{n}" for n in range(24)]
    after = [f"wamid.FAULT.REDIS.AFTER.{n}" for n in range(5)]

    status, health = served.get("/health")
    assert (status, health["status"]) == (200, "ok"), health
    assert served.breaker("redis")["state"] == "closed"
    for external_id in before:
        _post_new(served, external_id)

    # Meta keeps delivering, several at a time; Redis dies in the middle.
    answered = threading.Semaphore(0)

    def post(external_id: str) -> float:
        seconds = _post_new(served, external_id)
        answered.release()
        return seconds

    with ThreadPoolExecutor(max_workers=3) as pool:
        running = [pool.submit(post, external_id) for external_id in during]
        for _ in range(4):
            assert answered.acquire(timeout=20)
        private_redis.kill()
        killed_at = time.monotonic()
        seconds = [future.result(timeout=60) for future in running]
    # ... and redelivers some it had delivered before.
    seconds += [_post_again(served, external_id) for external_id in before[:2]]
    assert max(seconds) < FAST, seconds

    redis_breaker = served.breaker("redis")
    assert redis_breaker["state"] == "open"
    assert redis_breaker["storage"] == "memory"
    assert redis_breaker["opened_at"] is not None
    status, health = served.get("/health")
    assert status == 503
    assert health["status"] == "failing"
    assert "cache" in health["failing"]
    assert health["checks"]["cache"]["status"] == "failing"
    assert health["checks"]["database"]["status"] == "ok"

    private_redis.start()

    def healthy() -> bool:
        status, health = served.get("/health")
        return status == 200 and health["status"] == "ok"

    served.wait_until("/health ok after Redis came back", healthy, timeout=15)
    for external_id in after:
        _post_new(served, external_id)
    for external_id in during[:3]:
        _post_again(served, external_id)

    stored = fault_database.stored(before + during + after)
    assert stored == dict.fromkeys(before + during + after, 1)
    # The breaker keeps the cache skipped until its reset timeout (30 s, not
    # configurable) has passed; ingest does not wait for it.
    redis_breaker = served.breaker("redis")
    assert redis_breaker["reset_timeout_seconds"] == 30
    if time.monotonic() - killed_at < 30:
        assert redis_breaker["state"] == "open"
    assert_no_secrets_in(served.stop())


def test_the_redis_breaker_lets_the_cache_back_in_30_s_after_it_opened(
    private_redis: PrivateRedis, breaker_clock: BreakerClock
) -> None:
    """The same breaker in process, with its clock injected: skipped while
    open, one trial call 30 s after opening, closed again when Redis answers."""
    key, fetch = f"faults:plan:{uuid.uuid4().hex}", Fetcher("from the database")
    breaker = get_breaker("redis")

    with override_settings(CACHES=redis_cache(private_redis.url, timeout=0.5)):
        get_or_fetch(key, fetch, ttl=60)
        private_redis.kill()
        for _ in range(3):
            assert get_or_fetch(key, fetch, ttl=60) == "from the database"
        assert breaker.current_state == "open"
        private_redis.start()

        breaker_clock.advance(29)
        before = _counts()
        assert get_or_fetch(key, fetch, ttl=60) == "from the database"
        assert _changed_since(before) == {"get/skipped": 1}
        assert breaker.current_state == "open"

        breaker_clock.advance(1.5)
        before = _counts()
        # The trial call reaches the restarted Redis, empty without persistence.
        assert get_or_fetch(key, fetch, ttl=60) == "from the database"
        assert breaker.current_state == "closed"
        assert get_or_fetch(key, fetch, ttl=60) == "from the database"

    assert _changed_since(before) == {"get/miss": 1, "set/ok": 1, "get/hit": 1}
    assert fetch.calls == 1 + 3 + 1 + 1

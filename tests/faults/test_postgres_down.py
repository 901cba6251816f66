"""PostgreSQL goes away under a running daphne, then comes back.

daphne reaches PostgreSQL through a TCP proxy the test controls: cutting it
drops every pooled connection and refuses new ones, as a database restart or
a network partition does; freezing it keeps the connections open with nothing
coming back, as a hung server does. Meta must get a quick 503 it will retry,
never a hang or a 500, and its retries must land exactly once when the
database is back, without restarting daphne. Five failures open the
``database`` breaker: from then on deliveries are refused without trying,
until its reset timeout lets a trial through.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import httpx
import pytest

from tests.faults.conftest import (
    Answer,
    FaultDatabase,
    Served,
    TcpProxy,
    assert_no_secrets_in,
    delivery,
)

pytestmark = [pytest.mark.postgres, pytest.mark.server]

# Meta waits a few seconds for an answer; a 503 must come well before that.
FAST = 3.0


@pytest.fixture
def proxy(fault_database: FaultDatabase) -> Iterator[TcpProxy]:
    proxy = TcpProxy(fault_database.host, fault_database.port)
    proxy.start()
    try:
        yield proxy
    finally:
        proxy.thaw()
        proxy.stop()


@pytest.fixture
def start(
    fault_database: FaultDatabase, proxy: TcpProxy, serve: Callable[..., Served]
) -> Callable[..., Served]:
    def start(**env: str) -> Served:
        return serve(
            DATABASE_URL=fault_database.url(port=proxy.port), HEALTH_CHECK_TIMEOUT="1", **env
        )

    return start


def _refused(answer: Answer) -> bool:
    return (answer.status, answer.body.get("code"), answer.retry_after) == (
        503,
        "unavailable",
        "30",
    )


def _wait_for_health(served: Served) -> float:
    return served.wait_until(
        "/health ok after PostgreSQL came back",
        lambda: served.get("/health")[0] == 200,
        timeout=20,
    )


def _wait_out_the_breaker(served: Served) -> None:
    """The ``database`` breaker an outage opened keeps refusing deliveries for
    its reset timeout (60 s), PostgreSQL back or not; then it lets one through
    as a trial, and that one's success closes it."""
    breaker = served.breaker("database")
    if breaker["state"] == "closed":
        return
    opened_at = datetime.fromisoformat(breaker["opened_at"])
    reopens = opened_at + timedelta(seconds=breaker["reset_timeout_seconds"])
    remaining = (reopens - datetime.now(UTC)).total_seconds()
    assert remaining <= breaker["reset_timeout_seconds"], breaker
    time.sleep(max(0.0, remaining) + 0.5)


def test_the_webhook_answers_503_fast_and_the_retries_land_once(
    fault_database: FaultDatabase, proxy: TcpProxy, start: Callable[..., Served]
) -> None:
    # A pool that gives up waiting after 1 s (default 2 s).
    served = start(DATABASE_POOL_TIMEOUT="1")
    before = [f"wamid.FAULT.PG.BEFORE.{n}" for n in range(3)]
    during = [f"wamid.FAULT.PG.DURING.{n}" for n in range(8)]
    for external_id in before:
        answer = served.post_webhook(delivery(external_id))
        assert (answer.status, answer.body["messages"]) == (200, 1), answer

    proxy.cut()

    # The first ones meet the pool's dead connections, the next ones an empty
    # pool that cannot connect: both must be a quick, retryable 503.
    answers = [served.post_webhook(delivery(external_id)) for external_id in during]
    assert all(_refused(a) for a in answers), answers
    assert max(a.seconds for a in answers) < FAST, [round(a.seconds, 2) for a in answers]
    status, health = served.get("/health")
    assert status == 503
    assert "database" in health["failing"]
    assert fault_database.stored(during) == dict.fromkeys(during, 0)

    proxy.restore()
    _wait_for_health(served)
    # The outage opened the breaker: it refuses at once until its reset
    # timeout, then a trial delivery (a redelivery here) closes it.
    assert served.breaker("database")["state"] == "open"
    early = served.post_webhook(delivery(before[0]))
    assert _refused(early) and early.seconds < 0.5, early
    _wait_out_the_breaker(served)
    trial = served.post_webhook(delivery(before[0]))
    assert (trial.status, trial.body["duplicates"]) == (200, 1), trial
    assert served.breaker("database")["state"] == "closed"

    # Meta retries each refused delivery, some of them three times at once.
    retries = [delivery(external_id) for external_id in during for _ in range(3)]
    with ThreadPoolExecutor(max_workers=6) as pool:
        results = list(pool.map(served.post_webhook, retries))
    assert [a.status for a in results] == [200] * len(retries)
    assert sum(a.body["messages"] for a in results) == len(during)
    assert sum(a.body["duplicates"] for a in results) == 2 * len(during)
    assert fault_database.stored(before + during) == dict.fromkeys(before + during, 1)
    assert_no_secrets_in(served.stop())


def test_a_delivery_in_flight_when_the_database_goes_is_not_half_stored(
    fault_database: FaultDatabase, proxy: TcpProxy, start: Callable[..., Served]
) -> None:
    """Cut while deliveries keep coming: every one is either stored (200) or
    refused whole (503), and a refused one lands once on its retry."""
    served = start(DATABASE_POOL_TIMEOUT="1")
    ids = [f"wamid.FAULT.PG.INFLIGHT.{n}" for n in range(24)]
    stored_some = threading.Event()
    lock = threading.Lock()
    ok = 0

    def post(external_id: str) -> Answer:
        nonlocal ok
        answer = served.post_webhook(delivery(external_id))
        with lock:
            ok += answer.status == 200
            if ok >= 4:
                stored_some.set()
        return answer

    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = {external_id: pool.submit(post, external_id) for external_id in ids}
        assert stored_some.wait(timeout=20)
        proxy.cut()
        outcome = {external_id: f.result(timeout=60) for external_id, f in futures.items()}
    assert all(a.status == 200 or _refused(a) for a in outcome.values()), outcome
    refused = [i for i, a in outcome.items() if a.status == 503]
    assert refused, "the cut came after every delivery: nothing was tested"
    stored = fault_database.stored(ids)
    # Nothing answered 200 is lost. A 503 may still have been stored (its
    # commit reached the server, the answer did not): its retry is a duplicate.
    assert all(stored[i] == 1 for i, a in outcome.items() if a.status == 200), stored
    assert all(stored[i] <= 1 for i in refused), stored

    proxy.restore()
    _wait_for_health(served)
    _wait_out_the_breaker(served)
    for external_id in refused:
        answer = served.post_webhook(delivery(external_id))
        assert answer.status == 200, answer
        assert answer.body["messages"] + answer.body["duplicates"] == 1, answer
        assert answer.body["duplicates"] == stored[external_id], answer
    assert fault_database.stored(ids) == dict.fromkeys(ids, 1)


@pytest.mark.parametrize("storage", ["memory", "redis"])
def test_with_the_default_pool_settings_the_503_is_fast_too(
    storage: str, proxy: TcpProxy, start: Callable[..., Served], request: pytest.FixtureRequest
) -> None:
    """The pool's dead connections fail at once; the next delivery waits the
    pool's timeout (2 s by default); after five failures the ``database``
    breaker answers without trying, in every process sharing it."""
    env = {}
    if storage == "redis":
        env["REDIS_URL"] = request.getfixturevalue("private_redis").url
    served = start(**env)
    served.post_webhook(delivery("wamid.FAULT.PG.DEFAULTS.0"))

    proxy.cut()

    answers = []
    for n in range(1, 8):
        answer = served.post_webhook(delivery(f"wamid.FAULT.PG.DEFAULTS.{n}"))
        assert _refused(answer), answer
        assert answer.seconds < FAST, f"delivery {n} answered after {answer.seconds:.1f} s"
        answers.append(answer)
    breaker = served.breaker("database")
    assert (breaker["state"], breaker["fail_counter"], breaker["storage"]) == ("open", 5, storage)
    # Once open, not even a connection attempt: the answer is immediate.
    assert max(a.seconds for a in answers[5:]) < 0.5, [round(a.seconds, 2) for a in answers]
    assert "whatsapp_webhook_database_breaker_open" in served.output()


def test_a_hung_database_gets_a_503_not_a_hang(
    proxy: TcpProxy, start: Callable[..., Served]
) -> None:
    served = start(DATABASE_POOL_TIMEOUT="1")
    served.post_webhook(delivery("wamid.FAULT.PG.HUNG.0"))
    served.http.timeout = httpx.Timeout(FAST + 2)

    proxy.freeze()
    try:
        answer = served.post_webhook(delivery("wamid.FAULT.PG.HUNG.1"))
    finally:
        # Lets the stuck request finish, so daphne can stop at once.
        proxy.thaw()

    assert _refused(answer), answer
    assert answer.seconds < FAST

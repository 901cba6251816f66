"""The webhook's guard against a PostgreSQL outage: the ``database`` breaker
and the deadline on the webhook's database work.

The outage itself is played by the storing raising what psycopg raises when
the server is gone (tests/faults/test_postgres_down.py cuts a real one); the
breaker, its storage (memory, or Redis with REDIS_URL) and the view are real.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from django.conf import settings
from django.db import IntegrityError, OperationalError, connection
from django.test import Client

from ispsupport.breakers import get_breaker
from tests.faults.conftest import BreakerClock, breaker_clock  # noqa: F401 - fixture
from tests.whatsapp.payloads import envelope, post, text, wamid
from whatsapp import webhook
from whatsapp.models import WhatsAppAccount
from whatsapp.services import webhook_ingest

OUTAGE = OperationalError("connection failed: server closed the connection unexpectedly")


@pytest.fixture
def storing(monkeypatch: pytest.MonkeyPatch) -> Callable[[BaseException | None], list[str]]:
    """``storing(error)``: from now on the webhook's storing raises ``error``
    (None: stores for real). Returns the list of attempts made."""
    attempts: list[str] = []

    def fail_with(error: BaseException | None) -> list[str]:
        def ingest(**kwargs: Any) -> Any:
            attempts.append("tried")
            if error is not None:
                raise error
            return webhook_ingest(**kwargs)

        monkeypatch.setattr(webhook, "webhook_ingest", ingest)
        return attempts

    return fail_with


def _deliver(client: Client) -> Any:
    return post(client, envelope(messages=[text(id_=wamid())]))


def _refused(response: Any) -> bool:
    return (response.status_code, response.json()["code"], response["Retry-After"]) == (
        503,
        "unavailable",
        "30",
    )


def _breaker(client: Client) -> dict[str, Any]:
    [status] = [
        b for b in client.get("/circuit-breakers").json()["breakers"] if b["name"] == "database"
    ]
    return status


def test_five_outage_failures_open_the_breaker_and_then_nothing_is_tried(
    client: Client, account: WhatsAppAccount, storing: Any, django_assert_num_queries: Any
) -> None:
    attempts = storing(OUTAGE)

    failed = [_deliver(client) for _ in range(5)]

    assert all(_refused(r) for r in failed)
    assert (_breaker(client)["state"], _breaker(client)["fail_counter"]) == ("open", 5)
    started = time.monotonic()
    with django_assert_num_queries(0):
        refused = _deliver(client)
    assert _refused(refused)
    assert time.monotonic() - started < 0.5
    assert attempts == ["tried"] * 5


def test_four_failures_leave_it_closed(
    client: Client, account: WhatsAppAccount, storing: Any
) -> None:
    storing(OUTAGE)
    for _ in range(4):
        assert _refused(_deliver(client))
    storing(None)

    response = _deliver(client)

    assert (response.status_code, response.json()["messages"]) == (200, 1)
    assert (_breaker(client)["state"], _breaker(client)["fail_counter"]) == ("closed", 0)


def test_a_duplicate_key_is_not_an_outage(
    client: Client, account: WhatsAppAccount, storing: Any
) -> None:
    """An IntegrityError is an answer from a working server: it fails that
    delivery (500, Meta retries it) but never opens the breaker."""
    attempts = storing(IntegrityError("duplicate key value violates unique constraint"))
    client.raise_request_exception = False

    answers = [_deliver(client).status_code for _ in range(8)]

    assert answers == [500] * 8
    assert attempts == ["tried"] * 8
    assert (_breaker(client)["state"], _breaker(client)["fail_counter"]) == ("closed", 0)


def test_after_its_reset_timeout_one_good_delivery_closes_it(
    client: Client,
    account: WhatsAppAccount,
    storing: Any,
    breaker_clock: BreakerClock,  # noqa: F811 - the imported fixture
) -> None:
    storing(OUTAGE)
    for _ in range(5):
        _deliver(client)
    storing(None)
    breaker_clock.advance(59)
    assert _refused(_deliver(client))

    breaker_clock.advance(2)
    response = _deliver(client)

    assert (response.status_code, response.json()["messages"]) == (200, 1)
    assert _breaker(client)["state"] == "closed"


def test_a_failed_trial_opens_it_again(
    client: Client,
    account: WhatsAppAccount,
    storing: Any,
    breaker_clock: BreakerClock,  # noqa: F811 - the imported fixture
) -> None:
    attempts = storing(OUTAGE)
    for _ in range(5):
        _deliver(client)
    breaker_clock.advance(61)

    assert _refused(_deliver(client))
    assert _refused(_deliver(client))

    assert len(attempts) == 6  # the trial, then refused without trying
    assert get_breaker("database").current_state == "open"


def test_deliveries_are_not_serialised_by_the_breaker(
    client: Client, account: WhatsAppAccount, monkeypatch: pytest.MonkeyPatch
) -> None:
    """pybreaker's call() holds the breaker's lock for the whole call: a slow
    delivery would hold up every other call through the breaker in its process."""
    entered = threading.Event()
    inside = threading.Barrier(2, timeout=5)

    def ingest(**kwargs: Any) -> Any:
        entered.set()
        inside.wait()  # until another call is through the breaker as well
        return webhook_ingest(**kwargs)

    monkeypatch.setattr(webhook, "webhook_ingest", ingest)
    other_went_through: list[int] = []

    def another_call() -> None:
        assert entered.wait(timeout=5)
        other_went_through.append(get_breaker("database").call(inside.wait))

    other = threading.Thread(target=another_call)
    other.start()
    response = _deliver(client)
    other.join(timeout=10)

    assert response.status_code == 200
    assert len(other_went_through) == 1


# --- The deadline: a server that stops answering -------------------------------------


needs_postgres = pytest.mark.skipif(
    settings.DATABASE_VENDOR != "postgresql", reason="the deadline guards PostgreSQL connections"
)


def _in_own_connection(work: Callable[[], Any]) -> Any:
    """``work()`` in a thread of its own, so on a connection of its own, outside
    the test's transaction; whatever it raised is returned."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(work())
        except Exception as exc:
            outcome.append(exc)
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "still waiting on the database"
    return outcome[0]


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_a_query_past_the_deadline_is_cut_at_once() -> None:
    backend: list[int] = []
    elapsed: list[float] = []

    def slow() -> None:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            backend.append(cursor.fetchone()[0])
        started = time.monotonic()
        try:
            with webhook.database_deadline(0.5), connection.cursor() as cursor:
                cursor.execute("SELECT pg_sleep(20)")
        finally:
            elapsed.append(time.monotonic() - started)

    raised = _in_own_connection(slow)

    assert isinstance(raised, OperationalError), raised
    assert 0.5 <= elapsed[0] < 2.5, elapsed
    # The server only notices at the end of the query: statement_timeout is
    # what bounds the work a cut-off request leaves behind.
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", backend)
        assert cursor.fetchone() == (True,)


@needs_postgres
@pytest.mark.django_db(transaction=True)
def test_work_done_in_time_keeps_its_connection() -> None:
    def quick_then_more() -> list[int]:
        with webhook.database_deadline(0.3), connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            first = cursor.fetchone()[0]
        time.sleep(0.6)  # past the deadline: it must not fire any more
        with connection.cursor() as cursor:
            cursor.execute("SELECT 2")
            return [first, cursor.fetchone()[0]]

    assert _in_own_connection(quick_then_more) == [1, 2]

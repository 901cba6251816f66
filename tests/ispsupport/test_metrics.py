"""The operations gauges as Prometheus scrapes them from GET /metrics: each
circuit breaker's state and how long the oldest ready task has waited.
(Breakers whose state Redis cannot give: tests/faults/test_breakers_redis_down.py.)"""

from __future__ import annotations

import socket
from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult
from prometheus_client.parser import text_string_to_metric_families

from ispsupport import breakers
from tests.ispsupport.sample_tasks import echo
from tests.support import free_port

STATES = ("closed", "open", "half-open", "unknown")


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def breaker_states(client: Client) -> dict[str, str]:
    """Each breaker's state as the gauge shows it; exactly one state is 1."""
    ones: dict[str, list[str]] = {}
    for (name, labels), value in scrape(client).items():
        if name == "circuit_breaker_state":
            label = dict(labels)
            ones.setdefault(label["breaker"], [])
            assert value in (0, 1)
            if value == 1:
                ones[label["breaker"]].append(label["state"])
    assert all(len(states) == 1 for states in ones.values()), ones
    return {breaker: states[0] for breaker, states in ones.items()}


def _connect_to_nothing() -> None:
    socket.create_connection(("127.0.0.1", free_port()), timeout=1).close()


def test_every_breaker_has_every_state_and_all_start_closed(client: Client) -> None:
    metrics = scrape(client)

    assert {
        (dict(labels)["breaker"], dict(labels)["state"])
        for name, labels in metrics
        if name == "circuit_breaker_state"
    } == {(breaker, state) for breaker in breakers.SPECS for state in STATES}
    assert breaker_states(client) == dict.fromkeys(breakers.SPECS, "closed")


def test_the_gauge_follows_the_breakers(client: Client) -> None:
    whatsapp = breakers.get_breaker("whatsapp")
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            whatsapp.call(_connect_to_nothing)
    breakers.get_breaker("gemini").half_open()

    assert breaker_states(client) == {
        "whatsapp": "open",
        "database": "closed",
        "gemini": "half-open",
        "redis": "closed",
    }

    breakers.reset_breaker("whatsapp")

    assert breaker_states(client)["whatsapp"] == "closed"


def test_no_ready_task_is_zero(client: Client, db: None) -> None:
    # Neither a task delayed into the future nor one a worker is running waits.
    delayed = echo.enqueue("mais tarde")
    running = echo.enqueue("rodando")
    long_ago = timezone.now() - timedelta(hours=1)
    DBTaskResult.objects.filter(pk=delayed.id).update(
        enqueued_at=long_ago, run_after=timezone.now() + timedelta(minutes=5)
    )
    DBTaskResult.objects.filter(pk=running.id).update(
        enqueued_at=long_ago, status="RUNNING", started_at=long_ago
    )

    assert scrape(client)[("tasks_oldest_ready_age_seconds", ())] == 0


def test_the_oldest_ready_task_counts_from_enqueue_or_from_its_run_after(
    client: Client, db: None
) -> None:
    now = timezone.now()
    enqueued = echo.enqueue("na fila")
    retry_due = echo.enqueue("nova tentativa")
    delayed = echo.enqueue("mais tarde")
    done = echo.enqueue("feito")
    DBTaskResult.objects.filter(pk=enqueued.id).update(enqueued_at=now - timedelta(seconds=90))
    # Enqueued long ago, but only allowed to run 200 s ago: it waited 200 s.
    DBTaskResult.objects.filter(pk=retry_due.id).update(
        enqueued_at=now - timedelta(hours=2), run_after=now - timedelta(seconds=200)
    )
    DBTaskResult.objects.filter(pk=delayed.id).update(
        enqueued_at=now - timedelta(hours=3), run_after=now + timedelta(seconds=60)
    )
    DBTaskResult.objects.filter(pk=done.id).update(
        enqueued_at=now - timedelta(hours=4), status="SUCCESSFUL", finished_at=now
    )

    age = scrape(client)[("tasks_oldest_ready_age_seconds", ())]

    assert 200 <= age < 210

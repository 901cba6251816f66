from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import Client, override_settings

from ispsupport import health
from ispsupport.tasks import enqueue
from tests.ispsupport.sample_tasks import echo
from tests.support import black_hole, free_port, redis_cache

ALL_OK = {
    "database": {"status": "ok"},
    "cache": {"status": "ok"},
    "channel_layer": {"status": "ok"},
    "tasks": {"status": "ok", "ready": 0, "oldest_ready_age_seconds": None},
}


def _without_durations(body: dict[str, Any]) -> dict[str, Any]:
    """The body with each check's duration_ms checked and removed."""
    for result in body["checks"].values():
        if result["status"] == "ok":
            duration = result.pop("duration_ms")
            assert isinstance(duration, float)
            assert duration >= 0
    return body


def test_health_is_ok_when_every_dependency_answers(client: Client, db: None) -> None:
    response = client.get("/health")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert "no-store" in response["Cache-Control"]
    assert _without_durations(response.json()) == {"status": "ok", "checks": ALL_OK}


def test_health_answers_head_but_not_post(client: Client, db: None) -> None:
    assert client.head("/health").status_code == 200
    assert client.post("/health").status_code == 405


def test_health_names_the_cache_when_redis_is_down(client: Client, db: None) -> None:
    port = free_port()

    with override_settings(CACHES=redis_cache(f"redis://127.0.0.1:{port}/0", timeout=0.2)):
        response = client.get("/health")

    assert response.status_code == 503
    assert _without_durations(response.json()) == {
        "status": "failing",
        "checks": {
            **ALL_OK,
            "cache": {
                "status": "failing",
                "error": f"ConnectionError: Error 111 connecting to 127.0.0.1:{port}. "
                "Connection refused.",
            },
        },
        "failing": ["cache"],
    }


def test_health_never_shows_the_password_in_a_redis_url(client: Client, db: None) -> None:
    url = f"redis://:hunter2-not-for-logs@127.0.0.1:{free_port()}/0"

    with override_settings(CACHES=redis_cache(url, timeout=0.2)):
        response = client.get("/health")

    assert response.status_code == 503
    assert response.json()["failing"] == ["cache"]
    assert "hunter2" not in response.content.decode()


def test_health_gives_up_on_a_hung_cache_at_the_deadline(client: Client, db: None) -> None:
    with (
        black_hole() as port,
        override_settings(
            HEALTH_CHECK_TIMEOUT=0.3,
            # The socket timeout is far beyond the deadline: only the deadline
            # can end this request in time.
            CACHES=redis_cache(f"redis://127.0.0.1:{port}/0", timeout=5.0),
        ),
    ):
        started = time.monotonic()
        response = client.get("/health")
        elapsed = time.monotonic() - started

    assert elapsed < 0.3 + 0.7
    assert response.status_code == 503
    assert _without_durations(response.json()) == {
        "status": "failing",
        "checks": {
            **ALL_OK,
            "cache": {"status": "failing", "error": "no answer within 0.3 s"},
        },
        "failing": ["cache"],
    }


def test_repeated_probes_of_a_hung_cache_do_not_pile_up_threads(client: Client, db: None) -> None:
    with (
        black_hole() as port,
        override_settings(
            HEALTH_CHECK_TIMEOUT=0.3,
            CACHES=redis_cache(f"redis://127.0.0.1:{port}/0", timeout=5.0),
        ),
    ):
        first = client.get("/health").json()["checks"]["cache"]
        hung = health._in_flight["cache"]
        later = [client.get("/health").json()["checks"]["cache"] for _ in range(5)]
        still_the_same = health._in_flight["cache"] is hung
        still_hung = not hung.done()

    assert first == {"status": "failing", "error": "no answer within 0.3 s"}
    assert later == [{"status": "failing", "error": "the previous check has not answered yet"}] * 5
    # No new cache check (and so no new thread) was started while one hung.
    assert still_the_same
    assert still_hung


@pytest.mark.django_db(transaction=True)
def test_health_counts_tasks_waiting_for_a_worker(client: Client) -> None:
    # Committed: the health check reads from its own thread and connection.
    enqueue(echo, "waiting")

    response = client.get("/health")

    assert response.status_code == 200
    tasks = response.json()["checks"]["tasks"]
    assert tasks["ready"] == 1
    assert 0 <= tasks["oldest_ready_age_seconds"] < 60

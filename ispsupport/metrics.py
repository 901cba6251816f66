"""The project's own Prometheus metrics (the apps add theirs in their own
``metrics.py``). They live in prometheus_client's default registry, which
django-prometheus exports at /metrics beside its own ``django_*`` series.

The gauges computed at scrape time are custom collectors, which
prometheus_client's multiprocess mode (PROMETHEUS_MULTIPROC_DIR) does not
export: each process serves its own /metrics instead (deploy/README.md).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

import structlog
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = structlog.get_logger(__name__)

HTTP_REQUESTS = Counter(
    "http_requests_total",
    "HTTP requests answered, by method, route template and status code.",
    ["method", "route", "status"],
)

HTTP_REQUEST_DURATION = Histogram(
    "http_request_duration_seconds",
    "Time from the request entering the middleware stack to the response leaving it.",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
)

CACHE_OPERATIONS = Counter(
    "cache_operations_total",
    "Cache operations by the get-or-fetch helper: op is get/set/delete; result is "
    "hit/miss/ok/error/skipped (skipped: the redis breaker is open).",
    ["op", "result"],
)

TASKS_READY_KEY = "metrics:tasks_oldest_ready"


def _oldest_ready_task() -> float | None:
    """Epoch seconds since when the oldest task ready to run (and not started)
    has been ready: its ``run_after`` when it has one, else when it was
    enqueued; None when no task is ready. One aggregate query."""
    from django.db.models import Min, Q
    from django_tasks_db.models import DBTaskResult, get_date_max

    no_delay = Q(run_after=get_date_max())
    oldest = DBTaskResult.objects.ready().aggregate(
        enqueued=Min("enqueued_at", filter=no_delay),
        due=Min("run_after", filter=~no_delay),
    )
    found = [moment.timestamp() for moment in oldest.values() if moment is not None]
    return min(found, default=None)


class OperationsCollector(Collector):
    """What the alerts read at scrape time: each breaker's state (one bounded
    Redis round trip for all of them, none while the redis breaker is open)
    and how long the oldest ready task has waited (cached for a few seconds)."""

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe() the registry calls collect() at registration,
        # which would query the database while the apps are still loading.
        yield GaugeMetricFamily("circuit_breaker_state", "", labels=["breaker", "state"])
        yield GaugeMetricFamily("tasks_oldest_ready_age_seconds", "")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self._breakers()
        yield from self._tasks()

    def _breakers(self) -> Iterator[GaugeMetricFamily]:
        from ispsupport.breakers import STATES, all_breaker_statuses

        family = GaugeMetricFamily(
            "circuit_breaker_state",
            "1 for each circuit breaker's current state, 0 for the others; unknown: "
            "its shared state in Redis could not be read.",
            labels=["breaker", "state"],
        )
        try:
            statuses = all_breaker_statuses()
        except Exception as exc:
            # A Redis outage reads as "unknown"; anything else must not fail the scrape.
            logger.warning("metrics_breakers_failed", error=type(exc).__name__)
            return
        for status in statuses:
            for state in STATES:
                family.add_metric([status["name"], state], 1 if status["state"] == state else 0)
        yield family

    def _tasks(self) -> Iterator[GaugeMetricFamily]:
        from ispsupport.cache import fetch_for_scrape  # it imports this module

        fetched = fetch_for_scrape((TASKS_READY_KEY, _oldest_ready_task))
        if fetched is None:
            return
        [since] = fetched
        yield GaugeMetricFamily(
            "tasks_oldest_ready_age_seconds",
            "How long the oldest background task ready to run has waited for a worker "
            "(since its run_after, else since it was enqueued); 0 when none waits.",
            value=max(0.0, time.time() - since) if since is not None else 0.0,
        )


_collector = OperationsCollector()
# Registered on import (the middleware and the cache helper import this module
# in every process); describe() keeps registration free of queries.
with contextlib.suppress(ValueError):  # already registered
    REGISTRY.register(_collector)

"""Conversation metrics (the seed's names).

``conversations_by_state``, ``message_queue_size`` and the per-team queue
gauges (``conversations_queue_oldest_wait_seconds``,
``conversations_first_response_overdue``) are computed when Prometheus
scrapes, by one aggregate query each (plus the team names), cached for a few
seconds so a burst of scrapes (several Prometheus replicas) does not become a
burst of queries.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from typing import Any

from django.db import transaction
from prometheus_client import REGISTRY, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ispsupport.cache import fetch_for_scrape, invalidate

CONVERSATIONS_CREATED = Counter(
    "conversations_created_total", "Conversations started by customers."
)
CONVERSATION_DURATION = Histogram(
    "conversation_duration_seconds",
    "From a conversation's start to its resolution, observed when it is resolved.",
    buckets=(60, 300, 900, 1800, 3600, 2 * 3600, 4 * 3600, 8 * 3600, 24 * 3600, 3 * 24 * 3600),
)
MESSAGES_SENT = Counter(
    "messages_sent_total",
    "Outbound messages the channel accepted, by sender (agent, bot, system).",
    ["sender"],
)
MESSAGE_PROCESSING = Histogram(
    "message_processing_seconds",
    "From a channel receiving a customer's message (the webhook request) to its commit.",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
)

STATE_COUNTS_KEY = "metrics:conversations_by_state"
QUEUES_KEY = "metrics:conversation_queues"


def state_counts_changed() -> None:
    """A conversation changed state: the next scrape recounts (after the commit)."""
    transaction.on_commit(lambda: invalidate(STATE_COUNTS_KEY, QUEUES_KEY))


def _state_counts() -> dict[str, int]:
    from django.db.models import Count

    from conversations.models import Conversation

    rows = Conversation.objects.order_by().values_list("state").annotate(n=Count("id"))
    return {state: n for state, n in rows}


def _queue_size() -> int:
    from django_tasks_db.models import DBTaskResult

    from conversations.models import Message

    pending = Message.objects.filter(status=Message.Status.PENDING).count()
    queued = DBTaskResult.objects.filter(status="READY").count()
    return pending + queued


def _queues() -> dict[str, dict[str, Any]]:
    """Per team name ("" for no team): ``oldest``, the epoch seconds of its
    oldest queued conversation's ``queued_at`` (None when none waits), and
    ``overdue``, its active conversations past their first-response due time
    with no first response yet (what the console dashboard calls overdue).
    The oldest time, not the wait, is cached: the wait is taken at each scrape."""
    from django.db.models import Count, Min, Q
    from django.utils import timezone

    from accounts.models import Team
    from conversations.models import Conversation

    State = Conversation.State
    now = timezone.now()
    rows = (
        Conversation.objects.filter(state__in=[State.QUEUED, State.OPEN, State.PENDING])
        .values("team_id")
        .annotate(
            oldest=Min("queued_at", filter=Q(state=State.QUEUED)),
            overdue=Count(
                "pk", filter=Q(first_response_at__isnull=True, first_response_due_at__lt=now)
            ),
        )
        .order_by()
    )
    # Every team gets its series (0 when nothing waits), so a panel or an
    # alert sees 0 rather than no data; no team only when it has something.
    names = dict(Team.objects.values_list("pk", "name"))
    queues = {name: {"oldest": None, "overdue": 0} for name in names.values()}
    for row in rows:
        oldest = row["oldest"]
        if row["team_id"] is None and oldest is None and not row["overdue"]:
            continue
        queues[names.get(row["team_id"], "")] = {
            "oldest": oldest.timestamp() if oldest else None,
            "overdue": row["overdue"],
        }
    return queues


def _queue_families(queues: dict[str, dict[str, Any]]) -> Iterator[GaugeMetricFamily]:
    now = time.time()
    oldest_wait = GaugeMetricFamily(
        "conversations_queue_oldest_wait_seconds",
        "How long the oldest conversation queued for each team has waited (0 when none).",
        labels=["team"],
    )
    overdue = GaugeMetricFamily(
        "conversations_first_response_overdue",
        "Active conversations of each team past their first-response due time with no "
        "first response yet.",
        labels=["team"],
    )
    for team, queue in sorted(queues.items()):
        since = queue["oldest"]
        oldest_wait.add_metric([team], max(0.0, now - since) if since is not None else 0.0)
        overdue.add_metric([team], queue["overdue"])
    yield oldest_wait
    yield overdue


class ConversationCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe() the registry calls collect() at registration,
        # which would query the database while the apps are still loading.
        yield GaugeMetricFamily("conversations_by_state", "", labels=["state"])
        yield GaugeMetricFamily("message_queue_size", "")
        yield GaugeMetricFamily("conversations_queue_oldest_wait_seconds", "", labels=["team"])
        yield GaugeMetricFamily("conversations_first_response_overdue", "", labels=["team"])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        from conversations.models import Conversation

        fetched = fetch_for_scrape(
            (STATE_COUNTS_KEY, _state_counts),
            ("metrics:message_queue_size", _queue_size),
            (QUEUES_KEY, _queues),
        )
        if fetched is None:
            return
        counts, queue, queues = fetched
        by_state = GaugeMetricFamily(
            "conversations_by_state", "Conversations in each state.", labels=["state"]
        )
        for state in Conversation.State.values:
            by_state.add_metric([state], counts.get(state, 0))
        yield by_state
        yield GaugeMetricFamily(
            "message_queue_size",
            "Outbound messages waiting to be sent plus background tasks waiting to run.",
            value=queue,
        )
        yield from _queue_families(queues)


_collector = ConversationCollector()


def register() -> None:
    """Called once from the app's ready(); safe to call again."""
    # ValueError: already registered (autoreload, tests).
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)

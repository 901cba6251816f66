"""WhatsApp metrics (the seed's names).

``whatsapp_connections_active`` is computed when Prometheus scrapes, by one
query cached for a few seconds; ``register()`` adds its collector and is called
once from the app's ``ready()``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from prometheus_client import REGISTRY, Counter
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from ispsupport.cache import fetch_for_scrape

API_CALLS = Counter(
    "whatsapp_api_calls_total",
    "Calls to the WhatsApp Cloud API by endpoint and outcome "
    "(ok, retryable, permanent, breaker_open: not attempted).",
    ["endpoint", "outcome"],
)
RATE_LIMITS = Counter(
    "whatsapp_rate_limits_total",
    "Rate-limit answers from the WhatsApp Cloud API, by Meta error code "
    "(4, 80007, 130429, 131056).",
    ["code"],
)

CONNECTIONS_KEY = "metrics:whatsapp_connections_active"


def _active_connections() -> int:
    from whatsapp.models import WhatsAppAccount

    return WhatsAppAccount.objects.filter(is_active=True, is_healthy=True).count()


class WhatsAppCollector(Collector):
    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Without describe() the registry calls collect() at registration,
        # which would query the database while the apps are still loading.
        yield GaugeMetricFamily("whatsapp_connections_active", "")

    def collect(self) -> Iterator[GaugeMetricFamily]:
        fetched = fetch_for_scrape((CONNECTIONS_KEY, _active_connections))
        if fetched is None:
            return
        [active] = fetched
        yield GaugeMetricFamily(
            "whatsapp_connections_active",
            "WhatsApp numbers that are active and healthy (their token works).",
            value=active,
        )


_collector = WhatsAppCollector()


def register() -> None:
    """Called once from the app's ready(); safe to call again."""
    # ValueError: already registered (autoreload, tests).
    with contextlib.suppress(ValueError):
        REGISTRY.register(_collector)

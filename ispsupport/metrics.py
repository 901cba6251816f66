"""The project's own Prometheus metrics (the apps add theirs in their own
``metrics.py``). They live in prometheus_client's default registry, which
django-prometheus exports at /metrics beside its own ``django_*`` series.
"""

from __future__ import annotations

from prometheus_client import Counter, Histogram

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

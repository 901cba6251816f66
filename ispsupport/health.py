"""Health checks behind GET /health: each runs in its own thread with a deadline,
so a hung database or Redis makes the check fail instead of the request hang.
"""

from __future__ import annotations

import asyncio
import re
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

# Greedy up to the last "@" before the host, so a password holding "@" is hidden too.
_URL_CREDENTIALS = re.compile(r"://[^/\s]*@")


def _database() -> dict[str, Any]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    finally:
        # The check runs in a throwaway thread: hand its connection back.
        connection.close()
    return {}


def _cache() -> dict[str, Any]:
    key = f"health:{uuid.uuid4().hex}"
    cache.set(key, "ok", timeout=10)
    value = cache.get(key)
    cache.delete(key)
    if value != "ok":
        raise RuntimeError("value written was not read back")
    return {}


def _channel_layer() -> dict[str, Any]:
    layer = get_channel_layer()
    if layer is None:
        raise RuntimeError("no channel layer configured")

    async def roundtrip() -> None:
        channel = await layer.new_channel("health.")
        await layer.send(channel, {"type": "health.ping"})
        message = await asyncio.wait_for(layer.receive(channel), timeout=5)
        if message.get("type") != "health.ping":
            raise RuntimeError("unexpected message on the health channel")

    async_to_sync(roundtrip)()
    return {}


def _tasks() -> dict[str, Any]:
    try:
        ready = DBTaskResult.objects.ready()
        oldest = ready.order_by("enqueued_at").values_list("enqueued_at", flat=True).first()
        waiting = ready.count()
    finally:
        connection.close()
    return {
        "ready": waiting,
        "oldest_ready_age_seconds": round((timezone.now() - oldest).total_seconds(), 1)
        if oldest
        else None,
    }


CHECKS: dict[str, Callable[[], dict[str, Any]]] = {
    "database": _database,
    "cache": _cache,
    "channel_layer": _channel_layer,
    "tasks": _tasks,
}


def _describe(exc: BaseException) -> str:
    message = _URL_CREDENTIALS.sub("://***@", str(exc)).strip().splitlines()
    first = message[0][:200] if message else ""
    return f"{type(exc).__name__}: {first}" if first else type(exc).__name__


def _timed(check: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    close_old_connections()
    started = time.perf_counter()
    details = check()
    return {
        "status": "ok",
        "duration_ms": round((time.perf_counter() - started) * 1000, 2),
        **details,
    }


# A check still hung from an earlier probe is not started again: frequent probes
# against a dead service would otherwise pile up one blocked thread each.
_in_flight: dict[str, Future[dict[str, Any]]] = {}
_in_flight_lock = threading.Lock()


def run_checks(timeout: float) -> dict[str, dict[str, Any]]:
    """Run every check concurrently; each gets at most ``timeout`` seconds."""
    executor = ThreadPoolExecutor(max_workers=len(CHECKS), thread_name_prefix="health")
    futures: dict[str, Future[dict[str, Any]]] = {}
    results: dict[str, dict[str, Any]] = {}
    with _in_flight_lock:
        for name, check in CHECKS.items():
            previous = _in_flight.get(name)
            if previous is not None and not previous.done():
                results[name] = {
                    "status": "failing",
                    "error": "the previous check has not answered yet",
                }
                continue
            futures[name] = _in_flight[name] = executor.submit(_timed, check)
    deadline = time.monotonic() + timeout
    for name, future in futures.items():
        try:
            results[name] = future.result(timeout=max(0.0, deadline - time.monotonic()))
        except FutureTimeout:
            results[name] = {"status": "failing", "error": f"no answer within {timeout:g} s"}
        except Exception as exc:
            results[name] = {"status": "failing", "error": _describe(exc)}
    # A hung check keeps its thread until its own socket timeout; never wait for it.
    executor.shutdown(wait=False, cancel_futures=True)
    return {name: results[name] for name in CHECKS}

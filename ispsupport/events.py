"""The live-event publisher: services call ``publish_on_commit`` and the
console's websocket consumers forward what arrives in their groups.

Events go out only after the transaction commits, so nobody sees a change that
was rolled back; a channel layer that is down loses the live update (the page
catches up on its next load) but never fails the change that caused it.

The embedded default has no Redis: the in-memory channel layer lives inside
the daphne process, so the task worker (another process) cannot reach it.
There ``EVENTS_RELAY_URL`` (set for the worker by ``scripts/serve``) makes
``publish`` hand its events to daphne over HTTP, signed with a key derived
from ``SECRET_KEY``; daphne's ``relay`` view sends them on. With Redis every
process shares the layer and no relay is used.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import uuid
from typing import Any

import httpx
import structlog
from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

logger = structlog.get_logger(__name__)

RELAY_SIGNATURE_HEADER = "X-Events-Signature"
_RELAY_TIMEOUT = 2.0


def publish(groups: list[str], payload: dict[str, Any]) -> None:
    # One id for the whole publish: a consumer in several of these groups
    # receives the event once per group and forwards it once.
    payload = {**payload, "event": uuid.uuid4().hex}
    groups = list(dict.fromkeys(groups))
    if settings.EVENTS_RELAY_URL:
        _relay(groups, payload)
        return
    layer = get_channel_layer()
    if layer is None:
        return
    # One trip into the event loop for every group: each async_to_sync call
    # costs a loop hand-off (and, outside a server, a Redis connection).
    async_to_sync(_send_all)(layer, groups, payload)


async def _send_all(layer: Any, groups: list[str], payload: dict[str, Any]) -> None:
    results = await asyncio.gather(
        *(layer.group_send(group, payload) for group in groups), return_exceptions=True
    )
    for group, result in zip(groups, results, strict=True):
        if isinstance(result, Exception):
            logger.warning("event_publish_failed", group=group, error=type(result).__name__)


def publish_on_commit(groups: list[str], payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(groups, payload))


def _relay_key() -> bytes:
    return hashlib.sha256(f"ispsupport.events.relay:{settings.SECRET_KEY}".encode()).digest()


def relay_signature(body: bytes) -> str:
    return hmac.new(_relay_key(), body, hashlib.sha256).hexdigest()


def _relay(groups: list[str], payload: dict[str, Any]) -> None:
    body = json.dumps({"groups": groups, "payload": payload}, separators=(",", ":")).encode()
    try:
        response = httpx.post(
            settings.EVENTS_RELAY_URL,
            content=body,
            headers={
                "Content-Type": "application/json",
                RELAY_SIGNATURE_HEADER: relay_signature(body),
            },
            timeout=_RELAY_TIMEOUT,
            trust_env=False,
        )
        response.raise_for_status()
    except httpx.HTTPError as exc:
        # As with a channel layer that is down: the live update is lost, the
        # change is not, and the console catches up after its next reload.
        logger.warning("event_relay_failed", error=type(exc).__name__)


@csrf_exempt
async def relay(request: HttpRequest) -> HttpResponse:
    """Receive a worker's events and send them on through this process's
    in-memory layer. Runs on daphne's event loop (an async view), which is
    where that layer's queues live. Only where the layer is in-memory: with a
    shared layer nobody needs it, and it answers 404."""
    layer = get_channel_layer()
    if request.method != "POST" or not isinstance(layer, InMemoryChannelLayer):
        return JsonResponse({"detail": "Not found."}, status=404)
    body = request.body
    given = request.headers.get(RELAY_SIGNATURE_HEADER, "")
    if not hmac.compare_digest(given, relay_signature(body)):
        return JsonResponse({"detail": "Bad signature."}, status=403)
    try:
        data = json.loads(body)
        groups = [str(group) for group in data["groups"]]
        payload = dict(data["payload"])
        if not isinstance(payload.get("type"), str):
            raise ValueError("type")
    except (ValueError, KeyError, TypeError):
        expected = "Expected {groups: [...], payload: {type: ...}}."
        return JsonResponse({"detail": expected}, status=400)
    await _send_all(layer, groups, payload)
    return HttpResponse(status=204)

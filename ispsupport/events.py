"""The live-event publisher: services call ``publish_on_commit`` and the
console's websocket consumers forward what arrives in their groups.

Events go out only after the transaction commits, so nobody sees a change that
was rolled back; a channel layer that is down loses the live update (the page
catches up on its next load) but never fails the change that caused it.
"""

from __future__ import annotations

import asyncio
from typing import Any

import structlog
from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction

logger = structlog.get_logger(__name__)


def publish(groups: list[str], payload: dict[str, Any]) -> None:
    layer = get_channel_layer()
    if layer is None:
        return
    # One trip into the event loop for every group: each async_to_sync call
    # costs a loop hand-off (and, outside a server, a Redis connection).
    async_to_sync(_send_all)(layer, list(dict.fromkeys(groups)), payload)


async def _send_all(layer: Any, groups: list[str], payload: dict[str, Any]) -> None:
    results = await asyncio.gather(
        *(layer.group_send(group, payload) for group in groups), return_exceptions=True
    )
    for group, result in zip(groups, results, strict=True):
        if isinstance(result, Exception):
            logger.warning("event_publish_failed", group=group, error=type(result).__name__)


def publish_on_commit(groups: list[str], payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(groups, payload))

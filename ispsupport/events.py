"""The live-event publisher: services call ``publish_on_commit`` and the
console's websocket consumers forward what arrives in their groups.

Events go out only after the transaction commits, so nobody sees a change that
was rolled back; a channel layer that is down loses the live update (the page
catches up on its next load) but never fails the change that caused it.
"""

from __future__ import annotations

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
    for group in dict.fromkeys(groups):
        try:
            async_to_sync(layer.group_send)(group, payload)
        except Exception as exc:
            logger.warning("event_publish_failed", group=group, error=type(exc).__name__)


def publish_on_commit(groups: list[str], payload: dict[str, Any]) -> None:
    transaction.on_commit(lambda: publish(groups, payload))

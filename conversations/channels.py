"""The registry that keeps the core free of channels and of the bot.

A channel app (``whatsapp``) registers, in its ``AppConfig.ready()``, the task
that delivers an outbound message of its channel; the bot registers the task
that handles an inbound message of a conversation in state ``bot``. The core
enqueues them by message id without knowing who runs them.
"""

from __future__ import annotations

from typing import Any

import structlog
from django_tasks.base import Task

from ispsupport.tasks import enqueue

logger = structlog.get_logger(__name__)

_senders: dict[str, Task[..., Any]] = {}
_bot: list[Task[..., Any]] = []


def register_sender(channel: str, task: Task[..., Any]) -> None:
    """``task(message_id)`` delivers an outbound message of ``channel``."""
    _senders[channel] = task


def register_bot(task: Task[..., Any]) -> None:
    """``task(message_id)`` answers an inbound message in a ``bot`` conversation."""
    _bot[:] = [task]


def unregister_all() -> None:
    """Forget every registration (tests only)."""
    _senders.clear()
    _bot.clear()


def has_bot() -> bool:
    return bool(_bot)


def has_sender(channel: str) -> bool:
    return channel in _senders


def enqueue_delivery(channel: str, message_id: int) -> bool:
    """Enqueue the send of an outbound message; False if no channel app sends for ``channel``
    (the message stays ``pending`` until one does)."""
    task = _senders.get(channel)
    if task is None:
        logger.warning("no_sender_for_channel", channel=channel, message_id=message_id)
        return False
    enqueue(task, message_id)
    return True


def enqueue_bot(message_id: int) -> bool:
    if not _bot:
        return False
    enqueue(_bot[0], message_id)
    return True

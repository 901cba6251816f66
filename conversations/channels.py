"""The registry that keeps the core free of channels and of the bot.

A channel app (``whatsapp``) registers, in its ``AppConfig.ready()``, the task
that delivers an outbound message of its channel; the bot registers the task
that handles an inbound message of a conversation in state ``bot``. The core
enqueues them by message id without knowing who runs them.

A channel whose provider only allows pre-approved messages after a while
(WhatsApp's 24-hour window) also registers a function listing those templates,
so the console can offer them without importing the channel.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Literal

import structlog
from django_tasks.base import Task

from ispsupport.tasks import enqueue

logger = structlog.get_logger(__name__)

_senders: dict[str, Task[..., Any]] = {}
_bot: list[Task[..., Any]] = []
_templates: dict[str, Callable[[Any], list[dict[str, Any]]]] = {}
# (task, what its first argument identifies, keyword arguments that can hold personal data)
_about: list[tuple[Task[..., Any], str, tuple[str, ...]]] = []


def register_sender(channel: str, task: Task[..., Any]) -> None:
    """``task(message_id)`` delivers an outbound message of ``channel``."""
    _senders[channel] = task


def register_bot(task: Task[..., Any]) -> None:
    """``task(message_id)`` answers an inbound message in a ``bot`` conversation."""
    _bot[:] = [task]


def register_templates(channel: str, fn: Callable[[Any], list[dict[str, Any]]]) -> None:
    """``fn(inbox)`` lists the approved templates an agent may send in ``inbox``,
    each a dict: ``name``, ``language``, ``category``, ``body`` (the text with its
    ``{{1}}``-style variables), ``variables`` (their names, in order), ``params``
    (how many), ``named`` (True when the variables are names, ``{{first_name}}``,
    which the provider wants sent with each value), ``header`` (``format``: ""
    for none, ``text``, ``image``, ``video``, ``document`` or ``location``; its
    ``text`` and ``variables``), ``buttons`` (those that take a value: ``index``,
    ``type`` ``url`` or ``copy_code``, ``variables``) and ``sendable`` (False
    when it needs something no form asks for, e.g. a location header)."""
    _templates[channel] = fn


def register_task_about(
    task: Task[..., Any], *, of: Literal["message", "conversation"], personal: Iterable[str] = ()
) -> None:
    """``task``'s first argument is the id of a message (or conversation): an
    LGPD erasure of its contact scrubs the error text of the task's stored runs
    and blanks their ``personal`` keyword arguments (``conversations.privacy``)."""
    if of not in ("message", "conversation"):
        raise ValueError(f"of must be 'message' or 'conversation', not {of!r}")
    _about[:] = [entry for entry in _about if entry[0] is not task]
    _about.append((task, of, tuple(personal)))


def tasks_about(of: str) -> list[tuple[Task[..., Any], tuple[str, ...]]]:
    """The registered tasks whose first argument identifies a message (or a
    conversation), with their personal keyword arguments."""
    return [(task, personal) for task, kind, personal in _about if kind == of]


def templates_for(inbox: Any) -> list[dict[str, Any]]:
    """The templates of ``inbox``'s channel; [] when the channel has none or
    its listing fails (the console then just offers no template)."""
    fn = _templates.get(inbox.channel)
    if fn is None:
        return []
    try:
        return list(fn(inbox))
    except Exception:
        logger.exception("template_listing_failed", channel=inbox.channel, inbox_id=inbox.pk)
        return []


def unregister_all() -> None:
    """Forget every registration (tests only)."""
    # Template listings and the erasure's task list stay: the tests' fixture
    # that calls this restores senders and the bot afterwards, not those.
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

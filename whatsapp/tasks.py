"""Delivering outbound messages to WhatsApp.

``send_message(message_id)`` is the sender the app registers with the core
(``channels.register_sender("whatsapp", send_message)``). Every run ends in one
of three ways: the message is ``sent`` (with its wamid), ``failed`` (with the
error code and a reason agents understand), or a later attempt is scheduled.

Two kinds of later attempt: the task's own ``attempt`` counts the calls Meta
failed (backoff, then ``failed``), and ``Retry`` runs it again after a
database error. A message Meta accepted is never sent again: its wamid goes
into that retry (``sent_as``), which records it without calling Meta.
"""

from __future__ import annotations

import contextlib
import importlib
import random
from datetime import timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from conversations.models import Message
from conversations.services import message_apply_status
from ispsupport.breakers import SPECS as BREAKERS
from ispsupport.tasks import Retry, background_task, enqueue, retry_with
from whatsapp import services
from whatsapp.models import WhatsAppAccount
from whatsapp.transport import (
    MEDIA_KINDS,
    GraphTransport,
    SendResult,
    TransportError,
    interactive_buttons,
    interactive_list,
    recipient_for,
    transport_for,
)

logger = structlog.get_logger(__name__)

BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 300.0
# How long the cache remembers a wamid that could not be stored: longer than
# any database outage that Retry and resend_pending live through.
ACCEPTED_MEMORY_SECONDS = 24 * 3600


def retry_delay(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``: exponential from 2 s,
    capped at 5 min, with jitter so that messages failed together do not all
    come back together."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2 ** max(attempt - 1, 0))
    return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


@background_task(retry=Retry())
def send_message(message_id: int, attempt: int = 1, sent_as: str = "") -> str:
    """Deliver outbound message ``message_id``; returns what happened.

    ``sent_as`` is the wamid Meta gave it in an earlier run that could not
    store it (a database error): this run stores it and calls Meta no more.
    """
    lock = f"whatsapp:send:{message_id}"
    if not _claim(lock):
        # Another worker is sending this very message now; it ends it.
        logger.info("whatsapp_send_busy", message_id=message_id)
        return "busy"
    try:
        return _send(message_id, attempt, sent_as)
    finally:
        _release(lock)


def _send(message_id: int, attempt: int, sent_as: str = "") -> str:
    # Read after taking the lock: a message another run has just sent is skipped.
    message = (
        Message.objects.select_related("conversation__inbox", "conversation__contact", "reply_to")
        .filter(pk=message_id)
        .first()
    )
    if message is None:
        logger.warning("whatsapp_send_missing_message", message_id=message_id)
        return "missing"
    if message.direction != Message.Direction.OUT or message.status != Message.Status.PENDING:
        return "skipped"
    account = WhatsAppAccount.objects.filter(inbox_id=message.conversation.inbox_id).first()
    # The cache remembers too: a run re-enqueued without ``sent_as`` (the
    # resend_pending command, a worker killed while storing) sends no copy.
    sent_as = sent_as or _accepted_as(message.pk)
    if sent_as:
        # Meta has this message already, whatever became of the number since.
        _sent(message, account, SendResult(message_id=sent_as))
        return "sent"
    if account is None:
        return _fail(
            message,
            code="no_account",
            title=_("This inbox has no WhatsApp number, so the message cannot be sent."),
        )
    if not account.is_active:
        return _fail(
            message,
            code="account_inactive",
            title=_("This WhatsApp number is deactivated; an admin must activate it."),
        )
    transport = transport_for(account)
    try:
        result = _deliver(transport, message)
    except TransportError as exc:
        if exc.is_auth_error:
            services.account_mark_unhealthy(account=account, code=exc.code, title=exc.title)
        if exc.code == "breaker_open" and send_message.get_backend().supports_defer:
            # Nothing reached Meta: waiting out an outage must not use up the
            # attempts, or a long one would fail every waiting message.
            return _retry(message, attempt - 1, exc, at_least=BREAKERS["whatsapp"].reset_timeout)
        if exc.retryable and attempt < settings.WHATSAPP_SEND_MAX_ATTEMPTS:
            return _retry(message, attempt, exc)
        return _fail(
            message, code=str(exc.code), title=exc.agent_title, detail=_detail(exc, attempt)
        )
    # From here on Meta has the message: a database error while storing that
    # is retried with its wamid, never by sending the message again.
    retry_with(sent_as=result.message_id)
    _remember_accepted(message.pk, result.message_id)
    _sent(message, account, result)
    _forget_accepted(message.pk)
    return "sent"


def _deliver(transport: GraphTransport, message: Message) -> SendResult:
    """The Graph API call for ``message``'s kind, built from its text and payload."""
    to = recipient_for(message.conversation.contact)
    payload: dict[str, Any] = message.payload or {}
    reply_to = (message.reply_to.external_id or "") if message.reply_to else ""
    if reply_to.startswith("sandbox."):
        reply_to = ""
    kind = message.kind
    if kind == Message.Kind.TEXT:
        return transport.send_text(
            to, message.text, preview_url=bool(payload.get("preview_url")), reply_to=reply_to
        )
    if kind == Message.Kind.TEMPLATE:
        language = payload.get("language") or ""
        if isinstance(language, dict):
            language = language.get("code") or ""
        return transport.send_template(
            to,
            name=str(payload.get("name") or ""),
            language=str(language),
            components=payload.get("components") or None,
            reply_to=reply_to,
        )
    if kind == Message.Kind.INTERACTIVE:
        return transport.send_interactive(to, _interactive(message, payload), reply_to=reply_to)
    if kind in MEDIA_KINDS:
        return transport.send_media(
            to,
            kind,
            media_id=str(payload.get("media_id") or message.media_id or ""),
            link=str(payload.get("link") or ""),
            caption=str(payload.get("caption") or message.text or ""),
            filename=str(payload.get("filename") or ""),
            reply_to=reply_to,
        )
    if kind == Message.Kind.REACTION:
        target = str(payload.get("message_id") or reply_to)
        return transport.send_reaction(to, target, str(payload.get("emoji") or message.text))
    raise TransportError(
        code="invalid_payload",
        title=f"WhatsApp messages of kind {kind!r} cannot be sent.",
        retryable=False,
    )


def _interactive(message: Message, payload: dict[str, Any]) -> dict[str, Any]:
    """The payload is either Graph's interactive object (it has an "action") or
    the short form {"buttons": [...]} / {"button": ..., "sections": [...]}."""
    if "action" in payload:
        return payload
    body = str(payload.get("body") or message.text)
    header, footer = str(payload.get("header") or ""), str(payload.get("footer") or "")
    if payload.get("sections"):
        return interactive_list(
            body,
            str(payload.get("button") or _("Options")),
            payload["sections"],
            header=header,
            footer=footer,
        )
    return interactive_buttons(body, payload.get("buttons") or [], header=header, footer=footer)


def _sent(message: Message, account: WhatsAppAccount | None, result: SendResult) -> None:
    with transaction.atomic():
        Message.objects.filter(pk=message.pk).update(external_id=result.message_id)
        message_apply_status(message=message, status=Message.Status.SENT)
        if account is not None and not account.is_healthy and not account.is_sandbox:
            # Meta took the token again (an admin renewed it): healthy again.
            services.account_mark_healthy(account=account)
    logger.info("whatsapp_message_sent", message_id=message.pk, external_id=result.message_id)
    _apply_early_statuses(result.message_id)


def _apply_early_statuses(external_id: str) -> None:
    """Statuses Meta sent before the send call returned (kept by the webhook)."""
    try:
        services = importlib.import_module("whatsapp.services")
    except ImportError:
        return
    apply = getattr(services, "early_statuses_apply", None)
    if apply is None:
        return
    try:
        apply(external_id)
    except Exception:
        # The message is sent; a status left behind is applied by the next
        # webhook delivery or dropped with the other stale early statuses.
        logger.exception("whatsapp_early_statuses_failed", external_id=external_id)


def _retry(message: Message, attempt: int, exc: TransportError, *, at_least: float = 0) -> str:
    delay = max(retry_delay(max(attempt, 1)), at_least)
    task = send_message
    if task.get_backend().supports_defer:
        task = send_message.using(run_after=timezone.now() + timedelta(seconds=delay))
    else:
        # A backend without run_after (the immediate one) retries at once.
        delay = 0.0
    enqueue(task, message.pk, attempt=attempt + 1)
    logger.warning(
        "whatsapp_send_retry_scheduled",
        message_id=message.pk,
        attempt=attempt,
        next_attempt=attempt + 1,
        delay_seconds=round(delay, 2),
        code=exc.code,
    )
    return "retry"


def _fail(message: Message, *, code: str, title: str, detail: str = "") -> str:
    message_apply_status(
        message=message,
        status=Message.Status.FAILED,
        error_code=code,
        error_title=title,
        error_detail=detail,
    )
    logger.warning("whatsapp_message_failed", message_id=message.pk, code=code)
    return "failed"


def _detail(exc: TransportError, attempt: int) -> str:
    parts = [exc.title]
    if exc.detail and exc.detail != exc.title:
        parts.append(exc.detail)
    if exc.retryable:
        parts.append(_("Gave up after %(n)d attempts.") % {"n": attempt})
    return " — ".join(parts)


def _accepted_key(message_id: int) -> str:
    return f"whatsapp:accepted:{message_id}"


def _remember_accepted(message_id: int, wamid: str) -> None:
    with contextlib.suppress(Exception):  # the retry's sent_as still knows it
        cache.set(_accepted_key(message_id), wamid, timeout=ACCEPTED_MEMORY_SECONDS)


def _accepted_as(message_id: int) -> str:
    """The wamid Meta gave ``message_id`` in a run that could not store it, or ""."""
    try:
        return str(cache.get(_accepted_key(message_id)) or "")
    except Exception:
        return ""


def forget_accepted(message_ids: list[int], **kwargs: Any) -> None:
    """``conversations.signals.contacts_erased``: the wamids remembered for
    these messages encode the person's phone number; drop them now rather
    than in 24 hours."""
    with contextlib.suppress(Exception):  # a cache that is down loses them anyway
        cache.delete_many([_accepted_key(pk) for pk in message_ids])


def _forget_accepted(message_id: int) -> None:
    with contextlib.suppress(Exception):  # it expires by itself
        cache.delete(_accepted_key(message_id))


def _claim(key: str) -> bool:
    timeout = int(settings.WHATSAPP_API_TIMEOUT * 3) + 10
    try:
        return bool(cache.add(key, 1, timeout=timeout))
    except Exception:
        # A cache that is down never stops a send: the status check still
        # guards against sending a message twice in all but a tight race.
        return True


def _release(key: str) -> None:
    with contextlib.suppress(Exception):  # the key expires by itself
        cache.delete(key)

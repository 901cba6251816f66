"""After a conversation is resolved the bot asks the customer to rate it (1-5)
and thanks them for the answer; the core stores the score
(``conversations.services.rating_from``).

WhatsApp reply buttons stop at three, so the question is a list of five rows
(ids ``csat:1`` … ``csat:5``); a customer who types the digit is understood too.
Outside the 24-hour window only an approved template may be sent: the
configured one, if the number has it approved and it needs no values, or no
question at all.
"""

from __future__ import annotations

from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone

from chatbot import metrics
from chatbot.config import bot_config
from conversations import channels, signals
from conversations.models import Conversation, Inbox, Message
from conversations.services import conversation_request_rating, message_send
from ispsupport.errors import ServiceError
from ispsupport.tasks import Retry, background_task, enqueue

logger = structlog.get_logger(__name__)

SCORES = [
    (5, "5 ⭐ Ótimo"),
    (4, "4 ⭐ Bom"),
    (3, "3 ⭐ Regular"),
    (2, "2 ⭐ Ruim"),
    (1, "1 ⭐ Péssimo"),
]


def rating_payload(question: str) -> dict[str, object]:
    return {
        "body": question,
        "button": "Avaliar",
        "sections": [
            {
                "title": "Sua nota",
                "rows": [{"id": f"csat:{score}", "title": title} for score, title in SCORES],
            }
        ],
    }


def rating_template(inbox: Inbox, name: str) -> dict[str, Any] | str:
    """The approved template ``name`` of ``inbox``'s number, as its channel
    lists it (Portuguese first), or why it cannot ask: ``template_missing``
    (not approved, or not synced: Meta would refuse it) or
    ``template_unusable`` (it takes values the bot has none for)."""
    offered = [t for t in channels.templates_for(inbox) if t["name"] == name]
    if not offered:
        return "template_missing"
    usable = [
        t
        for t in offered
        if t.get("sendable", True)
        and not t.get("params")
        and not (t.get("header") or {}).get("variables")
        and (t.get("header") or {}).get("format") in (None, "", "text")
        and not t.get("buttons")
    ]
    if not usable:
        return "template_unusable"
    usable.sort(key=lambda t: (t["language"] != "pt_BR", not t["language"].startswith("pt")))
    return usable[0]


# Safe to run again after a database error: the question and its mark on
# the conversation are written in one transaction, and it is asked once.
@background_task(retry=Retry())
def ask_rating(conversation_id: int) -> str:
    """Enqueued when a conversation is resolved; returns what it did."""
    config = bot_config().settings
    if not config.csat_enabled:
        return "disabled"
    with transaction.atomic():
        conversation = (
            Conversation.objects.select_for_update()
            .select_related("inbox", "contact")
            .filter(pk=conversation_id)
            .first()
        )
        if conversation is None or conversation.state != Conversation.State.RESOLVED:
            return "not_resolved"
        if conversation.csat_requested_at is not None:
            return "already_asked"
        try:
            if conversation.service_window_open(timezone.now()):
                message_send(
                    conversation=conversation,
                    kind=Message.Kind.INTERACTIVE,
                    text=config.csat_question,
                    payload=rating_payload(config.csat_question),
                    after_resolve=True,
                )
            elif config.csat_template:
                template = rating_template(conversation.inbox, config.csat_template)
                if isinstance(template, str):
                    logger.warning(
                        "csat_template_not_sent",
                        conversation_id=conversation_id,
                        template=config.csat_template,
                        reason=template,
                    )
                    return template
                message_send(
                    conversation=conversation,
                    kind=Message.Kind.TEMPLATE,
                    text=template["body"] or config.csat_question,
                    payload={"name": template["name"], "language": template["language"]},
                    after_resolve=True,
                )
            else:
                logger.info("csat_skipped_window_closed", conversation_id=conversation_id)
                return "window_closed"
        except ServiceError as exc:
            logger.warning("csat_not_sent", conversation_id=conversation_id, code=exc.code)
            return "refused"
        conversation_request_rating(conversation=conversation)
    return "asked"


@background_task()
def thank_for_rating(conversation_id: int) -> str:
    conversation = Conversation.objects.filter(pk=conversation_id).first()
    if conversation is None:
        return "missing"
    try:
        message_send(
            conversation=conversation, text=bot_config().settings.csat_thanks, after_resolve=True
        )
    except ServiceError as exc:
        logger.warning("csat_thanks_not_sent", conversation_id=conversation_id, code=exc.code)
        return "refused"
    return "thanked"


def _resolved(*, conversation_id: int, self_served: bool, **_kwargs: object) -> None:
    if self_served:
        metrics.BOT_SELF_SERVED.inc()
    enqueue(ask_rating, conversation_id)


def _rated(*, conversation_id: int, score: int, **_kwargs: object) -> None:
    metrics.BOT_MESSAGES.labels(intent="csat").inc()
    logger.info("csat_rated", conversation_id=conversation_id, score=score)
    enqueue(thank_for_rating, conversation_id)


def connect() -> None:
    signals.conversation_resolved.connect(_resolved, dispatch_uid="chatbot-csat-resolved")
    signals.conversation_rated.connect(_rated, dispatch_uid="chatbot-csat-rated")

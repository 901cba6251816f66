"""After a conversation is resolved the bot asks the customer to rate it (1-5)
and thanks them for the answer; the core stores the score
(``conversations.services.rating_from``).

WhatsApp reply buttons stop at three, so the question is a list of five rows
(ids ``csat:1`` … ``csat:5``); a customer who types the digit is understood too.
Outside the 24-hour window only an approved template may be sent: the
configured one, or no question at all.
"""

from __future__ import annotations

import structlog
from django.db import transaction
from django.utils import timezone

from chatbot import metrics
from chatbot.config import bot_config
from conversations import signals
from conversations.models import Conversation, Message
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
                message_send(
                    conversation=conversation,
                    kind=Message.Kind.TEMPLATE,
                    text=config.csat_question,
                    payload={"name": config.csat_template, "language": "pt_BR"},
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

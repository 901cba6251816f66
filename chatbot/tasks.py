"""The bot's task: one run per inbound message of a conversation in state "bot"."""

from __future__ import annotations

from ispsupport.tasks import Retry, background_task


# A database error leaves the customer unanswered unless the run is tried
# again; ``handle`` decides and answers in one transaction, so a failed run
# left nothing behind, and a message already answered is skipped as stale.
@background_task(retry=Retry())
def handle_message(message_id: int) -> str:
    """Answer inbound message ``message_id``; returns what happened."""
    from chatbot.engine import handle

    return handle(message_id)

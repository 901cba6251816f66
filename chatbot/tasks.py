"""The bot's task: one run per inbound message of a conversation in state "bot"."""

from __future__ import annotations

from ispsupport.tasks import background_task


@background_task()
def handle_message(message_id: int) -> str:
    """Answer inbound message ``message_id``; returns what happened."""
    from chatbot.engine import handle

    return handle(message_id)

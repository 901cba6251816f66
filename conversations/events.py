"""Live-event payloads and the channel-layer groups they go to.

Groups: one per conversation (the open thread), one per team inbox, one per
staff member (their own assignments), and one for supervisors (every queue).
A consumer joins only the groups its user may see.
"""

from __future__ import annotations

from typing import Any

from conversations.models import Conversation, Message, Note
from ispsupport.events import publish_on_commit

SUPERVISORS_GROUP = "supervisors"


def conversation_group(conversation_id: int) -> str:
    return f"conversation.{conversation_id}"


def team_group(team_id: int | None) -> str:
    return f"team.{team_id}" if team_id else "team.none"


def user_group(user_id: int) -> str:
    return f"user.{user_id}"


def _audience(conversation: Conversation, *, previous_assignee_id: int | None = None) -> list[str]:
    groups = [conversation_group(conversation.pk), team_group(conversation.team_id)]
    groups.append(SUPERVISORS_GROUP)
    for user_id in (conversation.assignee_id, previous_assignee_id):
        if user_id:
            groups.append(user_group(user_id))
    return groups


def conversation_payload(conversation: Conversation) -> dict[str, Any]:
    return {
        "type": "conversation.update",
        "id": conversation.pk,
        "protocol": conversation.protocol,
        "state": conversation.state,
        "team_id": conversation.team_id,
        "assignee_id": conversation.assignee_id,
        "priority": conversation.priority,
        "unread_count": conversation.unread_count,
        "last_message_at": conversation.last_message_at.isoformat(),
    }


def message_payload(message: Message) -> dict[str, Any]:
    return {
        "type": "message.update",
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "direction": message.direction,
        "sender_type": message.sender_type,
        "kind": message.kind,
        "text": message.text,
        "status": message.status,
        "error_title": message.error_title,
        "reactions": message.reactions,
        "created_at": message.created_at.isoformat(),
    }


def conversation_changed(
    conversation: Conversation, *, previous_assignee_id: int | None = None
) -> None:
    publish_on_commit(
        _audience(conversation, previous_assignee_id=previous_assignee_id),
        conversation_payload(conversation),
    )


def message_changed(message: Message) -> None:
    # The thread and the inbox rows (preview, unread) both change.
    conversation = message.conversation
    publish_on_commit(_audience(conversation), message_payload(message))


def note_added(note: Note) -> None:
    publish_on_commit(
        [conversation_group(note.conversation_id)],
        {
            "type": "note.created",
            "id": note.pk,
            "conversation_id": note.conversation_id,
            "author_id": note.author_id,
            "text": note.text,
            "created_at": note.created_at.isoformat(),
        },
    )

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


def _audience(
    conversation_id: int,
    *,
    team_id: int | None,
    assignee_id: int | None,
    previous_assignee_id: int | None = None,
    previous_team_id: int | None = None,
) -> list[str]:
    groups = [conversation_group(conversation_id), team_group(team_id)]
    if previous_team_id and previous_team_id != team_id:
        # The old team must learn that the conversation left its inbox.
        groups.append(team_group(previous_team_id))
    groups.append(SUPERVISORS_GROUP)
    for user_id in (assignee_id, previous_assignee_id):
        if user_id:
            groups.append(user_group(user_id))
    return groups


def _owners(conversation_id: int) -> tuple[int | None, int | None]:
    """The conversation's team and assignee as they are now in this transaction.

    A message's cached conversation may be older than a transfer made since it
    was loaded (a media download takes seconds): the audience, and the
    ``team_id``/``assignee_id`` that consumers check, must be the current ones.
    """
    row = Conversation.objects.filter(pk=conversation_id).values_list("team_id", "assignee_id")
    return row.first() or (None, None)


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


def message_payload(
    message: Message, *, team_id: int | None, assignee_id: int | None
) -> dict[str, Any]:
    return {
        "type": "message.update",
        "id": message.pk,
        "conversation_id": message.conversation_id,
        "team_id": team_id,
        "assignee_id": assignee_id,
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
    conversation: Conversation,
    *,
    previous_assignee_id: int | None = None,
    previous_team_id: int | None = None,
) -> None:
    """``previous_*``: who could see the conversation before this change; they
    get the update too, so their consoles can drop it."""
    publish_on_commit(
        _audience(
            conversation.pk,
            team_id=conversation.team_id,
            assignee_id=conversation.assignee_id,
            previous_assignee_id=previous_assignee_id,
            previous_team_id=previous_team_id,
        ),
        {
            **conversation_payload(conversation),
            # For the consumers only (they strip these): a socket whose user
            # could see the conversation before is told it is gone.
            "previous_team_id": previous_team_id,
            "previous_assignee_id": previous_assignee_id,
        },
    )


def message_changed(message: Message) -> None:
    # The thread and the inbox rows (preview, unread) both change.
    team_id, assignee_id = _owners(message.conversation_id)
    publish_on_commit(
        _audience(message.conversation_id, team_id=team_id, assignee_id=assignee_id),
        message_payload(message, team_id=team_id, assignee_id=assignee_id),
    )


def note_added(note: Note) -> None:
    # Notes are internal and only for the open thread; the team and assignee
    # let the consumer re-check that its user may still see the conversation.
    team_id, assignee_id = _owners(note.conversation_id)
    publish_on_commit(
        [conversation_group(note.conversation_id)],
        {
            "type": "note.created",
            "id": note.pk,
            "conversation_id": note.conversation_id,
            "team_id": team_id,
            "assignee_id": assignee_id,
            "author_id": note.author_id,
            "text": note.text,
            "created_at": note.created_at.isoformat(),
        },
    )

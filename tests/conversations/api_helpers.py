"""What the conversations API tests share: calls with a JWT, error bodies, and
the expected JSON of a conversation, message, contact or canned reply."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.http import HttpResponse
from django.test import Client
from django.utils import timezone
from rest_framework import serializers

from accounts.models import Team, User
from conversations.models import CannedReply, Contact, Conversation, Message, Note
from tests.support import bearer

CONVERSATIONS = "/api/v1/conversations/"
CONTACTS = "/api/v1/contacts/"
CANNED = "/api/v1/canned-replies/"
# A primary key no row has: Postgres sequences do not restart between tests.
NOWHERE = 2_000_000_000
NO_CONVERSATION = {"detail": "No such conversation.", "code": "not_found"}
NO_CONTACT = {"detail": "No such contact.", "code": "not_found"}
NO_CANNED_REPLY = {"detail": "No such canned reply.", "code": "not_found"}
NOT_LOGGED_IN = {
    "detail": "Authentication credentials were not provided.",
    "code": "not_authenticated",
}
ONLY_SUPERVISORS = "Only supervisors and administrators may do this."


def call(
    client: Client,
    method: str,
    path: str,
    user: User | None,
    body: Any = None,
    **headers: str,
) -> HttpResponse:
    """An API call in English, with a JWT for ``user`` (none: anonymous)."""
    headers = {"Accept-Language": "en", **(bearer(user) if user is not None else {}), **headers}
    if body is None:
        return getattr(client, method)(path, headers=headers)
    return getattr(client, method)(path, body, content_type="application/json", headers=headers)


def refused(detail: str) -> dict[str, str]:
    return {"detail": detail, "code": "permission_denied"}


def conflict(detail: str, code: str) -> dict[str, str]:
    return {"detail": detail, "code": code}


def invalid(errors: dict[str, Any]) -> dict[str, Any]:
    return {"detail": "Invalid input.", "code": "invalid", "errors": errors}


def iso(moment: datetime | None) -> str | None:
    """A timestamp as the API writes it (local time with its offset)."""
    return None if moment is None else serializers.DateTimeField().to_representation(moment)


class Waiting:
    """Equal to a ``waiting_seconds`` the API may have computed between two clocks."""

    def __init__(self, since: datetime, before: datetime) -> None:
        self.low = int((before - since).total_seconds())
        self.high = int((timezone.now() - since).total_seconds()) + 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, int) and self.low <= other <= self.high

    def __repr__(self) -> str:
        return f"<waiting {self.low}..{self.high} s>"


def user_ref(user: User | None) -> dict[str, Any] | None:
    return None if user is None else {"id": user.pk, "name": user.display_name}


def team_ref(team: Team | None) -> dict[str, Any] | None:
    return None if team is None else {"id": team.pk, "name": team.name}


def conversation_row(
    conversation: Conversation, *, asked_at: datetime | None = None, detail: bool = False
) -> dict[str, Any]:
    """The row the API must show for ``conversation`` as it is in the database now.

    ``asked_at``: when the request started, for the customer's waiting time.
    """
    c = Conversation.objects.select_related("contact", "team", "assignee", "inbox").get(
        pk=conversation.pk
    )
    last = c.messages.order_by("-created_at", "-id").first()
    waiting: Any = None
    if last and last.direction == Message.Direction.IN and c.state != Conversation.State.RESOLVED:
        # Without the request's start time, any wait since the customer wrote will do.
        waiting = Waiting(c.last_inbound_at, asked_at or c.last_inbound_at)
    row = {
        "id": c.pk,
        "protocol": c.protocol,
        "state": c.state,
        "priority": c.priority,
        "team": team_ref(c.team),
        "assignee": user_ref(c.assignee),
        "contact": {
            "id": c.contact.pk,
            "name": c.contact.display_name,
            "phone": c.contact.phone,
            "username": c.contact.username,
        },
        "tags": [{"id": t.pk, "name": t.name, "color": t.color} for t in c.tags.order_by("name")],
        "unread_count": c.unread_count,
        "last_message": last
        and {"text": last.text, "kind": last.kind, "direction": last.direction},
        "last_message_at": iso(c.last_message_at),
        "last_inbound_at": iso(c.last_inbound_at),
        "waiting_seconds": waiting,
        "first_response_due_at": iso(c.first_response_due_at),
        "resolution_due_at": iso(c.resolution_due_at),
        "created_at": iso(c.created_at),
        "service_window_open": c.service_window_open(),
    }
    if detail:
        row["inbox"] = {"id": c.inbox.pk, "name": c.inbox.name, "channel": c.inbox.channel}
        row["resolved_at"] = iso(c.resolved_at)
        row["first_response_at"] = iso(c.first_response_at)
    return row


def message_body(message: Message) -> dict[str, Any]:
    m = Message.objects.select_related("sender_user").get(pk=message.pk)
    return {
        "id": m.pk,
        "direction": m.direction,
        "sender_type": m.sender_type,
        "sender": user_ref(m.sender_user),
        "kind": m.kind,
        "text": m.text,
        "payload": m.payload,
        "media_id": m.media_id,
        "media_mime_type": m.media_mime_type,
        "status": m.status,
        "error_code": m.error_code,
        "error_title": m.error_title,
        "reply_to": m.reply_to_id,
        "created_at": iso(m.created_at),
        "sent_at": iso(m.sent_at),
        "delivered_at": iso(m.delivered_at),
        "read_at": iso(m.read_at),
        "failed_at": iso(m.failed_at),
    }


def note_body(note: Note) -> dict[str, Any]:
    return {
        "id": note.pk,
        "author": user_ref(note.author),
        "text": note.text,
        "created_at": iso(note.created_at),
    }


def contact_body(contact: Contact) -> dict[str, Any]:
    c = Contact.objects.get(pk=contact.pk)
    return {
        "id": c.pk,
        "name": c.name,
        "profile_name": c.profile_name,
        "display_name": c.display_name,
        "phone": c.phone,
        "username": c.username,
        "bsuid": c.bsuid,
        "wa_id": c.wa_id,
        "document_masked": c.document_masked,
        "customer_code": c.customer_code,
        "notes": c.notes,
        "tags": sorted(c.tags.values_list("name", flat=True)),
        "created_at": iso(c.created_at),
        "last_seen_at": iso(c.last_seen_at),
    }


def canned_body(reply: CannedReply) -> dict[str, Any]:
    r = CannedReply.objects.select_related("team").get(pk=reply.pk)
    return {
        "id": r.pk,
        "shortcut": r.shortcut,
        "title": r.title,
        "text": r.text,
        "team": team_ref(r.team),
        "created_at": iso(r.created_at),
        "updated_at": iso(r.updated_at),
    }

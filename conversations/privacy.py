"""LGPD: what this system holds about one person (access requests) and how it
forgets them (erasure requests).

Only the conversations side lives here. The ISP's subscriber records belong to
the subscribers app, which the core may not import: ``export_contact_data``
and ``erase_contact`` (chatbot commands, the one app allowed to read both) add
them (``subscribers.privacy``).

An erasure anonymises rather than deletes: the contact, its conversations and
their messages stay as rows with their times, states and ratings, so reports
and metrics keep adding up, while every name, identifier, document, text,
payload and media file of the person is replaced or removed.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import structlog
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.exceptions import ValidationError
from django.core.files.storage import default_storage
from django.db import transaction
from django.db.models import CharField, Q
from django.db.models.functions import Cast
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import User
from conversations import channels, events, metrics, signals
from conversations.models import Contact, Conversation, Message, Note
from ispsupport.errors import ServiceError
from ispsupport.identity import canonical_phone, clean_document, document_hash
from ispsupport.tasks import task_results_scrub

logger = structlog.get_logger(__name__)

# What an erased name or note reads like, in the console and in admin.
ERASED = "[apagado]"
# An erased contact keeps a unique, recognisable identity: bsuid "erased-<id>".
ERASED_ID_PREFIX = "erased-"
ERASED_ERROR_CODE = "contact_erased"

# A formatted CPF/CNPJ names a document, never a phone.
_FORMATTED_DOCUMENT = re.compile(
    r"^\s*(\d{3}\.\d{3}\.\d{3}-\d{2}|[0-9A-Za-z]{2}\.[0-9A-Za-z]{3}\.[0-9A-Za-z]{3}/[0-9A-Za-z]{4}-\d{2})\s*$"
)


# --- Finding the person ------------------------------------------------------------


@dataclass
class ContactMatch:
    contact: Contact
    # "document", "phone", "whatsapp_id" and/or "bsuid": how the query found it.
    matched_by: list[str] = field(default_factory=list)


def query_document(query: str) -> str | None:
    """The CPF/CNPJ ``query`` names (digits/characters only), or None."""
    if (query or "").strip().startswith("+"):
        return None  # "+55 ..." is a phone, even when its digits pass a CPF check
    try:
        return clean_document(query)
    except ValidationError:
        return None


def query_phone(query: str) -> str | None:
    """The canonical phone ``query`` names, or None (a formatted CPF/CNPJ is no phone)."""
    if _FORMATTED_DOCUMENT.match(query or ""):
        return None
    return canonical_phone(query or "", typed=True)


def _whatsapp_ids(phone: str, raw: str) -> set[str]:
    """The WhatsApp ids a phone may be stored under: WhatsApp still reports
    many pre-2016 Brazilian mobiles without the ninth digit."""
    digits = phone.lstrip("+")
    ids = {digits, re.sub(r"\D", "", raw)}
    if digits.startswith("55") and len(digits) == 13 and digits[4] == "9":
        ids.add(digits[:4] + digits[5:])
    return ids


def contacts_find(*, query: str) -> list[ContactMatch]:
    """Every contact ``query`` names: by CPF/CNPJ (its keyed hash), by canonical
    phone (``+55 11 98888-7777``, ``11988887777``, ``551188887777`` are one
    number), by WhatsApp id or by BSUID. Ordered by id."""
    raw = (query or "").strip()
    if not raw:
        return []
    document = query_document(raw)
    digest = document_hash(document) if document else None
    phone = query_phone(raw)
    wa_ids = _whatsapp_ids(phone, raw) if phone else {raw}
    condition = Q(wa_id__in=wa_ids) | Q(bsuid=raw)
    if digest:
        condition |= Q(document_hash=digest)
    if phone:
        condition |= Q(phone=phone)
    matches = []
    for contact in Contact.objects.filter(condition).order_by("pk"):
        checks = (
            ("document", digest is not None and contact.document_hash == digest),
            ("phone", phone is not None and contact.phone == phone),
            ("whatsapp_id", contact.wa_id in wa_ids),
            ("bsuid", contact.bsuid == raw),
        )
        matches.append(ContactMatch(contact, [how for how, hit in checks if hit]))
    return matches


def ambiguous_matches(matches: Sequence[ContactMatch]) -> bool:
    """True when the query read as a CPF/CNPJ finds one person and read as a
    phone finds another (an 11-digit number can be both): never erase on a guess."""
    by_document = {m.contact.pk for m in matches if "document" in m.matched_by}
    others = {m.contact.pk for m in matches if set(m.matched_by) - {"document"}}
    return bool(by_document and others and by_document != others)


# --- Access (export) ---------------------------------------------------------------


def _when(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def _media_name(path: str) -> str:
    return path.rsplit("/", 1)[-1] if path else ""


def _message_data(message: Message) -> dict[str, Any]:
    return {
        "id": message.pk,
        "created_at": _when(message.created_at),
        "direction": message.direction,
        "sender": message.sender_type,
        "kind": message.kind,
        "text": message.text,
        "media_file": _media_name(message.media_file),
        "media_type": message.media_mime_type,
        "payload": message.payload,
        "reactions": message.reactions,
        "status": message.status,
        "sent_at": _when(message.sent_at),
        "delivered_at": _when(message.delivered_at),
        "read_at": _when(message.read_at),
        "failed_at": _when(message.failed_at),
    }


def _note_data(note: Note) -> dict[str, Any]:
    # The author is staff, whose identity is not the person's data.
    return {
        "created_at": _when(note.created_at),
        "by": "bot" if note.author_id is None else "staff",
        "text": note.text,
    }


def _conversation_data(conversation: Conversation) -> dict[str, Any]:
    return {
        "id": conversation.pk,
        "protocol": conversation.protocol,
        "inbox": conversation.inbox.name,
        "channel": conversation.inbox.channel,
        "state": conversation.state,
        "team": conversation.team.name if conversation.team else None,
        "priority": conversation.get_priority_display(),
        "created_at": _when(conversation.created_at),
        "queued_at": _when(conversation.queued_at),
        "first_response_at": _when(conversation.first_response_at),
        "last_message_at": _when(conversation.last_message_at),
        "resolved_at": _when(conversation.resolved_at),
        "csat_score": conversation.csat_score,
        "csat_answered_at": _when(conversation.csat_answered_at),
        "tags": [tag.name for tag in conversation.tags.all()],
        "messages": [_message_data(m) for m in conversation.messages.all()],
        "internal_notes": [_note_data(n) for n in conversation.notes.all()],
    }


def contact_data_export(*, contacts: Sequence[Contact]) -> list[dict[str, Any]]:
    """Everything the conversations side holds about these contacts, JSON-ready:
    identity (the CPF/CNPJ decrypted: it is the person's own), staff notes,
    tags, and every conversation with its messages and internal notes.

    A constant number of queries whatever the history's length. Raises
    ``ispsupport.crypto.DecryptionError`` when no key opens a document: an
    access request must not be answered with a silently incomplete export.
    """
    rows = (
        Contact.objects.filter(pk__in=[c.pk for c in contacts])
        .order_by("pk")
        .prefetch_related(
            "tags",
            "conversations__inbox",
            "conversations__team",
            "conversations__tags",
            "conversations__messages",
            "conversations__notes",
        )
    )
    exported = []
    for contact in rows:
        conversations = sorted(contact.conversations.all(), key=lambda c: (c.created_at, c.pk))
        exported.append(
            {
                "id": contact.pk,
                "name": contact.name,
                "whatsapp_profile_name": contact.profile_name,
                "whatsapp_username": contact.username,
                "phone": contact.phone,
                "whatsapp_id": contact.wa_id,
                "whatsapp_user_id": contact.bsuid,
                "document": contact.document,
                "customer_code": contact.customer_code,
                "notes": contact.notes,
                "tags": [tag.name for tag in contact.tags.all()],
                "created_at": _when(contact.created_at),
                "updated_at": _when(contact.updated_at),
                "last_seen_at": _when(contact.last_seen_at),
                "conversations": [_conversation_data(c) for c in conversations],
            }
        )
    return exported


def write_private_file(path: str, text: str) -> None:
    """Write an export readable by its owner only: it is personal data."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.chmod(path, 0o600)  # an existing file keeps its mode through O_TRUNC


# --- Erasure -----------------------------------------------------------------------


@dataclass
class ErasureCounts:
    contacts: int = 0
    conversations: int = 0
    active_conversations: int = 0
    messages: int = 0
    messages_with_content: int = 0
    pending_outbound: int = 0
    notes: int = 0
    media_files: int = 0
    contact_tags: int = 0
    linked_customers: int = 0
    admin_history: int = 0
    task_runs: int = 0


def _scope(ids: Sequence[int]) -> tuple[Any, Any, Any]:
    conversations = Conversation.objects.filter(contact_id__in=ids)
    messages = Message.objects.filter(conversation__contact_id__in=ids)
    notes = Note.objects.filter(conversation__contact_id__in=ids)
    return conversations, messages, notes


def _history(ids: Sequence[int]) -> Any:
    """Admin history rows whose description may quote the person: the contact's
    own (its name) and those of its conversations, messages and notes (their
    text). Rows already scrubbed (the erasure records among them) are left alone."""
    conversations, messages, notes = _scope(ids)
    types = ContentType.objects.get_for_models(Contact, Conversation, Message, Note)

    def object_ids(rows: Any) -> Any:
        # LogEntry.object_id is text: compare with the ids as text, in the database.
        return rows.annotate(as_text=Cast("pk", CharField())).values("as_text")

    return LogEntry.objects.exclude(object_repr=ERASED).filter(
        Q(content_type=types[Contact], object_id__in=[str(pk) for pk in ids])
        | Q(content_type=types[Conversation], object_id__in=object_ids(conversations))
        | Q(content_type=types[Message], object_id__in=object_ids(messages))
        | Q(content_type=types[Note], object_id__in=object_ids(notes))
    )


def _row_ids(ids: Sequence[int]) -> dict[str, list[int]]:
    """The ids of these contacts' messages and conversations, by kind."""
    conversations, messages, _notes = _scope(ids)
    return {
        "message": list(messages.values_list("pk", flat=True)),
        "conversation": list(conversations.values_list("pk", flat=True)),
    }


def _task_runs(rows: dict[str, list[int]], *, commit: bool) -> int:
    """Stored background-task runs about these messages and conversations
    (``_row_ids``) whose error text or arguments go (see
    ``ispsupport.tasks.task_results_scrub``): counted, or with ``commit`` scrubbed."""
    total = 0
    for of, pks in rows.items():
        for task, personal in channels.tasks_about(of):
            total += task_results_scrub([task], pks, kwargs=personal, commit=commit)
    return total


def contact_erasure_preview(*, contacts: Sequence[Contact]) -> ErasureCounts:
    """What ``contact_erase`` would change, counted; changes nothing."""
    ids = [c.pk for c in contacts]
    conversations, messages, notes = _scope(ids)
    content = (
        ~Q(text="")
        | ~Q(payload={})
        | ~Q(media_file="")
        | ~Q(media_id="")
        | ~Q(reactions={})
        | ~Q(error_detail="")
    )
    return ErasureCounts(
        contacts=len(ids),
        conversations=conversations.count(),
        active_conversations=conversations.exclude(state=Conversation.State.RESOLVED).count(),
        messages=messages.count(),
        messages_with_content=messages.filter(content).count(),
        pending_outbound=messages.filter(
            direction=Message.Direction.OUT, status=Message.Status.PENDING
        ).count(),
        notes=notes.count(),
        media_files=messages.exclude(media_file="").count(),
        contact_tags=Contact.tags.through.objects.filter(contact_id__in=ids).count(),
        linked_customers=Contact.objects.filter(pk__in=ids).exclude(customer_code="").count(),
        admin_history=_history(ids).count(),
        task_runs=_task_runs(_row_ids(ids), commit=False),
    )


def _scrub_change_message(message: str) -> str:
    """Admin change messages name changed fields (kept) and quote added or
    deleted inline objects (their text: replaced)."""
    try:
        entries = json.loads(message) if message else []
    except ValueError:
        # Plain text is only ever written by this project's own audit
        # entries (admin writes JSON), which quote nobody.
        return message
    if not isinstance(entries, list):
        return message
    for entry in entries:
        for detail in entry.values() if isinstance(entry, dict) else ():
            if isinstance(detail, dict) and "object" in detail:
                detail["object"] = ERASED
    return json.dumps(entries)


def _close(conversation: Conversation, now: datetime) -> None:
    """Resolve without the resolve service: it would ask the (now unreachable)
    customer for a rating."""
    previous_assignee_id = conversation.assignee_id
    conversation.state = Conversation.State.RESOLVED
    conversation.resolved_at = now
    conversation.resolved_by = None
    conversation.unread_count = 0
    conversation.save(
        update_fields=["state", "resolved_at", "resolved_by", "unread_count", "updated_at"]
    )
    events.conversation_changed(conversation, previous_assignee_id=previous_assignee_id)


@transaction.atomic
def contact_erase(
    *, contacts: Sequence[Contact], actor: User, reason: str, now: datetime | None = None
) -> ErasureCounts:
    """Anonymise these contacts (an LGPD erasure request).

    Replaced: the contact's name (``[apagado]``), WhatsApp profile name and
    username, phone, WhatsApp ids (a unique ``erased-<id>`` BSUID is kept),
    CPF/CNPJ, customer code, staff notes and tags; every message's text,
    caption, payload, reactions, provider ids and error details, and their
    media files (deleted from storage); internal notes' text; the bot's memory;
    the text admin's history quotes; the error text of the background tasks'
    stored runs about them (and a send's wamid). Kept: the rows, their times, states,
    teams, protocols and ratings, so counts and metrics stay right. Active
    conversations are resolved (no rating asked: nobody can be reached) and
    unsent messages fail. Recorded as an admin history entry by ``actor`` with
    ``reason``; the log line carries ids and counts only.

    The ISP's subscriber records (subscribers app) are not touched here: the
    ``erase_contact`` command deletes them in the same transaction.
    """
    if not actor.is_active or not actor.is_admin:
        raise ServiceError(
            _("Only an active admin may erase a contact."), code="not_allowed", status=403
        )
    reason = (reason or "").strip()
    if not reason:
        raise ServiceError(_("Say why the contact is erased."), code="reason_required")
    now = now or timezone.now()
    ids = sorted(c.pk for c in contacts)
    # Locked first: a message stored meanwhile would land after the erasure.
    locked = list(Contact.objects.select_for_update().filter(pk__in=ids).order_by("pk"))
    counts = contact_erasure_preview(contacts=locked)
    conversations, messages, notes = _scope(ids)
    media = sorted(set(messages.exclude(media_file="").values_list("media_file", flat=True)))

    for conversation in conversations.select_for_update().exclude(
        state=Conversation.State.RESOLVED
    ):
        _close(conversation, now)
    if counts.active_conversations:
        metrics.state_counts_changed()
    conversations.exclude(bot_state={}).update(bot_state={}, updated_at=now)

    messages.filter(direction=Message.Direction.OUT, status=Message.Status.PENDING).update(
        status=Message.Status.FAILED,
        failed_at=now,
        error_code=ERASED_ERROR_CODE,
        error_title="The contact was erased (LGPD request); the message was not sent.",
    )
    # external_id too: a WhatsApp message id encodes the phone number.
    messages.update(
        text="",
        payload={},
        reactions={},
        media_id="",
        media_file="",
        external_id=None,
        error_detail="",
    )
    notes.update(text=ERASED)
    rows = _row_ids(ids)
    _task_runs(rows, commit=True)
    transaction.on_commit(
        lambda: signals.contacts_erased.send(
            sender=Contact, message_ids=rows["message"], conversation_ids=rows["conversation"]
        )
    )

    conversation_type = ContentType.objects.get_for_model(Conversation)
    for entry in _history(ids):
        if entry.content_type_id != conversation_type.pk:
            entry.object_repr = ERASED  # a conversation's is its protocol: kept
        entry.change_message = _scrub_change_message(entry.change_message)
        entry.save(update_fields=["object_repr", "change_message"])

    for contact in locked:
        contact.name = ERASED
        contact.profile_name = ""
        contact.username = ""
        contact.phone = None
        contact.wa_id = None
        contact.bsuid = f"{ERASED_ID_PREFIX}{contact.pk}"
        contact.document_encrypted = ""
        contact.document_hash = None
        contact.customer_code = ""
        contact.notes = ""
        contact.save()
        contact.tags.clear()
        LogEntry.objects.create(
            user=actor,
            content_type=ContentType.objects.get_for_model(Contact),
            object_id=str(contact.pk),
            object_repr=ERASED,
            action_flag=CHANGE,
            change_message=(
                f"LGPD erasure (manage.py erase_contact). Reason: {reason}. Anonymised: "
                f"{counts.conversations} conversations (kept), {counts.messages} messages, "
                f"{counts.notes} internal notes, {counts.media_files} media files deleted."
            ),
        )

    # Last, so a failure above leaves the files with the rows that name them;
    # a failure here rolls the rows back and the command can simply run again.
    for path in media:
        default_storage.delete(path)

    logger.info(
        "contacts_erased",
        contact_ids=ids,
        actor_id=actor.pk,
        conversations=counts.conversations,
        closed=counts.active_conversations,
        messages=counts.messages,
        notes=counts.notes,
        media_files=len(media),
    )
    return counts


def is_erased(contact: Contact) -> bool:
    return bool(contact.bsuid and contact.bsuid.startswith(ERASED_ID_PREFIX))

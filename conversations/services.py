"""Every change to contacts, conversations and messages goes through here.

Each service runs in one transaction and publishes its live event after the
commit. Views, the API, the bot, channel tasks, admin actions and commands
all call these, so a rule (the 24-hour window, who may take what) lives in
one place.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import PermissionDenied, SuspiciousFileOperation, ValidationError
from django.core.files.storage import default_storage
from django.db import IntegrityError, connection, transaction
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import Greatest
from django.dispatch import receiver
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from accounts.models import Team, User
from accounts.services import user_deactivated
from conversations import channels, events, metrics, signals
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Note,
    Tag,
    TeamQueue,
)
from conversations.sla import add_business_minutes, parse_schedule
from ispsupport.crypto import encrypt
from ispsupport.durations import format_duration
from ispsupport.errors import ServiceError
from ispsupport.identity import canonical_phone, clean_document, document_hash

logger = structlog.get_logger(__name__)

State = Conversation.State

# Which state may follow which. Everything else is refused with a 409.
TRANSITIONS: dict[str, set[str]] = {
    State.BOT: {State.QUEUED, State.OPEN, State.RESOLVED},
    State.QUEUED: {State.QUEUED, State.OPEN, State.RESOLVED},
    State.OPEN: {State.QUEUED, State.OPEN, State.PENDING, State.RESOLVED},
    State.PENDING: {State.QUEUED, State.OPEN, State.RESOLVED},
    # Only _reopen leaves "resolved": it clears resolved_at/by, and its callers
    # make sure the customer has no other active conversation. Assigning,
    # transferring or handing off a resolved one would skip both.
    State.RESOLVED: set(),
}

# Kinds WhatsApp lets a business send outside the 24-hour customer-service window.
WINDOW_FREE_KINDS = {Message.Kind.TEMPLATE}

_STATUS_RANK = {
    Message.Status.PENDING: 0,
    Message.Status.SENT: 1,
    Message.Status.DELIVERED: 2,
    Message.Status.READ: 3,
}
_STATUS_TIMESTAMP = {
    Message.Status.SENT: "sent_at",
    Message.Status.DELIVERED: "delivered_at",
    Message.Status.READ: "read_at",
    Message.Status.FAILED: "failed_at",
}

LAST_SEEN_RESOLUTION = timedelta(minutes=1)

PLACEHOLDER = re.compile(r"\{\{\s*([a-z_]+\.[a-z_]+)\s*\}\}")


def _state_label(state: str) -> str:
    return str(State(state).label).lower()


def _transition(conversation: Conversation, to: str, *, action: str) -> None:
    if to not in TRANSITIONS[conversation.state]:
        raise ServiceError(
            _("A conversation that is %(state)s cannot be %(action)s.")
            % {"state": _state_label(conversation.state), "action": action},
            code="invalid_transition",
        )
    conversation.state = to


def _changed(
    conversation: Conversation,
    *,
    previous_assignee_id: int | None = None,
    previous_team_id: int | None = None,
    state_changed: bool = True,
) -> None:
    """After the commit: tell the consoles, and recount the states for /metrics."""
    events.conversation_changed(
        conversation, previous_assignee_id=previous_assignee_id, previous_team_id=previous_team_id
    )
    if state_changed:
        metrics.state_counts_changed()


def _save(conversation: Conversation, *fields: str) -> None:
    conversation.save(update_fields=[*fields, "updated_at"])


# --- Contacts -------------------------------------------------------------------


def contact_resolve(
    *,
    bsuid: str | None = None,
    wa_id: str | None = None,
    name: str = "",
    username: str = "",
) -> Contact:
    """The one contact of this person, created if new.

    Found by BSUID first (the only identity of someone who adopted a WhatsApp
    username), then by WhatsApp id, then by canonical phone (so 55 11 8888-7777
    and 55 11 98888-7777 are one person); identifiers seen for the first time
    are linked to it. Safe when several messages of a new person arrive at once:
    the unique constraints decide, and the loser reads the winner's row.
    """
    bsuid = (bsuid or "").strip() or None
    wa_id = (wa_id or "").strip() or None
    phone = canonical_phone(wa_id) if wa_id else None
    if not (bsuid or wa_id):
        raise ValidationError(_("A contact needs a WhatsApp user id or phone."), code="no_identity")

    for _attempt in range(3):
        contact = _find_contact(bsuid=bsuid, wa_id=wa_id, phone=phone)
        if contact is None:
            try:
                with transaction.atomic():
                    return Contact.objects.create(
                        bsuid=bsuid,
                        wa_id=wa_id,
                        phone=phone,
                        profile_name=name[:150],
                        username=username[:64],
                        last_seen_at=timezone.now(),
                    )
            except IntegrityError:
                continue  # created meanwhile by a concurrent message: read it
        changed: list[str] = []
        for field, value in (("bsuid", bsuid), ("wa_id", wa_id), ("phone", phone)):
            if value and not getattr(contact, field):
                setattr(contact, field, value)
                changed.append(field)
        if name and contact.profile_name != name[:150]:
            contact.profile_name = name[:150]
            changed.append("profile_name")
        if username and contact.username != username[:64]:
            contact.username = username[:64]
            changed.append("username")
        now = timezone.now()
        recent = contact.last_seen_at and now - contact.last_seen_at < LAST_SEEN_RESOLUTION
        if not changed and recent:
            # A customer sending a burst of messages: last_seen_at is recent
            # enough, and skipping the write keeps the webhook fast.
            return contact
        contact.last_seen_at = now
        try:
            with transaction.atomic():
                contact.save(update_fields=[*changed, "last_seen_at", "updated_at"])
        except IntegrityError:
            # The new identifier already belongs to another contact: keep both
            # as they are rather than guess which person is which.
            logger.warning("contact_identity_conflict", contact_id=contact.pk, fields=changed)
            contact.refresh_from_db()
        return contact
    raise ServiceError(_("Could not resolve the contact; try again."), code="contact_race")


def _find_contact(*, bsuid: str | None, wa_id: str | None, phone: str | None) -> Contact | None:
    if bsuid and (found := Contact.objects.filter(bsuid=bsuid).first()):
        return found
    if wa_id and (found := Contact.objects.filter(wa_id=wa_id).first()):
        return found
    if phone and (found := Contact.objects.filter(phone=phone).first()):
        return found
    return None


@transaction.atomic
def contact_update(*, contact: Contact, actor: User, **changes: Any) -> Contact:
    """Staff edits: name, phone (typed), document (CPF/CNPJ), customer_code, notes, tags."""
    errors: dict[str, list[str]] = {}
    fields: list[str] = []
    if "name" in changes:
        contact.name = changes["name"].strip()
        fields.append("name")
    if "phone" in changes:
        raw = (changes["phone"] or "").strip()
        phone = canonical_phone(raw, typed=True) if raw else None
        if raw and phone is None:
            errors["phone"] = [_("Enter a valid phone number, e.g. +55 11 98888-7777.")]
        elif phone and Contact.objects.filter(phone=phone).exclude(pk=contact.pk).exists():
            errors["phone"] = [_("Another contact already has this phone.")]
        else:
            contact.phone = phone
            fields.append("phone")
    if "document" in changes:
        raw = (changes["document"] or "").strip()
        if not raw:
            contact.document_encrypted, contact.document_hash = "", None
            fields += ["document_encrypted", "document_hash"]
        else:
            try:
                document = clean_document(raw)
            except ValidationError as exc:
                errors["document"] = exc.messages
            else:
                digest = document_hash(document)
                if Contact.objects.filter(document_hash=digest).exclude(pk=contact.pk).exists():
                    errors["document"] = [_("Another contact already has this CPF/CNPJ.")]
                else:
                    contact.document_encrypted = encrypt(document)
                    contact.document_hash = digest
                    fields += ["document_encrypted", "document_hash"]
    for field in ("customer_code", "notes"):
        if field in changes:
            setattr(contact, field, (changes[field] or "").strip())
            fields.append(field)
    if errors:
        raise ValidationError(errors)
    contact.save(update_fields=[*fields, "updated_at"])
    if "tags" in changes:
        contact.tags.set(_tags_for(changes["tags"], actor=actor))
    logger.info("contact_updated", contact_id=contact.pk, fields=sorted(set(fields)))
    return contact


@transaction.atomic
def contact_link_customer(
    *, contact: Contact, customer_code: str, document: str | None = None
) -> Contact:
    """The bot identified the customer: remember their ISP customer code (and
    the CPF/CNPJ they typed, unless another contact already has it)."""
    contact.customer_code = customer_code.strip()
    fields = ["customer_code"]
    if document:
        cleaned = clean_document(document)
        digest = document_hash(cleaned)
        if not Contact.objects.filter(document_hash=digest).exclude(pk=contact.pk).exists():
            contact.document_encrypted = encrypt(cleaned)
            contact.document_hash = digest
            fields += ["document_encrypted", "document_hash"]
    contact.save(update_fields=[*fields, "updated_at"])
    logger.info("contact_linked_to_customer", contact_id=contact.pk)
    return contact


def contact_find_by_document(raw: str) -> Contact | None:
    try:
        document = clean_document(raw)
    except ValidationError:
        return None
    return Contact.objects.filter(document_hash=document_hash(document)).first()


@transaction.atomic
def contact_relink(
    *,
    new_bsuid: str | None,
    old_bsuid: str | None = None,
    old_wa_id: str | None = None,
    new_wa_id: str | None = None,
) -> Contact | None:
    """A person's WhatsApp identity changed (a new number means a new BSUID):
    move it on their one contact, found by the old BSUID or else the old phone.

    None when nobody had the old identity. Contacts are never merged: if the
    new BSUID or phone already belongs to someone else, that part stays put.
    """
    old_bsuid = (old_bsuid or "").strip() or None
    old_wa_id = (old_wa_id or "").strip() or None
    new_bsuid = (new_bsuid or "").strip() or None
    new_wa_id = (new_wa_id or "").strip() or None
    rows = Contact.objects.select_for_update()
    contact = rows.filter(bsuid=old_bsuid).first() if old_bsuid else None
    if contact is None and old_wa_id:
        old_phone = canonical_phone(old_wa_id)
        contact = rows.filter(Q(wa_id=old_wa_id) | Q(phone=old_phone or old_wa_id)).first()
    if contact is None:
        return None
    changed: list[str] = []
    others = Contact.objects.exclude(pk=contact.pk)
    if new_bsuid and contact.bsuid != new_bsuid:
        if others.filter(bsuid=new_bsuid).exists():
            logger.warning("contact_relink_conflict", contact_id=contact.pk, field="bsuid")
        else:
            contact.bsuid = new_bsuid
            changed.append("bsuid")
    new_phone = canonical_phone(new_wa_id) if new_wa_id else None
    if new_wa_id and contact.wa_id != new_wa_id:
        if others.filter(Q(wa_id=new_wa_id) | Q(phone=new_phone or new_wa_id)).exists():
            logger.warning("contact_relink_conflict", contact_id=contact.pk, field="wa_id")
        else:
            contact.wa_id, contact.phone = new_wa_id, new_phone
            changed += ["wa_id", "phone"]
    if changed:
        contact.save(update_fields=[*changed, "updated_at"])
        logger.info("contact_relinked", contact_id=contact.pk, fields=changed)
    return contact


# --- Queues and SLA ---------------------------------------------------------------


def team_queue(team: Team | None) -> TeamQueue:
    """The team's queue settings; defaults when nobody configured them yet."""
    if team is None:
        return TeamQueue()
    queue = TeamQueue.objects.filter(team=team).first()
    return queue or TeamQueue(team=team)


def _set_due_times(conversation: Conversation, queue: TeamQueue, now: datetime) -> list[str]:
    try:
        schedule = parse_schedule(queue.business_hours)
    except (ValueError, TypeError):
        logger.warning("team_business_hours_invalid", team_id=queue.team_id)
        return []
    fields = []
    if conversation.first_response_at is None:
        conversation.first_response_due_at = add_business_minutes(
            now, queue.first_response_minutes, schedule
        )
        fields.append("first_response_due_at")
    conversation.resolution_due_at = add_business_minutes(now, queue.resolution_minutes, schedule)
    fields.append("resolution_due_at")
    return fields


def _active_count(agent: User) -> int:
    return Conversation.objects.filter(assignee=agent, state=State.OPEN).count()


def _auto_assignee(conversation: Conversation) -> User | None:
    """The least busy online agent of the team under its per-agent maximum."""
    if conversation.team_id is None:
        return None
    queue = TeamQueue.objects.select_for_update().filter(team_id=conversation.team_id).first()
    # The lock on the team's queue row serialises automatic assignment per team,
    # so two conversations arriving together cannot both take an agent's last slot.
    if queue is None or not queue.auto_assign:
        return None
    return (
        User.objects.filter(
            teams=conversation.team_id,
            is_active=True,
            availability=User.Availability.ONLINE,
        )
        .annotate(
            active=Count(
                "assigned_conversations",
                filter=Q(assigned_conversations__state=State.OPEN),
            )
        )
        .filter(active__lt=queue.max_active_per_agent)
        .order_by("active", "availability_changed_at", "id")
        .first()
    )


def _enqueue_in_team(conversation: Conversation, team: Team | None, now: datetime) -> list[str]:
    conversation.team = team
    conversation.assignee = None
    conversation.queued_at = now
    fields = ["team", "assignee", "queued_at", "state"]
    fields += _set_due_times(conversation, team_queue(team), now)
    agent = _auto_assignee(conversation)
    if agent is not None:
        conversation.state = State.OPEN
        conversation.assignee = agent
        logger.info("conversation_auto_assigned", conversation_id=conversation.pk, agent=agent.pk)
    return fields


# --- Inbound ----------------------------------------------------------------------


@dataclass(frozen=True)
class Received:
    message: Message
    created: bool


def _new_conversation(*, contact: Contact, inbox: Inbox, now: datetime) -> Conversation:
    bot = channels.has_bot()
    conversation = Conversation(
        contact=contact,
        inbox=inbox,
        team=inbox.default_team,
        state=State.BOT if bot else State.QUEUED,
        created_at=now,
        last_message_at=now,
    )
    if not bot:
        conversation.queued_at = now
    conversation.save()
    conversation.protocol = f"{timezone.localdate(now):%Y%m%d}-{conversation.pk:06d}"
    fields = ["protocol"]
    if not bot:
        fields += _enqueue_in_team(conversation, inbox.default_team, now)
    conversation.save(update_fields=fields)
    transaction.on_commit(metrics.CONVERSATIONS_CREATED.inc)
    logger.info(
        "conversation_created", conversation_id=conversation.pk, protocol=conversation.protocol
    )
    return conversation


def _active_conversation(
    *, contact: Contact, inbox: Inbox, now: datetime
) -> tuple[Conversation, bool]:
    """The contact's unresolved conversation in this inbox; a recently resolved
    one reopens, otherwise a new one starts."""
    for _attempt in range(3):
        active = (
            Conversation.objects.select_for_update()
            .filter(contact=contact, inbox=inbox)
            .exclude(state=State.RESOLVED)
            .first()
        )
        if active is not None:
            return active, False
        window = timedelta(minutes=settings.CONVERSATION_REOPEN_MINUTES)
        last = (
            Conversation.objects.select_for_update()
            .filter(
                contact=contact, inbox=inbox, state=State.RESOLVED, resolved_at__gte=now - window
            )
            .order_by("-resolved_at")
            .first()
        )
        try:
            with transaction.atomic():
                if last is not None:
                    _reopen(last, actor=None, now=now)
                    return last, False
                return _new_conversation(contact=contact, inbox=inbox, now=now), True
        except IntegrityError:
            continue  # a concurrent message of this contact opened one: use it
    raise ServiceError(_("Could not open the conversation; try again."), code="conversation_race")


@transaction.atomic
def message_receive(
    *,
    inbox: Inbox,
    bsuid: str | None = None,
    wa_id: str | None = None,
    profile_name: str = "",
    username: str = "",
    kind: str = Message.Kind.TEXT,
    text: str = "",
    payload: dict[str, Any] | None = None,
    external_id: str | None = None,
    media_id: str = "",
    media_mime_type: str = "",
    reply_to_external_id: str | None = None,
    sent_at: datetime | None = None,
    received_at: float | None = None,
) -> Received:
    """Store a customer's message: contact, conversation and message in one
    transaction, idempotent on the provider's message id (a redelivery returns
    the stored message with ``created=False`` and changes nothing)."""
    # message_processing_seconds runs from the channel's receipt
    # (``received_at``, a time.perf_counter() value) to the commit.
    started = received_at if received_at is not None else time.perf_counter()
    now = timezone.now()
    if external_id and (existing := Message.objects.filter(external_id=external_id).first()):
        return Received(existing, created=False)
    contact = contact_resolve(bsuid=bsuid, wa_id=wa_id, name=profile_name, username=username)
    # Only a message that reads as a score costs the look-up of a pending rating.
    score = rating_from(text=text, payload=payload or {})
    rated = _awaiting_rating(contact=contact, inbox=inbox, now=now) if score else None
    if rated is not None:
        conversation, is_new = rated, False
    else:
        conversation, is_new = _active_conversation(contact=contact, inbox=inbox, now=now)
    reply_to = (
        Message.objects.filter(external_id=reply_to_external_id, conversation__contact=contact)
        .only("id")
        .first()
        if reply_to_external_id
        else None
    )
    message = Message(
        conversation=conversation,
        direction=Message.Direction.IN,
        sender_type=Message.SenderType.CONTACT,
        kind=kind,
        text=text,
        payload=payload or {},
        external_id=external_id or None,
        media_id=media_id,
        media_mime_type=media_mime_type,
        reply_to=reply_to,
        status=Message.Status.RECEIVED,
        # Ordered by when the customer sent it, not when it reached us: WhatsApp
        # may deliver a batch out of order.
        created_at=min(sent_at or now, now),
    )
    try:
        with transaction.atomic():
            message.save()
    except IntegrityError:
        # Insert-or-ignore: the same delivery is being stored concurrently. Any
        # other constraint (SQLite's JSON check...) is not a duplicate: re-raise it.
        duplicate = Message.objects.filter(external_id=external_id).first() if external_id else None
        if duplicate is None:
            raise
        return Received(duplicate, created=False)

    updates: dict[str, Any] = {
        "last_message_at": Greatest(F("last_message_at"), message.created_at),
        "last_inbound_at": now,
        "unread_count": F("unread_count") + 1,
        "updated_at": now,
    }
    if rated is not None:
        # A rating answers a resolved conversation: it stays resolved.
        updates.update(csat_score=score, csat_answered_at=now, unread_count=F("unread_count"))
        message_id, conversation_id = message.pk, conversation.pk
        transaction.on_commit(
            lambda: signals.conversation_rated.send(
                sender=Conversation,
                conversation_id=conversation_id,
                score=score,
                message_id=message_id,
            )
        )
    if conversation.state == State.PENDING:
        # The customer answered: back into the agent's active conversations.
        updates["state"] = State.OPEN
    state_changed = is_new or "state" in updates
    Conversation.objects.filter(pk=conversation.pk).update(**updates)
    conversation.refresh_from_db()
    message.conversation = conversation

    if conversation.state == State.BOT:
        channels.enqueue_bot(message.pk)
    events.message_changed(message)
    _changed(conversation, state_changed=state_changed)
    if is_new and conversation.state != State.BOT and settings.CONVERSATION_GREETING:
        _greet(conversation)
    transaction.on_commit(lambda: metrics.MESSAGE_PROCESSING.observe(time.perf_counter() - started))
    return Received(message, created=True)


# How long a rating question waits for its answer: WhatsApp's own window.
RATING_ANSWER_WINDOW = timedelta(hours=24)
_RATING_TEXT = re.compile(r"^\s*([1-5])\s*(?:estrelas?|stars?|⭐+)?\s*[.!]?\s*$", re.IGNORECASE)
_RATING_REPLY = re.compile(r"^csat:([1-5])$")


def rating_from(*, text: str, payload: dict[str, Any]) -> int | None:
    """The 1-5 score in an answer to the rating question, if it is one: a tapped
    option (``reply_id`` "csat:N") or a message that is just the number."""
    if match := _RATING_REPLY.match(str(payload.get("reply_id") or "")):
        return int(match.group(1))
    if match := _RATING_TEXT.match(text or ""):
        return int(match.group(1))
    return None


def _awaiting_rating(*, contact: Contact, inbox: Inbox, now: datetime) -> Conversation | None:
    """The contact's resolved conversation whose rating question is unanswered,
    when they have no other conversation going on."""
    if (
        Conversation.objects.filter(contact=contact, inbox=inbox)
        .exclude(state=State.RESOLVED)
        .exists()
    ):
        return None
    return (
        Conversation.objects.select_for_update()
        .filter(
            contact=contact,
            inbox=inbox,
            state=State.RESOLVED,
            csat_score__isnull=True,
            csat_requested_at__gte=now - RATING_ANSWER_WINDOW,
        )
        .order_by("-csat_requested_at")
        .first()
    )


@transaction.atomic
def conversation_request_rating(*, conversation: Conversation) -> Conversation:
    """Mark that the customer was asked to rate this resolved conversation."""
    Conversation.objects.filter(pk=conversation.pk).update(csat_requested_at=timezone.now())
    conversation.refresh_from_db()
    return conversation


def _greet(conversation: Conversation) -> None:
    """Give the customer their protocol number at the start, as Brazilian
    telecom rules expect. The bot greets by itself when it is installed."""
    with translation.override(settings.LANGUAGE_CODE):
        text = _(
            "Hello! We have received your message. Your service protocol number is "
            "%(protocol)s. Someone from our team will answer you shortly."
        ) % {"protocol": conversation.protocol}
    message_send(conversation=conversation, text=text, sender_type=Message.SenderType.SYSTEM)


# --- Outbound ---------------------------------------------------------------------


def _check_may_write(conversation: Conversation, actor: User) -> None:
    if actor.is_supervisor or conversation.assignee_id in (None, actor.pk):
        return
    raise PermissionDenied(
        _("This conversation is assigned to %(name)s; ask them or a supervisor to transfer it.")
        % {"name": conversation.assignee.display_name if conversation.assignee else "?"}
    )


@transaction.atomic
def message_send(
    *,
    conversation: Conversation,
    text: str = "",
    kind: str = Message.Kind.TEXT,
    payload: dict[str, Any] | None = None,
    actor: User | None = None,
    sender_type: str | None = None,
    client_key: str | None = None,
    reply_to: Message | None = None,
    now: datetime | None = None,
    after_resolve: bool = False,
) -> Received:
    """Store an outbound message as ``pending`` and enqueue its delivery.

    ``actor`` is the agent writing (None for the bot or the system). A retried
    request with the same ``client_key`` returns the first message (``created``
    False) and sends nothing twice. ``after_resolve`` lets the bot write to a
    resolved conversation (the rating question and its thanks), never an agent.
    """
    now = now or timezone.now()
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if client_key and (
        existing := Message.objects.filter(conversation=conversation, client_key=client_key).first()
    ):
        return Received(existing, created=False)
    if conversation.state == State.RESOLVED and not (after_resolve and actor is None):
        raise ServiceError(
            _("This conversation is resolved; reopen it before writing to the customer."),
            code="conversation_resolved",
        )
    if kind not in WINDOW_FREE_KINDS and not conversation.service_window_open(now):
        raise ServiceError(
            _(
                "More than 24 hours have passed since the customer's last message: WhatsApp "
                "only allows an approved template message now."
            ),
            code="outside_service_window",
        )
    if kind == Message.Kind.TEXT and not text.strip():
        raise ValidationError({"text": [_("Write a message.")]})
    sender = sender_type or (Message.SenderType.AGENT if actor else Message.SenderType.BOT)
    fields: list[str] = ["last_message_at"]
    if actor is not None:
        _check_may_write(conversation, actor)
        if conversation.state in (State.BOT, State.QUEUED):
            # Answering an unassigned conversation takes it.
            _transition(conversation, State.OPEN, action=_("answered"))
            conversation.assignee = actor
            fields += ["state", "assignee"]
        if conversation.first_response_at is None:
            conversation.first_response_at = now
            fields.append("first_response_at")
        if conversation.assignee_id == actor.pk and conversation.unread_count:
            conversation.unread_count = 0
            fields.append("unread_count")

    message = Message(
        conversation=conversation,
        direction=Message.Direction.OUT,
        sender_type=sender,
        sender_user=actor,
        kind=kind,
        text=text,
        payload=payload or {},
        client_key=client_key or None,
        reply_to=reply_to,
        status=Message.Status.PENDING,
        created_at=now,
    )
    message.save()
    conversation.last_message_at = max(conversation.last_message_at, now)
    _save(conversation, *fields)
    channels.enqueue_delivery(conversation.inbox.channel, message.pk)
    events.message_changed(message)
    _changed(conversation, state_changed="state" in fields)
    return Received(message, created=True)


def canned_reply_render(reply: CannedReply, *, conversation: Conversation, actor: User) -> str:
    values = _placeholder_values(conversation=conversation, actor=actor)
    return PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), reply.text)


def _placeholder_values(*, conversation: Conversation, actor: User) -> dict[str, str]:
    contact = conversation.contact
    first_name = contact.display_name.split(" ")[0] if contact.has_name else ""
    return {
        "contact.name": contact.display_name if contact.has_name else "",
        "contact.first_name": first_name,
        "contact.customer_code": contact.customer_code,
        "conversation.protocol": conversation.protocol or "",
        "agent.name": actor.display_name,
    }


PLACEHOLDERS = sorted(
    ["contact.name", "contact.first_name", "contact.customer_code", "conversation.protocol",
     "agent.name"]
)  # fmt: skip


def _check_placeholders(text: str) -> None:
    # Any {{...}}, not only the dotted lower-case shape PLACEHOLDER fills: a
    # {{nome}} or {{Contact.Name}} would otherwise reach the customer as typed.
    found = {m.group(1) for m in re.finditer(r"\{\{\s*(.*?)\s*\}\}", text)}
    unknown = sorted(found - set(PLACEHOLDERS))
    if unknown:
        raise ValidationError(
            {
                "text": [
                    _("Unknown placeholder %(names)s; use %(allowed)s.")
                    % {
                        "names": ", ".join(f"{{{{{n}}}}}" for n in unknown),
                        "allowed": ", ".join(f"{{{{{n}}}}}" for n in PLACEHOLDERS),
                    }
                ]
            }
        )


@transaction.atomic
def canned_reply_create(
    *, shortcut: str, title: str, text: str, team: Team | None, actor: User
) -> CannedReply:
    _check_may_manage_canned(team=team, actor=actor)
    _check_placeholders(text)
    if CannedReply.objects.filter(shortcut=shortcut, team=team).exists():
        raise ValidationError({"shortcut": [_("This shortcut is already in use.")]})
    return CannedReply.objects.create(
        shortcut=shortcut, title=title, text=text, team=team, created_by=actor
    )


@transaction.atomic
def canned_reply_update(*, reply: CannedReply, actor: User, **changes: Any) -> CannedReply:
    # Both the reply's team and the one it moves to: a supervisor must not
    # take over a shared reply by moving it into their team.
    _check_may_manage_canned(team=reply.team, actor=actor)
    if "team" in changes:
        _check_may_manage_canned(team=changes["team"], actor=actor)
    if "text" in changes:
        _check_placeholders(changes["text"])
    for field in ("shortcut", "title", "text", "team"):
        if field in changes:
            setattr(reply, field, changes[field])
    if (
        CannedReply.objects.filter(shortcut=reply.shortcut, team=reply.team)
        .exclude(pk=reply.pk)
        .exists()
    ):
        raise ValidationError({"shortcut": [_("This shortcut is already in use.")]})
    reply.save()
    return reply


@transaction.atomic
def canned_reply_delete(*, reply: CannedReply, actor: User) -> None:
    _check_may_manage_canned(team=reply.team, actor=actor)
    logger.info("canned_reply_deleted", reply_id=reply.pk, actor=actor.pk)
    reply.delete()


def _check_may_manage_canned(*, team: Team | None, actor: User) -> None:
    if actor.is_admin:
        return
    if actor.is_supervisor and team is not None and actor.teams.filter(pk=team.pk).exists():
        return
    raise PermissionDenied(
        _("Only administrators manage shared canned replies; supervisors, their teams' ones.")
    )


@transaction.atomic
def message_apply_status(
    *,
    message: Message | None = None,
    external_id: str | None = None,
    status: str,
    at: datetime | None = None,
    error_code: str = "",
    error_title: str = "",
    error_detail: str = "",
) -> bool:
    """Move an outbound message's status forward; True if it changed.

    Statuses only move forward (pending < sent < delivered < read), ``failed``
    is terminal, a duplicate changes nothing. The row is locked while deciding,
    so two workers applying statuses at once cannot move a message back.
    """
    at = at or timezone.now()
    rows = Message.objects.select_for_update().filter(direction=Message.Direction.OUT)
    if message is not None:
        rows = rows.filter(pk=message.pk)
    elif external_id:
        rows = rows.filter(external_id=external_id)
    else:
        raise ValueError("message or external_id is required")
    status = Message.Status(status)
    if status not in _STATUS_TIMESTAMP:
        raise ValueError(f"cannot apply status {status!r}")
    current = rows.first()
    if current is None:
        return False
    before = current.status
    if before in (Message.Status.FAILED, Message.Status.READ):
        return False
    if status == Message.Status.FAILED:
        current.error_code = str(error_code)[:32]
        current.error_title = error_title[:255]
        current.error_detail = error_detail
    elif _STATUS_RANK[status] <= _STATUS_RANK[before]:
        return False
    current.status = status
    fields = ["status", "error_code", "error_title", "error_detail"]
    # A skipped step (read before delivered) still happened: fill it in.
    for step, field in _STATUS_TIMESTAMP.items():
        reached = step == status or (
            status in _STATUS_RANK
            and step in _STATUS_RANK
            and _STATUS_RANK[step] < _STATUS_RANK[status]
        )
        if reached and getattr(current, field) is None:
            setattr(current, field, at)
            fields.append(field)
    current.save(update_fields=fields)
    if before == Message.Status.PENDING and status != Message.Status.FAILED:
        transaction.on_commit(metrics.MESSAGES_SENT.labels(current.sender_type).inc)
    events.message_changed(current)
    return True


@transaction.atomic
def message_set_media(*, message: Message, path: str, mime_type: str) -> Message:
    """The channel stored the message's media at ``path`` in the default storage."""
    message.media_file = path
    message.media_mime_type = mime_type[:100]
    message.payload = {k: v for k, v in (message.payload or {}).items() if k != "media_error"}
    message.save(update_fields=["media_file", "media_mime_type", "payload"])
    events.message_changed(message)
    return message


@transaction.atomic
def message_set_media_error(*, message: Message, reason: str) -> Message:
    """The media could not be stored (too big, type not allowed, provider error)."""
    message.payload = {**(message.payload or {}), "media_error": reason[:500]}
    message.save(update_fields=["payload"])
    events.message_changed(message)
    return message


@transaction.atomic
def message_set_reaction(*, message: Message, by: str, emoji: str) -> Message:
    """``by`` (e.g. "contact") reacted to ``message`` with ``emoji``; an empty
    emoji takes their reaction back. Redelivering the same reaction changes nothing."""
    message = Message.objects.select_for_update().select_related("conversation").get(pk=message.pk)
    reactions = dict(message.reactions or {})
    if emoji:
        if reactions.get(by) == emoji:
            return message
        reactions[by] = emoji
    elif reactions.pop(by, None) is None:
        return message
    message.reactions = reactions
    message.save(update_fields=["reactions"])
    events.message_changed(message)
    return message


# --- Queue work -------------------------------------------------------------------


@transaction.atomic
def conversation_handoff(
    *, conversation: Conversation, team: Team | None = None, reason: str = ""
) -> Conversation:
    """The bot hands the customer to people: into the team's queue."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.state != State.BOT:
        # An agent may have answered (or resolved) while the bot was thinking:
        # handing off now would take the conversation away from them.
        raise ServiceError(
            _("A conversation that is %(state)s cannot be %(action)s.")
            % {"state": _state_label(conversation.state), "action": _("handed off")},
            code="invalid_transition",
        )
    _transition(conversation, State.QUEUED, action=_("handed off"))
    previous_team = conversation.team_id
    fields = _enqueue_in_team(conversation, team or conversation.team, timezone.now())
    _save(conversation, *fields)
    logger.info(
        "conversation_handoff",
        conversation_id=conversation.pk,
        team=conversation.team_id,
        reason=reason,
    )
    _changed(conversation, previous_team_id=previous_team)
    return conversation


def _check_assignable(agent: User, conversation: Conversation) -> None:
    if not agent.is_active:
        raise ValidationError({"agent": [_("This user is deactivated.")]})
    if (
        conversation.team_id
        and not agent.is_supervisor
        and not agent.teams.filter(pk=conversation.team_id).exists()
    ):
        raise ValidationError(
            {
                "agent": [
                    _("%(name)s is not in this conversation's team.") % {"name": agent.display_name}
                ]
            }
        )


@transaction.atomic
def conversation_assign(*, conversation: Conversation, agent: User, actor: User) -> Conversation:
    """Give the conversation to ``agent``. Supervisors assign anyone of the
    team; an agent may only take an unassigned one for themselves."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if not actor.is_supervisor:
        if agent.pk != actor.pk:
            raise PermissionDenied(_("Only supervisors assign conversations to someone else."))
        if conversation.assignee_id not in (None, actor.pk):
            raise ServiceError(
                _("%(name)s has already taken this conversation.")
                % {"name": conversation.assignee.display_name},
                code="already_assigned",
            )
    _check_assignable(agent, conversation)
    previous = conversation.assignee_id
    _transition(conversation, State.OPEN, action=_("assigned"))
    conversation.assignee = agent
    _save(conversation, "state", "assignee")
    logger.info(
        "conversation_assigned", conversation_id=conversation.pk, agent=agent.pk, actor=actor.pk
    )
    _changed(conversation, previous_assignee_id=previous)
    return conversation


def _team_ids(agent: User) -> list[int]:
    return list(agent.teams.values_list("id", flat=True))


def conversation_take_next(*, agent: User) -> Conversation | None:
    """The oldest queued conversation of the agent's teams, now theirs; None if
    the queues are empty. Admins also take conversations queued for no team
    (nobody else can see those). Two agents never get the same one: on
    PostgreSQL the row is locked and other takers skip it; elsewhere the claim
    is a compare-and-set UPDATE that only one of them wins."""
    team_ids = _team_ids(agent)
    if not team_ids and not agent.is_admin:
        return None
    mine = Q(team_id__in=team_ids)
    if agent.is_admin:
        mine |= Q(team__isnull=True)
    for _attempt in range(5):
        with transaction.atomic():
            queue = Conversation.objects.filter(
                mine, state=State.QUEUED, assignee__isnull=True
            ).order_by("queued_at", "id")
            if connection.features.has_select_for_update_skip_locked:
                queue = queue.select_for_update(skip_locked=True, of=("self",))
            candidate = queue.first()
            if candidate is None:
                return None
            claimed = Conversation.objects.filter(
                pk=candidate.pk, state=State.QUEUED, assignee__isnull=True
            ).update(state=State.OPEN, assignee=agent, updated_at=timezone.now())
            if not claimed:
                continue
            candidate.refresh_from_db()
            logger.info("conversation_taken", conversation_id=candidate.pk, agent=agent.pk)
            _changed(candidate)
            return candidate
    return None


@transaction.atomic
def conversation_transfer(
    *,
    conversation: Conversation,
    actor: User,
    team: Team | None = None,
    agent: User | None = None,
    note: str = "",
) -> Conversation:
    """To another team's queue, or straight to an agent; ``note`` tells the next
    person what has been done (an internal note, never sent to the customer)."""
    if team is None and agent is None:
        raise ValidationError({"team": [_("Choose a team or an agent.")]})
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    _check_may_write(conversation, actor)
    previous, previous_team = conversation.assignee_id, conversation.team_id
    now = timezone.now()
    if agent is not None:
        target_team = team or conversation.team
        if target_team is not None and not agent.teams.filter(pk=target_team.pk).exists():
            target_team = agent.teams.order_by("name").first() or target_team
        conversation.team = target_team
        _check_assignable(agent, conversation)
        _transition(conversation, State.OPEN, action=_("transferred"))
        conversation.assignee = agent
        fields = ["team", "state", "assignee"]
    else:
        _transition(conversation, State.QUEUED, action=_("transferred"))
        fields = _enqueue_in_team(conversation, team, now)
    conversation.unread_count = 0 if conversation.assignee_id is None else conversation.unread_count
    _save(conversation, *fields, "unread_count")
    if note.strip():
        note_create(conversation=conversation, author=actor, text=note)
    logger.info(
        "conversation_transferred",
        conversation_id=conversation.pk,
        team=conversation.team_id,
        agent=conversation.assignee_id,
        actor=actor.pk,
    )
    _changed(conversation, previous_assignee_id=previous, previous_team_id=previous_team)
    return conversation


@transaction.atomic
def conversation_set_pending(*, conversation: Conversation, actor: User) -> Conversation:
    """Waiting on the customer: out of the agent's active count until they answer."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    _check_may_write(conversation, actor)
    if conversation.state != State.OPEN:
        raise ServiceError(
            _("Only an open conversation can wait on the customer."), code="invalid_transition"
        )
    _transition(conversation, State.PENDING, action=_("set to wait"))
    _save(conversation, "state")
    _changed(conversation)
    return conversation


@transaction.atomic
def conversation_resolve(
    *, conversation: Conversation, actor: User | None, ask_rating: bool = True
) -> Conversation:
    """``ask_rating=False`` when the system closes a conversation nobody
    finished (idle too long): no rating question, and not counted as the
    bot's own success."""
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if actor is not None:
        _check_may_write(conversation, actor)
    now = timezone.now()
    # Self-served: the bot settled it, no person was ever involved.
    self_served = (
        ask_rating
        and actor is None
        and conversation.state == State.BOT
        and conversation.assignee_id is None
        and conversation.first_response_at is None
    )
    _transition(conversation, State.RESOLVED, action=_("resolved"))
    conversation.resolved_at = now
    conversation.resolved_by = actor
    conversation.unread_count = 0
    _save(conversation, "state", "resolved_at", "resolved_by", "unread_count")
    duration = (now - conversation.created_at).total_seconds()
    transaction.on_commit(lambda: metrics.CONVERSATION_DURATION.observe(duration))
    logger.info(
        "conversation_resolved",
        conversation_id=conversation.pk,
        actor=actor and actor.pk,
        self_served=self_served,
    )
    _changed(conversation)
    if not ask_rating:
        return conversation
    pk = conversation.pk
    transaction.on_commit(
        lambda: signals.conversation_resolved.send(
            sender=Conversation, conversation_id=pk, self_served=self_served
        )
    )
    return conversation


def _reopen(conversation: Conversation, *, actor: User | None, now: datetime) -> None:
    """Back to the last agent if they are still active, else to the team's queue."""
    if conversation.state != State.RESOLVED:
        raise ServiceError(_("This conversation is not resolved."), code="invalid_transition")
    assignee = actor if actor is not None else conversation.assignee
    if assignee is not None and assignee.is_active:
        conversation.state = State.OPEN
        conversation.assignee = assignee
        fields = ["state", "assignee"]
    elif actor is None and conversation.queued_at is None and channels.has_bot():
        # The bot settled it alone and the customer is back: the bot again,
        # starting afresh (same protocol). An agent who answered it straight
        # from the bot and has left since is no longer on it.
        conversation.state = State.BOT
        conversation.bot_state = {}
        conversation.assignee = None
        fields = ["state", "bot_state", "assignee"]
    else:
        conversation.state = State.QUEUED
        fields = _enqueue_in_team(conversation, conversation.team, now)
    conversation.resolved_at = None
    conversation.resolved_by = None
    conversation.save(update_fields=[*fields, "resolved_at", "resolved_by", "updated_at"])
    logger.info("conversation_reopened", conversation_id=conversation.pk)
    _changed(conversation)


@transaction.atomic
def conversation_reopen(*, conversation: Conversation, actor: User) -> Conversation:
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    if conversation.state != State.RESOLVED:
        raise ServiceError(_("This conversation is not resolved."), code="invalid_transition")
    other = (
        Conversation.objects.filter(
            contact_id=conversation.contact_id, inbox_id=conversation.inbox_id
        )
        .exclude(state=State.RESOLVED)
        .first()
    )
    if other is not None:
        raise ServiceError(
            _("The customer already has an open conversation (protocol %(protocol)s).")
            % {"protocol": other.protocol},
            code="already_open",
        )
    _reopen(conversation, actor=actor, now=timezone.now())
    return conversation


@transaction.atomic
def conversation_mark_read(*, conversation: Conversation, actor: User) -> Conversation:
    if conversation.assignee_id == actor.pk and conversation.unread_count:
        Conversation.objects.filter(pk=conversation.pk).update(unread_count=0)
        conversation.unread_count = 0
        _changed(conversation)
    return conversation


@transaction.atomic
def conversation_set_priority(
    *, conversation: Conversation, priority: int, actor: User
) -> Conversation:
    _check_may_write(conversation, actor)
    conversation.priority = Conversation.Priority(priority)
    _save(conversation, "priority")
    _changed(conversation)
    return conversation


@receiver(user_deactivated)
def _release_on_deactivation(sender: object, user: User, **_kwargs: object) -> None:
    conversations_release(agent=user)


def conversations_release(*, agent: User) -> int:
    """Hand a leaving agent's open and waiting conversations back to their teams' queues."""
    released = 0
    for conversation in Conversation.objects.filter(
        assignee=agent, state__in=[State.OPEN, State.PENDING]
    ).only("id"):
        with transaction.atomic():
            locked = Conversation.objects.select_for_update().get(pk=conversation.pk)
            if locked.assignee_id != agent.pk or not locked.is_active:
                continue
            _transition(locked, State.QUEUED, action=_("released"))
            fields = _enqueue_in_team(locked, locked.team, timezone.now())
            _save(locked, *fields)
            _changed(locked, previous_assignee_id=agent.pk)
            released += 1
    logger.info("conversations_released", agent=agent.pk, count=released)
    return released


# --- Notes and tags ---------------------------------------------------------------


@transaction.atomic
@dataclass
class NoteAdded:
    note: Note
    created: bool


def note_create(*, conversation: Conversation, author: User | None, text: str) -> Note:
    """An internal note; ``author`` None is the bot (its summary on a handoff)."""
    return note_add(conversation=conversation, author=author, text=text).note


@transaction.atomic
def note_add(
    *, conversation: Conversation, author: User | None, text: str, client_key: str | None = None
) -> NoteAdded:
    """``note_create`` for a writer that may retry: a request with a
    ``client_key`` seen before in this conversation returns the first note
    (``created`` False) and adds nothing."""
    if client_key:
        # Locked: two concurrent retries would both find no note and both add one.
        Conversation.objects.select_for_update().filter(pk=conversation.pk).first()
        existing = Note.objects.filter(conversation=conversation, client_key=client_key).first()
        if existing is not None:
            return NoteAdded(existing, created=False)
    text = text.strip()
    if not text:
        raise ValidationError({"text": [_("Write the note.")]})
    note = Note.objects.create(
        conversation=conversation, author=author, text=text, client_key=client_key or None
    )
    events.note_added(note)
    return NoteAdded(note, created=True)


def _tags_for(names: Iterable[str], *, actor: User) -> list[Tag]:
    wanted = {name.strip() for name in names if name and name.strip()}
    existing = {tag.name: tag for tag in Tag.objects.filter(name__in=wanted)}
    missing = sorted(wanted - set(existing))
    if missing and not actor.is_supervisor:
        raise ValidationError(
            {
                "tags": [
                    _("Unknown tags: %(names)s. Ask a supervisor to create them.")
                    % {"names": ", ".join(missing)}
                ]
            }
        )
    for name in missing:
        if len(name) > 50:
            raise ValidationError({"tags": [_("A tag has at most 50 characters.")]})
        existing[name], _created = Tag.objects.get_or_create(name=name)
    return list(existing.values())


@transaction.atomic
def conversation_set_tags(
    *, conversation: Conversation, names: Iterable[str], actor: User
) -> list[Tag]:
    tags = _tags_for(names, actor=actor)
    conversation.tags.set(tags)
    Conversation.objects.filter(pk=conversation.pk).update(updated_at=timezone.now())
    _changed(conversation)
    return sorted(tags, key=lambda tag: tag.name)


# --- Maintenance: stale conversations, retention purge, resending -----------------
# Called by manage.py close_stale_conversations, purge_old_data and
# resend_failed_messages.

STALE_CLOSED = "closed"
STALE_CLOSED_WITH_GOODBYE = "closed_with_goodbye"
STALE_GOODBYE_WINDOW_CLOSED = "goodbye_window_closed"
STALE_SKIPPED = "skipped"

# Customer-facing, so in Portuguese like the bot's own texts, whatever the
# console's language; it repeats the protocol, as Brazilian telecom rules expect.
STALE_GOODBYE_TEXT = (
    "Como não tivemos mais notícias, estamos encerrando este atendimento "
    "(protocolo {protocol}). Se precisar, é só mandar uma nova mensagem por aqui. Até logo!"
)


def conversations_stale(*, idle: timedelta, now: datetime | None = None) -> QuerySet[Conversation]:
    """Unresolved conversations with no message, either way, for longer than ``idle``."""
    idle_before = (now or timezone.now()) - idle
    return Conversation.objects.exclude(state=State.RESOLVED).filter(
        last_message_at__lt=idle_before
    )


@transaction.atomic
def conversation_close_stale(
    *,
    conversation: Conversation,
    idle: timedelta,
    goodbye: bool = False,
    now: datetime | None = None,
) -> str:
    """Resolve a conversation nobody wrote in for longer than ``idle``, saying
    why in an internal note; with ``goodbye`` the customer gets a short
    goodbye when WhatsApp's 24-hour window still allows free text.

    Returns ``STALE_CLOSED``, ``STALE_CLOSED_WITH_GOODBYE``,
    ``STALE_GOODBYE_WINDOW_CLOSED`` (closed, goodbye not allowed) or
    ``STALE_SKIPPED`` (someone wrote or resolved it since it was listed).
    The customer is not asked for a rating: they went quiet, and a question
    out of the blue days later would only add noise to the CSAT figures.
    """
    now = now or timezone.now()
    conversation = Conversation.objects.select_for_update().get(pk=conversation.pk)
    # Re-checked under the lock: a message that arrived since the listing wins.
    if conversation.state == State.RESOLVED or conversation.last_message_at >= now - idle:
        return STALE_SKIPPED
    quiet_for = format_duration(now - conversation.last_message_at, smallest="m")
    outcome = STALE_CLOSED
    if goodbye:
        if conversation.service_window_open(now):
            message_send(
                conversation=conversation,
                text=STALE_GOODBYE_TEXT.format(protocol=conversation.protocol),
                now=now,
            )
            conversation.refresh_from_db()
            outcome = STALE_CLOSED_WITH_GOODBYE
        else:
            outcome = STALE_GOODBYE_WINDOW_CLOSED
    with translation.override(settings.LANGUAGE_CODE):
        text = _("Resolved automatically: no message for %(quiet)s (limit %(limit)s).") % {
            "quiet": quiet_for,
            "limit": format_duration(idle),
        }
        if outcome == STALE_CLOSED_WITH_GOODBYE:
            text += " " + _("The customer was sent a goodbye.")
        elif outcome == STALE_GOODBYE_WINDOW_CLOSED:
            text += " " + _(
                "No goodbye was sent: more than 24 hours have passed since the customer's "
                "last message."
            )
    note_create(conversation=conversation, author=None, text=text)
    conversation_resolve(conversation=conversation, actor=None, ask_rating=False)
    return outcome


@dataclass
class PurgeTally:
    """What a purge removed (or would remove) so far."""

    conversations: int = 0
    messages: int = 0
    notes: int = 0
    media_files: int = 0
    media_bytes: int = 0
    # Files the database named but the storage no longer had.
    media_missing: int = 0
    # Media-only purge: messages that lost their file but keep their text.
    media_cleared: int = 0
    done: int = 0
    total: int = 0


def purgeable_conversations(*, resolved_before: datetime) -> QuerySet[Conversation]:
    return Conversation.objects.filter(state=State.RESOLVED, resolved_at__lt=resolved_before)


def purgeable_messages(*, resolved_before: datetime) -> QuerySet[Message]:
    """Every message of the conversations resolved before the cutoff (a rating
    question sent just after the resolve goes with them)."""
    return Message.objects.filter(
        conversation__state=State.RESOLVED, conversation__resolved_at__lt=resolved_before
    )


def purgeable_notes(*, resolved_before: datetime) -> QuerySet[Note]:
    return Note.objects.filter(
        conversation__state=State.RESOLVED, conversation__resolved_at__lt=resolved_before
    )


def expired_media(
    *, created_before: datetime, resolved_before: datetime | None = None
) -> QuerySet[Message]:
    """Messages with a stored file older than ``created_before``; without those
    the full purge (``resolved_before``) takes anyway."""
    rows = Message.objects.exclude(media_file="").filter(created_at__lt=created_before)
    if resolved_before is not None:
        rows = rows.exclude(
            conversation__state=State.RESOLVED, conversation__resolved_at__lt=resolved_before
        )
    return rows


def stored_size(path: str) -> int | None:
    """Bytes of a stored media file, None when the storage does not have it."""
    try:
        return default_storage.size(path)
    except (OSError, SuspiciousFileOperation):
        return None


def _delete_stored(path: str, tally: PurgeTally) -> None:
    size = stored_size(path)
    if size is None:
        tally.media_missing += 1
        return
    # An error here (permissions, a storage outage) stops the purge before the
    # rows naming the file are deleted, so a re-run still finds the file.
    default_storage.delete(path)
    tally.media_files += 1
    tally.media_bytes += size


def _id_batches(rows: QuerySet[Any], batch_size: int, *fields: str) -> Iterator[list[tuple]]:
    """``(pk, *fields)`` rows in batches, by increasing id: each batch is one
    short query from where the last ended, never a rescan of deleted rows."""
    last = 0
    while True:
        batch = list(
            rows.filter(pk__gt=last).order_by("pk").values_list("pk", *fields)[:batch_size]
        )
        if not batch:
            return
        yield batch
        last = batch[-1][0]


def messages_purge(*, resolved_before: datetime, batch_size: int = 1000) -> Iterator[PurgeTally]:
    """Delete the messages (and their media files) of conversations resolved
    before the cutoff, ``batch_size`` at a time, each batch in its own short
    transaction; yields the running tally after each batch. The conversation
    rows stay: protocol, times and rating still count in reports."""
    rows = purgeable_messages(resolved_before=resolved_before)
    tally = PurgeTally(total=rows.count())
    for batch in _id_batches(rows, batch_size, "media_file"):
        ids = [pk for pk, _path in batch]
        # Re-filtered: a conversation reopened since the batch was read keeps its messages.
        keep = rows.filter(pk__in=ids)
        for _pk, path in keep.exclude(media_file="").values_list("pk", "media_file"):
            _delete_stored(path, tally)
        with transaction.atomic():
            deleted, _by_model = keep.delete()
        tally.messages += deleted
        tally.done += len(ids)
        yield tally
    logger.info(
        "messages_purged",
        messages=tally.messages,
        media_files=tally.media_files,
        media_bytes=tally.media_bytes,
    )


def notes_purge(*, resolved_before: datetime, batch_size: int = 1000) -> Iterator[PurgeTally]:
    """Delete the internal notes of conversations resolved before the cutoff, in batches."""
    rows = purgeable_notes(resolved_before=resolved_before)
    tally = PurgeTally(total=rows.count())
    for batch in _id_batches(rows, batch_size):
        ids = [pk for (pk,) in batch]
        with transaction.atomic():
            deleted, _by_model = rows.filter(pk__in=ids).delete()
        tally.notes += deleted
        tally.done += len(ids)
        yield tally
    logger.info("notes_purged", notes=tally.notes)


def media_purge(
    *,
    created_before: datetime,
    resolved_before: datetime | None = None,
    batch_size: int = 1000,
) -> Iterator[PurgeTally]:
    """Delete stored media files older than ``created_before``; the messages
    keep their text and say the file is gone. Yields the tally per batch."""
    rows = expired_media(created_before=created_before, resolved_before=resolved_before)
    tally = PurgeTally(total=rows.count())
    with translation.override(settings.LANGUAGE_CODE):
        reason = _("The file was deleted under the data retention policy.")
    for batch in _id_batches(rows, batch_size):
        ids = [pk for (pk,) in batch]
        messages = list(rows.filter(pk__in=ids).only("pk", "media_file", "media_id", "payload"))
        for message in messages:
            _delete_stored(message.media_file, tally)
            message.media_file = ""
            # Without its media id the console no longer says "being downloaded…".
            message.media_id = ""
            message.payload = {**(message.payload or {}), "media_error": reason}
        with transaction.atomic():
            Message.objects.bulk_update(messages, ["media_file", "media_id", "payload"])
        tally.media_cleared += len(messages)
        tally.done += len(ids)
        yield tally
    logger.info(
        "media_purged",
        messages=tally.media_cleared,
        media_files=tally.media_files,
        media_bytes=tally.media_bytes,
    )


def data_purge_plan(
    *, resolved_before: datetime, media_before: datetime | None = None
) -> tuple[PurgeTally, PurgeTally | None]:
    """What ``messages_purge``/``notes_purge`` and ``media_purge`` would remove:
    counts and the bytes of the files still in the storage."""
    full = PurgeTally(
        conversations=purgeable_conversations(resolved_before=resolved_before)
        .filter(
            Exists(Message.objects.filter(conversation=OuterRef("pk")))
            | Exists(Note.objects.filter(conversation=OuterRef("pk")))
        )
        .count(),
        messages=purgeable_messages(resolved_before=resolved_before).count(),
        notes=purgeable_notes(resolved_before=resolved_before).count(),
    )
    _measure(purgeable_messages(resolved_before=resolved_before), full)
    media = None
    if media_before is not None:
        rows = expired_media(created_before=media_before, resolved_before=resolved_before)
        media = PurgeTally(media_cleared=rows.count())
        _measure(rows, media)
    return full, media


def _measure(rows: QuerySet[Message], tally: PurgeTally) -> None:
    paths = rows.exclude(media_file="").values_list("media_file", flat=True)
    for path in paths.iterator(chunk_size=2000):
        size = stored_size(path)
        if size is None:
            tally.media_missing += 1
        else:
            tally.media_files += 1
            tally.media_bytes += size


RESEND_QUEUED = "resent"
RESEND_NOT_FAILED = "not_failed"
RESEND_RESOLVED = "conversation_resolved"
RESEND_WINDOW_CLOSED = "outside_service_window"


def failed_messages(*, since: datetime, code: str = "") -> QuerySet[Message]:
    """Outbound messages that failed at or after ``since`` (with ``code``, if given)."""
    rows = Message.objects.filter(
        direction=Message.Direction.OUT, status=Message.Status.FAILED, failed_at__gte=since
    )
    return rows.filter(error_code=code) if code else rows


def message_resend_refusal(
    message: Message, conversation: Conversation, *, now: datetime
) -> str | None:
    """Why a failed message may not be sent again now, or None when it may."""
    if message.direction != Message.Direction.OUT or message.status != Message.Status.FAILED:
        return RESEND_NOT_FAILED
    if conversation.state == State.RESOLVED:
        return RESEND_RESOLVED
    if message.kind not in WINDOW_FREE_KINDS and not conversation.service_window_open(now):
        return RESEND_WINDOW_CLOSED
    return None


@transaction.atomic
def message_resend(*, message: Message, now: datetime | None = None) -> str:
    """Put a failed outbound message back to ``pending`` and enqueue its
    delivery again; ``RESEND_QUEUED``, or why not (``message_resend_refusal``).

    The row is locked and the update is conditional on ``failed``, so two
    runs at once queue it once; the sender itself skips anything no longer
    pending. The old provider id and timestamps are cleared: a late status
    about the failed attempt must not move the new one.
    """
    now = now or timezone.now()
    locked = Message.objects.select_for_update().filter(pk=message.pk).first()
    if locked is None:
        return RESEND_NOT_FAILED
    conversation = Conversation.objects.select_related("inbox").get(pk=locked.conversation_id)
    refusal = message_resend_refusal(locked, conversation, now=now)
    if refusal is not None:
        return refusal
    changed = Message.objects.filter(pk=locked.pk, status=Message.Status.FAILED).update(
        status=Message.Status.PENDING,
        external_id=None,
        error_code="",
        error_title="",
        error_detail="",
        sent_at=None,
        delivered_at=None,
        read_at=None,
        failed_at=None,
    )
    if not changed:
        return RESEND_NOT_FAILED
    locked.refresh_from_db()
    channels.enqueue_delivery(conversation.inbox.channel, locked.pk)
    events.message_changed(locked)
    logger.info("message_resend_queued", message_id=locked.pk)
    return RESEND_QUEUED

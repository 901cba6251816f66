"""Meta's webhook envelope, read into plain dataclasses.

Nothing here touches the database: ``parse_envelope`` turns the raw bytes of a
webhook POST (already signature-checked) into what the services store. Every
inbound message keeps its raw object as ``payload``, so nothing Meta sent is
lost even when we only show a summary.

Identity in the username era (Meta, "Business-scoped user IDs", 2026):
``contacts[].user_id`` is the BSUID (``BR.1502576394655843``), ``contacts[].wa_id``
the phone (absent for many username users), ``contacts[].profile.username`` a
display handle; a message's ``from`` (phone) may be absent, and
``from_user_id`` carries the BSUID. Statuses name the customer by
``recipient_id`` (phone) and ``recipient_user_id`` (BSUID). A changed BSUID
arrives as a ``system`` message (``user_changed_number`` /
``user_changed_user_id``) with ``system.previous_user_id`` and the new
``system.user_id`` / ``system.wa_id``; older integrations knew it as a
``user_id_update`` change, which is read too.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import structlog

from conversations.models import Message

logger = structlog.get_logger(__name__)

Kind = Message.Kind

WHATSAPP_OBJECT = "whatsapp_business_account"
MEDIA_TYPES = {"image", "audio", "video", "document", "sticker"}
IDENTITY_CHANGE_TYPES = {"user_changed_number", "user_changed_user_id"}
STATUS_VALUES = {"sent", "delivered", "read", "failed"}

# Meta's envelopes nest about ten deep. A document much deeper is not one, and
# storing it would recurse as deep again (cleaning, the JSON column's encoder).
MAX_DEPTH = 64
# The columns the ids from an envelope are stored in (or looked up by).
MESSAGE_ID_LENGTH = 128  # Message.external_id
WA_ID_LENGTH = 32  # Contact.wa_id
BSUID_LENGTH = 128  # Contact.bsuid
PHONE_NUMBER_ID_LENGTH = 64  # WhatsAppAccount.phone_number_id

# UTF-16 halves: JSON's "\ud800" escape reads into one, and no UTF-8 encoder
# (psycopg, SQLite) takes it.
_SURROGATES = re.compile("[\ud800-\udfff]")


class EnvelopeError(ValueError):
    """The body is not JSON, or not a WhatsApp webhook envelope."""


class RefusedItem(ValueError):
    """One message or status of the envelope carries an id no column can hold:
    that item is skipped, the rest of the delivery is stored."""


@dataclass(frozen=True)
class Sender:
    bsuid: str | None = None
    wa_id: str | None = None
    name: str = ""
    username: str = ""


@dataclass(frozen=True)
class Reaction:
    message_external_id: str
    emoji: str


@dataclass(frozen=True)
class IdentityChange:
    """A person's BSUID (and maybe phone) changed."""

    previous_bsuid: str | None
    bsuid: str | None
    previous_wa_id: str | None = None
    wa_id: str | None = None


@dataclass(frozen=True)
class InboundMessage:
    external_id: str
    type: str
    kind: str
    sender: Sender
    text: str = ""
    payload: dict[str, Any] = field(default_factory=dict)
    media_id: str = ""
    media_mime_type: str = ""
    reply_to_external_id: str | None = None
    sent_at: datetime | None = None
    reaction: Reaction | None = None
    identity_change: IdentityChange | None = None


@dataclass(frozen=True)
class InboundStatus:
    external_id: str
    status: str
    at: datetime | None
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    error_code: str = ""
    error_title: str = ""
    error_detail: str = ""


@dataclass(frozen=True)
class Change:
    """One ``entry[].changes[]`` item about one business phone number."""

    field: str
    phone_number_id: str | None
    messages: list[InboundMessage] = field(default_factory=list)
    statuses: list[InboundStatus] = field(default_factory=list)
    identity_changes: list[IdentityChange] = field(default_factory=list)
    skipped: int = 0


@dataclass(frozen=True)
class Envelope:
    changes: list[Change]


def clean_text(text: str) -> str:
    """``text`` as every database stores it: without NUL (PostgreSQL's text and
    jsonb refuse it) and with each lone surrogate replaced by U+FFFD."""
    if "\x00" in text:
        text = text.replace("\x00", "")
    if _SURROGATES.search(text):
        text = _SURROGATES.sub("\ufffd", text)
    return text


def clean_json(value: Any) -> Any:
    """``value`` with every string in it cleaned, dict keys included. Only for
    documents within MAX_DEPTH (parse_envelope checks it first)."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): clean_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [clean_json(item) for item in value]
    return value


def _str(value: Any) -> str:
    """A text to show or store: cleaned."""
    if value is None:
        return ""
    return clean_text(value if isinstance(value, str) else str(value))


def _opt(value: Any) -> str | None:
    """An id as Meta sent it, NOT cleaned: a NUL removed from an id would name
    another message. ``_checked_id`` refuses what a column cannot hold."""
    if value is None:
        return None
    text = (value if isinstance(value, str) else str(value)).strip()
    return text or None


def _checked_id(value: str | None, *, name: str, limit: int) -> str | None:
    """``value`` if a database column can hold it; else RefusedItem, which says why."""
    if value is None:
        return None
    if clean_text(value) != value:
        raise RefusedItem(f"{name} contains NUL or a lone surrogate")
    if len(value) > limit:
        raise RefusedItem(f"{name} is longer than {limit} characters")
    return value


def _reference(value: Any, *, limit: int = MESSAGE_ID_LENGTH) -> str | None:
    """An id we only look up (the message replied or reacted to): one no column
    can hold names no stored message, so it is dropped, not refused."""
    try:
        return _checked_id(_opt(value), name="reference", limit=limit)
    except RefusedItem:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def parse_timestamp(value: Any) -> datetime | None:
    """Meta's Unix timestamps come as strings of seconds."""
    try:
        return datetime.fromtimestamp(int(_str(value)), tz=UTC)
    except (ValueError, OverflowError, OSError):
        return None


def _refuse_constant(name: str) -> float:
    raise EnvelopeError(f"body is not valid JSON: {name} is not a JSON number")


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):
        # 1e400 reads as infinity: no JSON column stores it.
        raise EnvelopeError("body is not valid JSON: a number is out of range")
    return number


def _load(raw: bytes) -> Any:
    try:
        # NaN and Infinity are Python's extension, not JSON: a JSON column refuses them.
        data = json.loads(raw, parse_constant=_refuse_constant, parse_float=_finite_float)
    except EnvelopeError:
        raise
    except RecursionError as exc:
        raise EnvelopeError("body is nested too deep") from exc
    except ValueError as exc:
        # Not JSON, not UTF-8, or an integer over Python's 4300 digits.
        raise EnvelopeError("body is not valid JSON") from exc
    if not _depth_within(data, MAX_DEPTH):
        raise EnvelopeError("body is nested too deep")
    return data


def _depth_within(document: Any, limit: int) -> bool:
    # Iterative: a recursive walk would hit the recursion limit it guards against.
    stack = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict):
            children = list(node.values())
        elif isinstance(node, list):
            children = node
        else:
            continue
        if depth > limit:
            return False
        stack.extend((child, depth + 1) for child in children)
    return True


def parse_envelope(raw: bytes) -> Envelope:
    data = _load(raw)
    if not isinstance(data, dict) or data.get("object") != WHATSAPP_OBJECT:
        raise EnvelopeError(f"object is not {WHATSAPP_OBJECT!r}")
    entries = data.get("entry")
    if not isinstance(entries, list):
        raise EnvelopeError("entry is not a list")
    changes: list[Change] = []
    for entry in entries:
        if not isinstance(entry, dict) or not isinstance(entry.get("changes"), list):
            raise EnvelopeError("entry without a changes list")
        for change in entry["changes"]:
            if not isinstance(change, dict) or not isinstance(change.get("value"), dict):
                raise EnvelopeError("change without a value object")
            changes.append(_parse_change(_str(change.get("field")), change["value"]))
    return Envelope(changes=changes)


def _refused(item: str, exc: RefusedItem) -> None:
    # The reason only: the ids themselves may be phone numbers.
    logger.warning("whatsapp_webhook_item_refused", item=item, reason=str(exc))


def _parse_change(field_name: str, value: dict[str, Any]) -> Change:
    try:
        phone_number_id = _checked_id(
            _opt(_dict(value.get("metadata")).get("phone_number_id")),
            name="phone_number_id",
            limit=PHONE_NUMBER_ID_LENGTH,
        )
    except RefusedItem as exc:
        # No number of ours has it: the ingest skips this change as an unknown number.
        _refused("change", exc)
        phone_number_id = None
    if field_name == "user_id_update":
        updates: list[IdentityChange] = []
        skipped = 0
        for item in _list(value.get("user_id_update")):
            try:
                update = _user_id_update(item)
            except RefusedItem as exc:
                _refused("user_id_update", exc)
                skipped += 1
                continue
            if update is not None:
                updates.append(update)
        return Change(
            field=field_name,
            phone_number_id=phone_number_id,
            identity_changes=updates,
            skipped=skipped,
        )
    if field_name != "messages":
        return Change(field=field_name, phone_number_id=phone_number_id)

    contacts = [_sender(c) for c in _list(value.get("contacts")) if isinstance(c, dict)]
    messages: list[InboundMessage] = []
    skipped = 0
    # A bad item is skipped, never the delivery: a 400 or a 500 would make Meta
    # redeliver the good ones beside it for days.
    for raw in _list(value.get("messages")):
        try:
            message = _message(raw, contacts) if isinstance(raw, dict) else None
        except RefusedItem as exc:
            _refused("message", exc)
            message = None
        if message is None:
            skipped += 1
        else:
            messages.append(message)
    statuses: list[InboundStatus] = []
    for raw in _list(value.get("statuses")):
        try:
            status = _status(raw) if isinstance(raw, dict) else None
        except RefusedItem as exc:
            _refused("status", exc)
            status = None
        if status is None:
            skipped += 1
        else:
            statuses.append(status)
    return Change(
        field=field_name,
        phone_number_id=phone_number_id,
        messages=messages,
        statuses=statuses,
        skipped=skipped,
    )


def _sender(contact: dict[str, Any]) -> Sender:
    profile = _dict(contact.get("profile"))
    return Sender(
        bsuid=_opt(contact.get("user_id")),
        wa_id=_opt(contact.get("wa_id")),
        name=_str(profile.get("name")).strip(),
        username=_str(profile.get("username")).strip(),
    )


def _sender_of(message: dict[str, Any], contacts: list[Sender]) -> Sender:
    """The contact entry of this message's author: matched by phone or BSUID; a
    lone entry is theirs; the message's own ids fill what the entry lacks."""
    wa_id = _opt(message.get("from"))
    bsuid = _opt(message.get("from_user_id"))
    found = next(
        (c for c in contacts if (wa_id and c.wa_id == wa_id) or (bsuid and c.bsuid == bsuid)),
        None,
    )
    if found is None and len(contacts) == 1:
        # No id in common: the lone entry is theirs unless an id contradicts it.
        only = contacts[0]
        if not (wa_id and only.wa_id) and not (bsuid and only.bsuid):
            found = only
    found = found or Sender()
    return Sender(
        bsuid=found.bsuid or bsuid,
        wa_id=found.wa_id or wa_id,
        name=found.name,
        username=found.username,
    )


def _checked_sender(sender: Sender) -> Sender:
    _checked_id(sender.wa_id, name="sender wa_id", limit=WA_ID_LENGTH)
    _checked_id(sender.bsuid, name="sender user_id", limit=BSUID_LENGTH)
    return sender


def _checked_identity(change: IdentityChange | None) -> IdentityChange | None:
    if change is not None:
        for name, value in (("user_id", change.previous_bsuid), ("user_id", change.bsuid)):
            _checked_id(value, name=name, limit=BSUID_LENGTH)
        for name, value in (("wa_id", change.previous_wa_id), ("wa_id", change.wa_id)):
            _checked_id(value, name=name, limit=WA_ID_LENGTH)
    return change


def _message(raw: dict[str, Any], contacts: list[Sender]) -> InboundMessage | None:
    external_id = _checked_id(_opt(raw.get("id")), name="message id", limit=MESSAGE_ID_LENGTH)
    if external_id is None:
        return None
    sender = _checked_sender(_sender_of(raw, contacts))
    msg_type = _str(raw.get("type")) or "unknown"
    # Ids are read before the cleaning below, which would change them silently.
    original_body = _dict(raw.get(msg_type))
    reply_to = _reference(_dict(raw.get("context")).get("id"))
    identity_change = (
        _checked_identity(_system_identity_change(raw, original_body))
        if msg_type == "system"
        else None
    )
    # Everything stored is cleaned, payload keys included: a database refuses NUL.
    raw = clean_json(raw)
    body = _dict(raw.get(msg_type))
    common: dict[str, Any] = {
        "external_id": external_id,
        "type": msg_type,
        "sender": sender,
        "payload": raw,
        "reply_to_external_id": reply_to,
        "sent_at": parse_timestamp(raw.get("timestamp")),
    }

    if msg_type == "text":
        return InboundMessage(kind=Kind.TEXT, text=_str(body.get("body")), **common)
    if msg_type in MEDIA_TYPES:
        return InboundMessage(
            kind=Kind(msg_type),
            text=_str(body.get("caption")),
            media_id=_str(body.get("id"))[:128],
            media_mime_type=_str(body.get("mime_type"))[:100],
            **common,
        )
    if msg_type == "location":
        return InboundMessage(kind=Kind.LOCATION, text=_location_text(body), **common)
    if msg_type == "contacts":
        cards = _list(raw.get("contacts"))
        return InboundMessage(kind=Kind.CONTACTS, text=_contacts_text(cards), **common)
    if msg_type == "interactive":
        reply = _dict(body.get(_str(body.get("type"))))
        common["payload"] = {**raw, "reply_id": _str(reply.get("id"))[:200]}
        return InboundMessage(kind=Kind.INTERACTIVE, text=_interactive_text(body), **common)
    if msg_type == "button":
        # A template's quick-reply button: its "payload" is the id we gave it.
        common["payload"] = {**raw, "reply_id": _str(body.get("payload"))[:200]}
        return InboundMessage(kind=Kind.BUTTON, text=_str(body.get("text")), **common)
    if msg_type == "reaction":
        target = _reference(original_body.get("message_id"))
        reaction = Reaction(target, _str(body.get("emoji"))) if target else None
        return InboundMessage(
            kind=Kind.REACTION, text=_str(body.get("emoji")), reaction=reaction, **common
        )
    if msg_type == "system":
        return InboundMessage(
            kind=Kind.UNSUPPORTED,
            text=_str(body.get("body")),
            identity_change=identity_change,
            **common,
        )
    # order, unsupported, unknown, and whatever type Meta adds next.
    return InboundMessage(kind=Kind.UNSUPPORTED, **common)


def _location_text(location: dict[str, Any]) -> str:
    name = _str(location.get("name")).strip()
    address = _str(location.get("address")).strip()
    label = " — ".join(part for part in (name, address) if part)
    if not label:
        label = f"{_str(location.get('latitude'))}, {_str(location.get('longitude'))}"
    return f"📍 {label}"


def _contacts_text(cards: list[Any]) -> str:
    lines = []
    for card in cards:
        card = _dict(card)
        name = _dict(card.get("name"))
        label = _str(name.get("formatted_name") or name.get("first_name")).strip()
        phones = [
            _str(p.get("phone") or p.get("wa_id")).strip()
            for p in _list(card.get("phones"))
            if isinstance(p, dict)
        ]
        phones = [p for p in phones if p]
        parts = [part for part in (label, ", ".join(phones)) if part]
        if parts:
            lines.append("👤 " + ": ".join(parts))
    return "\n".join(lines)


def _interactive_text(interactive: dict[str, Any]) -> str:
    kind = _str(interactive.get("type"))
    reply = _dict(interactive.get(kind))
    title = _str(reply.get("title") or reply.get("body") or reply.get("name")).strip()
    return title


def _system_identity_change(raw: dict[str, Any], system: dict[str, Any]) -> IdentityChange | None:
    if _str(system.get("type")) not in IDENTITY_CHANGE_TYPES:
        return None
    change = IdentityChange(
        previous_bsuid=_opt(system.get("previous_user_id")) or _opt(raw.get("from_user_id")),
        bsuid=_opt(system.get("user_id")),
        previous_wa_id=_opt(raw.get("from")),
        wa_id=_opt(system.get("wa_id")) or _opt(system.get("new_wa_id")),
    )
    if change.previous_bsuid == change.bsuid and change.previous_wa_id == change.wa_id:
        return None
    return change


def _user_id_update(item: Any) -> IdentityChange | None:
    item = _dict(item)
    user_id = item.get("user_id")
    if isinstance(user_id, dict):
        previous, current = _opt(user_id.get("previous")), _opt(user_id.get("current"))
    else:
        previous, current = _opt(item.get("previous_user_id")), _opt(user_id)
    if not previous or not current or previous == current:
        return None
    return _checked_identity(
        IdentityChange(previous_bsuid=previous, bsuid=current, wa_id=_opt(item.get("wa_id")))
    )


def _status(raw: dict[str, Any]) -> InboundStatus | None:
    external_id = _checked_id(_opt(raw.get("id")), name="status id", limit=MESSAGE_ID_LENGTH)
    status = _str(raw.get("status"))
    if external_id is None or not status:
        return None
    errors = [e for e in _list(raw.get("errors")) if isinstance(e, dict)]
    error = errors[0] if errors else {}
    details = _str(_dict(error.get("error_data")).get("details"))
    return InboundStatus(
        external_id=external_id,
        status=status,
        at=parse_timestamp(raw.get("timestamp")),
        recipient_id=_reference(raw.get("recipient_id"), limit=WA_ID_LENGTH),
        recipient_user_id=_reference(raw.get("recipient_user_id"), limit=BSUID_LENGTH),
        error_code=_str(error.get("code")),
        error_title=_str(error.get("title")),
        error_detail=details or _str(error.get("message")),
    )

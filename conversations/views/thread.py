"""The conversation view (/console/c/<pk>/) and the fragments the browser
refetches when a live event says something changed: the thread (or a slice of
it), one message, one note, the header with its actions, the side panel.

Every endpoint fetches the conversation through ``conversation_get_for``, so a
conversation the user may not see is a 404 everywhere. Changes never happen
here: the page's script calls the REST API (``/api/v1/conversations/<id>/…``)
and then asks for the fragment again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.db.models import Prefetch, Q
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import Team, User
from conversations import channels, panels, selectors, services
from conversations.markup import chat_plain
from conversations.models import Conversation, Message, Note, Tag

State = Conversation.State
Kind = Message.Kind

# How many messages the page shows at first and "Load earlier" adds each time.
THREAD_SIZE = 100
# A reconnect catch-up never returns more than this; the page reloads the thread beyond it.
CATCH_UP_LIMIT = 200
PREVIOUS_CONVERSATIONS = 20

MEDIA_KINDS = {Kind.IMAGE, Kind.AUDIO, Kind.VIDEO, Kind.DOCUMENT, Kind.STICKER}


# --- The thread -------------------------------------------------------------------


@dataclass
class Bubble:
    """What the message template needs beyond the row: worked out here so the
    template stays a layout, and every customer-supplied string stays a plain
    string for the autoescaping template to escape."""

    role: str  # "in" | "agent" | "bot" | "system"
    sender: str
    media_url: str | None = None
    media_note: str = ""
    filename: str = ""
    location: dict[str, str] | None = None
    options: list[str] = field(default_factory=list)
    template_name: str = ""
    # A template's file header: {"kind", "link", "filename"}.
    template_file: dict[str, str] | None = None
    reactions: list[dict[str, str]] = field(default_factory=list)
    reply_preview: str = ""
    reply_sender: str = ""
    status_label: str = ""
    failure: str = ""


def _media_url(message_id: int) -> str | None:
    # By name only: the core does not import the channel that serves media.
    try:
        return reverse("whatsapp-media", args=[message_id])
    except NoReverseMatch:
        return None


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _coordinate(value: Any, limit: int) -> str | None:
    try:
        number = Decimal(str(value))
    except (InvalidOperation, ValueError):
        return None
    if not number.is_finite() or abs(number) > limit:
        return None
    return format(number.normalize(), "f")


def _location(message: Message) -> dict[str, str] | None:
    payload = _dict(message.payload)
    # Inbound: WhatsApp's own {"location": {...}}; outbound: the fields at the top.
    place = _dict(payload.get("location")) or payload
    lat = _coordinate(place.get("latitude"), 90)
    lon = _coordinate(place.get("longitude"), 180)
    if lat is None or lon is None:
        return None
    label = " — ".join(
        str(part).strip() for part in (place.get("name"), place.get("address")) if part
    )
    query = urlencode({"mlat": lat, "mlon": lon})
    return {
        "lat": lat,
        "lon": lon,
        "label": label or f"{lat}, {lon}",
        "url": f"https://www.openstreetmap.org/?{query}#map=17/{lat}/{lon}",
    }


def _filename(message: Message) -> str:
    payload = _dict(message.payload)
    name = _dict(payload.get("document")).get("filename") or payload.get("filename") or ""
    return str(name)[:255]


def _options(message: Message) -> list[str]:
    """The buttons or list rows an outbound interactive message offered."""
    payload = _dict(message.payload)
    titles: list[str] = []
    for button in payload.get("buttons") or []:
        button = _dict(button)
        title = button.get("title") or _dict(button.get("reply")).get("title")
        if title:
            titles.append(str(title))
    for section in payload.get("sections") or []:
        for row in _dict(section).get("rows") or []:
            if _dict(row).get("title"):
                titles.append(str(row["title"]))
    return titles


def _who_reacted(key: str, contact_name: str) -> str:
    return contact_name if key == "contact" else _("Us")


def _sender(message: Message, contact_name: str) -> tuple[str, str]:
    if message.sender_type == Message.SenderType.SYSTEM or message.kind == Kind.SYSTEM:
        return "system", _("System")
    if message.direction == Message.Direction.IN:
        return "in", contact_name
    if message.sender_type == Message.SenderType.AGENT:
        return "agent", (message.sender_user.display_name if message.sender_user else _("Agent"))
    return "bot", _("Bot")


def _preview(message: Message) -> str:
    text = " ".join(chat_plain(message.text).split())
    if not text:
        return str(Kind(message.kind).label) if message.kind in Kind.values else message.kind
    return text if len(text) <= 120 else text[:119] + "…"


def _template_file(payload: dict[str, Any]) -> dict[str, str] | None:
    """The image, video or document a template message carries in its header."""
    for component in payload.get("components") or []:
        if not isinstance(component, dict) or component.get("type") != "header":
            continue
        for parameter in component.get("parameters") or []:
            kind = parameter.get("type") if isinstance(parameter, dict) else None
            media = parameter.get(kind) if kind in ("image", "video", "document") else None
            if isinstance(media, dict) and str(media.get("link") or "").startswith("https://"):
                return {
                    "kind": str(kind),
                    "link": str(media["link"]),
                    "filename": str(media.get("filename") or ""),
                }
    return None


def bubble(message: Message, contact_name: str) -> Bubble:
    role, sender = _sender(message, contact_name)
    view = Bubble(role=role, sender=sender)
    payload = _dict(message.payload)
    if message.kind in MEDIA_KINDS:
        if message.media_file:
            view.media_url = _media_url(message.pk)
        if view.media_url is None:
            if payload.get("media_error"):
                view.media_note = str(payload["media_error"])
            elif message.direction == Message.Direction.IN and message.media_id:
                view.media_note = _("The file is being downloaded…")
            else:
                view.media_note = _("The file is not available in the console.")
        if message.kind == Kind.DOCUMENT:
            view.filename = _filename(message) or _("Document")
    elif message.kind == Kind.LOCATION:
        view.location = _location(message)
    elif message.kind == Kind.INTERACTIVE and message.direction == Message.Direction.OUT:
        view.options = _options(message)
    elif message.kind == Kind.TEMPLATE:
        view.template_name = str(payload.get("name") or "")
        view.template_file = _template_file(payload)
    view.reactions = [
        {"emoji": str(emoji), "by": _who_reacted(str(key), contact_name)}
        for key, emoji in sorted(_dict(message.reactions).items())
        if emoji
    ]
    if message.reply_to_id and message.reply_to is not None:
        view.reply_preview = _preview(message.reply_to)
        view.reply_sender = (
            contact_name if message.reply_to.direction == Message.Direction.IN else _("Us")
        )
    if message.direction == Message.Direction.OUT:
        view.status_label = str(Message.Status(message.status).label)
        if message.status == Message.Status.FAILED:
            title = message.error_title or _("The message could not be delivered.")
            view.failure = (
                _("Not delivered: %(reason)s (code %(code)s)")
                % {"reason": title, "code": message.error_code}
                if message.error_code
                else _("Not delivered: %(reason)s") % {"reason": title}
            )
    return view


def _day_label(day: date, today: date) -> str:
    if day == today:
        return _("Today")
    if day == today - timedelta(days=1):
        return _("Yesterday")
    return date_format(day, "DATE_FORMAT")


@dataclass
class Entry:
    """One line of the thread: a message, a note or the day they start."""

    kind: str  # "message" | "note" | "day"
    day: date
    day_label: str
    message: Message | None = None
    note: Note | None = None


def _decorate(item: Message | Note, contact_name: str, today: date) -> None:
    item.day = timezone.localdate(item.created_at)  # type: ignore[union-attr]
    item.day_label = _day_label(item.day, today)  # type: ignore[union-attr]
    item.ts = int(item.created_at.timestamp() * 1000)  # type: ignore[union-attr]
    if isinstance(item, Message):
        item.ui = bubble(item, contact_name)  # type: ignore[attr-defined]


def build_thread(
    conversation: Conversation, messages: list[Message], notes: list[Note]
) -> list[Entry]:
    """Messages and notes in time order (a note after a message of the same
    instant), with a day line wherever the day changes."""
    today = timezone.localdate()
    name = conversation.contact.display_name
    items: list[Message | Note] = [*messages, *notes]
    for item in items:
        _decorate(item, name, today)
    items.sort(key=lambda i: (i.created_at, isinstance(i, Note), i.pk))
    entries: list[Entry] = []
    last_day: date | None = None
    for item in items:
        day: date = item.day  # type: ignore[union-attr]
        if day != last_day:
            entries.append(Entry("day", day, item.day_label))  # type: ignore[union-attr]
            last_day = day
        if isinstance(item, Message):
            entries.append(Entry("message", day, "", message=item))
        else:
            entries.append(Entry("note", day, "", note=item))
    return entries


def _messages(conversation: Conversation) -> Any:
    return selectors.messages_of(conversation).select_related("reply_to")


def _notes(conversation: Conversation) -> Any:
    return Note.objects.filter(conversation=conversation).select_related("author")


@dataclass
class Slice:
    entries: list[Entry]
    has_more: bool  # older messages than these exist
    oldest_id: int | None


def thread_slice(conversation: Conversation, *, before: Message | None = None) -> Slice:
    """The latest ``THREAD_SIZE`` messages (or those just before ``before``) and
    the notes written in the same stretch of time: two queries whatever the size."""
    rows = _messages(conversation).order_by("-created_at", "-id")
    notes = _notes(conversation)
    if before is not None:
        rows = rows.filter(
            Q(created_at__lt=before.created_at) | Q(created_at=before.created_at, id__lt=before.pk)
        )
        notes = notes.filter(created_at__lt=before.created_at)
    found = list(rows[: THREAD_SIZE + 1])
    has_more = len(found) > THREAD_SIZE
    found = found[:THREAD_SIZE][::-1]
    if has_more:
        notes = notes.filter(created_at__gte=found[0].created_at)
    return Slice(
        entries=build_thread(conversation, found, list(notes)),
        has_more=has_more,
        oldest_id=found[0].pk if found else None,
    )


def thread_after(conversation: Conversation, *, message_id: int, note_id: int) -> list[Entry]:
    """What was written after the last message and note the page has (a
    reconnect catch-up), oldest first."""
    rows = list(_messages(conversation).filter(id__gt=message_id)[:CATCH_UP_LIMIT])
    notes = _notes(conversation).filter(id__gt=note_id)
    if not note_id and message_id:
        # The page had no note yet: only those from its last message on, not
        # every note of a long history.
        anchor = Message.objects.filter(pk=message_id, conversation=conversation).values(
            "created_at"
        )
        notes = notes.filter(created_at__gte=anchor[:1])
    return build_thread(conversation, rows, list(notes))


# --- The header: state and actions ------------------------------------------------


def _team_ids(user: User) -> set[int]:
    if not hasattr(user, "_console_team_ids"):
        user._console_team_ids = set(user.teams.values_list("id", flat=True))  # type: ignore[attr-defined]
    return user._console_team_ids  # type: ignore[attr-defined,no-any-return]


def may_write(conversation: Conversation, user: User) -> bool:
    """The API's rule for replying, transferring, resolving and setting the
    priority (``services._check_may_write``): supervisors, or nobody else has it."""
    return user.is_supervisor or conversation.assignee_id in (None, user.pk)


def reply_block(conversation: Conversation, user: User, now: datetime) -> tuple[str, str]:
    """Why the free-text reply is closed (code, text for the agent), or ("", "")."""
    if conversation.state == State.RESOLVED:
        return "resolved", _("This conversation is resolved. Reopen it to write to the customer.")
    if not may_write(conversation, user):
        name = conversation.assignee.display_name if conversation.assignee else "?"
        return "assigned", _(
            "%(name)s is handling this conversation; ask them or a supervisor to transfer it "
            "to you. You can still add internal notes."
        ) % {"name": name}
    if not conversation.service_window_open(now):
        return "window", _(
            "More than 24 hours have passed since the customer's last message. WhatsApp only "
            "allows an approved template message until the customer writes again."
        )
    return "", ""


def header_context(conversation: Conversation, user: User) -> dict[str, Any]:
    now = timezone.now()
    resolved = conversation.state == State.RESOLVED
    writer = may_write(conversation, user)
    in_team = (
        conversation.team_id is None
        or user.is_supervisor
        or conversation.team_id in _team_ids(user)
    )
    can_take = (
        not resolved
        and conversation.assignee_id != user.pk
        and (user.is_supervisor or conversation.assignee_id is None)
        and in_team
    )
    can_assign = user.is_supervisor and not resolved
    can_transfer = writer and not resolved
    teams: list[Team] = []
    if can_assign or can_transfer:
        # Teams with their active members: the transfer dialog's two lists and
        # the assign list, in two queries.
        members = User.objects.filter(is_active=True).order_by("name", "username")
        teams = list(Team.objects.prefetch_related(Prefetch("members", queryset=members)))
    assignable: list[User] = []
    if can_assign:
        if conversation.team_id:
            team = next((t for t in teams if t.pk == conversation.team_id), None)
            assignable = list(team.members.all()) if team else []
        else:
            seen: dict[int, User] = {}
            for team in teams:
                for member in team.members.all():
                    seen.setdefault(member.pk, member)
            assignable = sorted(seen.values(), key=lambda u: u.display_name.lower())
    block, block_text = reply_block(conversation, user, now)
    window_closes = (
        conversation.last_inbound_at + timedelta(hours=24) if conversation.last_inbound_at else None
    )
    tags = list(conversation.tags.all())
    return {
        "conversation": conversation,
        "contact": conversation.contact,
        "tags": tags,
        "tag_names": [tag.name for tag in tags],
        "all_tags": list(Tag.objects.values_list("name", flat=True)),
        "can_take": can_take,
        "take_label": _("Take") if conversation.assignee_id is None else _("Assign to me"),
        "can_assign": can_assign,
        "assignable": assignable,
        "can_transfer": can_transfer,
        "teams": teams,
        "can_pending": writer and conversation.state == State.OPEN,
        "can_resolve": writer and not resolved,
        "can_reopen": resolved,
        "can_priority": writer and not resolved,
        "can_create_tags": user.is_supervisor,
        "priorities": Conversation.Priority.choices,
        "window_open": conversation.service_window_open(now),
        "window_closes_at": window_closes,
        "reply_block": block,
        "reply_block_text": block_text,
    }


# --- The side panel ---------------------------------------------------------------


def side_context(conversation: Conversation, user: User) -> dict[str, Any]:
    contact = conversation.contact
    previous = list(
        selectors.conversations_visible_to(user)
        .filter(contact_id=contact.pk)
        .exclude(pk=conversation.pk)
        .select_related("team")
        .order_by("-created_at", "-id")[:PREVIOUS_CONVERSATIONS]
    )
    return {
        "conversation": conversation,
        "contact": contact,
        "contact_tags": list(contact.tags.all()),
        "previous": previous,
        "panels": panels.panels_for(conversation.pk),
    }


# --- Views ------------------------------------------------------------------------


def _conversation(request: HttpRequest, pk: int) -> Conversation:
    return selectors.conversation_get_for(request.user, pk)  # type: ignore[arg-type]


def _int_param(request: HttpRequest, name: str) -> int | None:
    raw = request.GET.get(name, "")
    if not raw:
        return None
    if not raw.isascii() or not raw.isdigit() or len(raw) > 18:
        raise Http404(_("No such message."))
    return int(raw)


def _templates(conversation: Conversation) -> list[dict[str, Any]]:
    return channels.templates_for(conversation.inbox)


@never_cache
@require_GET
@login_required
def conversation(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    user: User = request.user  # type: ignore[assignment]
    if conversation.assignee_id == user.pk and conversation.unread_count:
        # Opening it is reading it: the tab title and the inbox badge drop.
        services.conversation_mark_read(conversation=conversation, actor=user)
    thread = thread_slice(conversation)
    protocol = conversation.protocol or conversation.pk
    context: dict[str, Any] = {
        "thread": thread,
        "templates": _templates(conversation),
        "title": f"{conversation.contact.display_name} · {protocol}",
        "api_base": reverse("conversation-detail", args=[conversation.pk]),
        **header_context(conversation, user),
        **side_context(conversation, user),
    }
    return render(request, "conversations/conversation.html", context)


@never_cache
@require_GET
@login_required
def messages(request: HttpRequest, pk: int) -> HttpResponse:
    """A slice of the thread as ``<li>`` items: the latest (no parameter),
    those before message ``?before=<id>`` ("Load earlier"), or those after
    ``?after=<message id>&after_note=<note id>`` (catch-up after a reconnect)."""
    conversation = _conversation(request, pk)
    before_id = _int_param(request, "before")
    after_id = _int_param(request, "after")
    if after_id is not None:
        entries = thread_after(
            conversation, message_id=after_id, note_id=_int_param(request, "after_note") or 0
        )
        return render(
            request,
            "conversations/_thread_items.html",
            {"entries": entries, "slice": None, "conversation": conversation},
        )
    before = None
    if before_id is not None:
        before = Message.objects.filter(pk=before_id, conversation=conversation).first()
        if before is None:
            raise Http404(_("No such message."))
    thread = thread_slice(conversation, before=before)
    return render(
        request,
        "conversations/_thread_items.html",
        {"entries": thread.entries, "slice": thread, "conversation": conversation},
    )


@never_cache
@require_GET
@login_required
def message(request: HttpRequest, pk: int, message_id: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    found = _messages(conversation).filter(pk=message_id).first()
    if found is None:
        raise Http404(_("No such message."))
    _decorate(found, conversation.contact.display_name, timezone.localdate())
    return render(
        request, "conversations/_message.html", {"message": found, "conversation": conversation}
    )


@never_cache
@require_GET
@login_required
def note(request: HttpRequest, pk: int, note_id: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    found = _notes(conversation).filter(pk=note_id).first()
    if found is None:
        raise Http404(_("No such note."))
    _decorate(found, conversation.contact.display_name, timezone.localdate())
    return render(request, "conversations/_note.html", {"note": found})


@never_cache
@require_GET
@login_required
def header(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    context = header_context(conversation, request.user)  # type: ignore[arg-type]
    return render(request, "conversations/_conversation_header.html", context)


@never_cache
@require_GET
@login_required
def side(request: HttpRequest, pk: int) -> HttpResponse:
    conversation = _conversation(request, pk)
    context = side_context(conversation, request.user)  # type: ignore[arg-type]
    return render(request, "conversations/_side.html", context)


@never_cache
@require_GET
@login_required
def canned(request: HttpRequest, pk: int) -> JsonResponse:
    """The canned replies this user may use, with their placeholders filled for
    this conversation (the API lists them raw and fills them only when a reply
    is sent by id; the composer needs the text to put in the box)."""
    conversation = _conversation(request, pk)
    user: User = request.user  # type: ignore[assignment]
    replies = selectors.canned_replies_for(user).order_by("shortcut", "id")
    return JsonResponse(
        {
            "results": [
                {
                    "id": reply.pk,
                    "shortcut": reply.shortcut,
                    "title": reply.title,
                    "text": services.canned_reply_render(
                        reply, conversation=conversation, actor=user
                    ),
                }
                for reply in replies
            ]
        }
    )

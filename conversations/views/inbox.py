"""The inbox at /console/: the agent's tabs (mine, queue, all), filters and
search, and the row fragments the page fetches when a live event says a
conversation changed.

The page, ``rows/`` and ``row/<pk>/`` read the same query string, so a row is
rendered exactly as the page would render it under the same tab and filters.
Both fragments carry the tab counts in ``X-Inbox-Counts``; ``rows/`` also says
which page comes next in ``X-Inbox-Next-Page`` (absent on the last page).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, QueryDict
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from accounts.models import User
from conversations import selectors
from conversations.models import Conversation, Message, Tag

PAGE_SIZE = 50
# Deep pages are what search is for; the bound keeps OFFSET cheap.
MAX_PAGE = 200
MAX_QUERY_LENGTH = 100

State = Conversation.State
Kind = Message.Kind

TAB_LABELS = {
    "mine": gettext_lazy("Mine"),
    "queue": gettext_lazy("Queue"),
    "all": gettext_lazy("All"),
}

# What a preview says when the last message is not plain text.
KIND_LABELS = {
    Kind.IMAGE: gettext_lazy("📷 Image"),
    Kind.AUDIO: gettext_lazy("🎤 Audio"),
    Kind.VIDEO: gettext_lazy("🎬 Video"),
    Kind.DOCUMENT: gettext_lazy("📄 Document"),
    Kind.STICKER: gettext_lazy("💟 Sticker"),
    Kind.LOCATION: gettext_lazy("📍 Location"),
    Kind.CONTACTS: gettext_lazy("👤 Contact card"),
    Kind.INTERACTIVE: gettext_lazy("🔘 Choice"),
    Kind.BUTTON: gettext_lazy("🔘 Button"),
    Kind.TEMPLATE: gettext_lazy("📝 Template"),
    Kind.REACTION: gettext_lazy("Reaction"),
    Kind.UNSUPPORTED: gettext_lazy("⚠️ Unsupported message"),
}

# Tag colours are admin input drawn as an SVG fill: only a plain hex colour gets through.
_HEX_COLOUR = re.compile(r"^#(?:[0-9a-fA-F]{3}){1,2}$")
DEFAULT_TAG_COLOUR = "#64748b"


@dataclass(frozen=True)
class InboxQuery:
    """The tab, filters and page of one inbox request, already validated."""

    tab: str
    state: str | None
    team: int | None
    tag: str | None
    q: str
    page: int

    @classmethod
    def parse(cls, user: User, params: QueryDict) -> InboxQuery:
        tab = params.get("tab", "")
        # An agent's ?tab=all is an old link or a guess: their own list, no error.
        if tab not in selectors.inbox_tabs_for(user):
            tab = "mine"
        state = params.get("state", "")
        return cls(
            tab=tab,
            state=state if state in State.values else None,
            team=_positive_int(params.get("team")),
            tag=params.get("tag", "").strip()[: Tag._meta.get_field("name").max_length] or None,
            q=params.get("q", "").strip()[:MAX_QUERY_LENGTH],
            page=min(_positive_int(params.get("page")) or 1, MAX_PAGE),
        )

    @property
    def effective_state(self) -> str | None:
        # The queue is queued conversations by definition.
        return None if self.tab == "queue" else self.state

    @property
    def filtered(self) -> bool:
        return bool(self.effective_state or self.team or self.tag or self.q)

    def params(self, **changes: Any) -> dict[str, Any]:
        """The query string's fields, without the empty ones and the first page."""
        values: dict[str, Any] = {
            "tab": self.tab,
            "state": self.state,
            "team": self.team,
            "tag": self.tag,
            "q": self.q,
            "page": self.page,
        }
        values.update(changes)
        if values.get("page") == 1:
            values["page"] = None
        return {key: value for key, value in values.items() if value not in (None, "")}

    def url(self, **changes: Any) -> str:
        return "?" + urlencode(self.params(**changes))


def _positive_int(value: str | None) -> int | None:
    try:
        number = int(value or "")
    except ValueError:
        return None
    return number if number > 0 else None


@dataclass(frozen=True)
class InboxRow:
    """One conversation as its row shows it: the model plus what the row works out."""

    conversation: Conversation
    sort_key: int
    since: datetime | None
    since_iso: str
    since_label: str
    since_title: str
    waiting: bool
    sender_prefix: str
    kind_label: str
    tags: list[tuple[str, str]]
    first_response_due: datetime | None
    due_iso: str
    overdue: bool
    # Open with the customer's 24 hours gone: only a template reaches them now.
    window_closed: bool = False

    @property
    def last_iso(self) -> str:
        return iso(self.conversation.last_message_at)

    @property
    def emphasised_priority(self) -> bool:
        return self.conversation.priority >= Conversation.Priority.HIGH


def iso(moment: datetime | None) -> str:
    """UTC with milliseconds: what every browser's Date.parse reads."""
    if moment is None:
        return ""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _micros(moment: datetime | None) -> int:
    return int(moment.timestamp() * 1_000_000) if moment else 0


def ago(since: datetime, now: datetime) -> str:
    """The same short wording as ISP.refreshTimes, for the page as first served."""
    seconds = max(0, int((now - since).total_seconds()))
    if seconds < 60:
        return _("now")
    minutes = seconds // 60
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours = minutes // 60
    if hours < 24:
        label = _("%(hours)s h") % {"hours": hours}
        return f"{label} {minutes % 60} min" if minutes % 60 else label
    return _("%(days)s d") % {"days": hours // 24}


def _sender_prefix(conversation: Conversation, user: User) -> str:
    if getattr(conversation, "last_message_direction", None) != Message.Direction.OUT:
        return ""
    sender_type = getattr(conversation, "last_message_sender_type", None)
    if sender_type == Message.SenderType.BOT:
        return _("Bot: ")
    if sender_type == Message.SenderType.AGENT:
        sender_id = conversation.last_message_sender_id  # type: ignore[attr-defined]
        if sender_id == user.pk:
            return _("You: ")
        name = conversation.last_message_sender_name or ""  # type: ignore[attr-defined]
        # A colleague by name; "Agent" once their account is gone.
        return _("%(name)s: ") % {"name": name} if name else _("Agent: ")
    return ""


def _row(conversation: Conversation, *, tab: str, user: User, now: datetime) -> InboxRow:
    queued = conversation.state == State.QUEUED
    since = conversation.queued_at if queued and conversation.queued_at else None
    since = since or conversation.last_inbound_at
    due = None
    if conversation.first_response_at is None and conversation.state != State.RESOLVED:
        due = conversation.first_response_due_at
    return InboxRow(
        conversation=conversation,
        sort_key=_micros(
            conversation.queued_at if tab == "queue" else conversation.last_message_at
        ),
        since=since,
        since_iso=iso(since),
        since_label=ago(since, now) if since else "",
        since_title=_("Waiting in the queue since") if queued else _("Last customer message"),
        # In the queue, or the customer wrote last and the agent has not answered yet.
        waiting=queued
        or (
            conversation.state == State.OPEN
            and getattr(conversation, "last_message_direction", None) == Message.Direction.IN
        ),
        sender_prefix=_sender_prefix(conversation, user),
        kind_label=str(KIND_LABELS.get(getattr(conversation, "last_message_kind", None), "")),
        tags=[
            (tag.name, tag.color if _HEX_COLOUR.match(tag.color or "") else DEFAULT_TAG_COLOUR)
            for tag in conversation.tags.all()
        ],
        first_response_due=due,
        due_iso=iso(due),
        overdue=bool(due and due <= now),
        window_closed=conversation.state in (State.QUEUED, State.OPEN, State.PENDING)
        and conversation.last_inbound_at is not None
        and not conversation.service_window_open(now),
    )


def _rows(query: InboxQuery, user: User) -> tuple[list[InboxRow], bool]:
    """One page of the tab, and whether another page follows."""
    conversations = selectors.inbox_tab(
        user=user,
        tab=query.tab,
        state=query.effective_state,
        team=query.team,
        tag=query.tag,
        q=query.q,
    )
    start = (query.page - 1) * PAGE_SIZE
    page = list(conversations[start : start + PAGE_SIZE + 1])
    now = timezone.now()
    return [_row(c, tab=query.tab, user=user, now=now) for c in page[:PAGE_SIZE]], len(
        page
    ) > PAGE_SIZE


def _counts(query: InboxQuery, user: User) -> dict[str, int]:
    return selectors.inbox_tab_counts(
        user=user, state=query.state, team=query.team, tag=query.tag, q=query.q
    )


def _with_counts(response: HttpResponse, counts: dict[str, int]) -> HttpResponse:
    response["X-Inbox-Counts"] = json.dumps(counts, separators=(",", ":"))
    return response


@never_cache
@require_GET
@login_required
def inbox(request: HttpRequest) -> HttpResponse:
    user: User = request.user  # type: ignore[assignment]
    query = InboxQuery.parse(user, request.GET)
    rows, has_more = _rows(query, user)
    counts = _counts(query, user)
    teams = list(selectors.inbox_teams_for(user).only("id", "name"))
    # Admins may always take: conversations queued for no team are theirs.
    has_teams = user.is_admin or bool(teams)
    tabs = [
        {
            "key": key,
            "label": TAB_LABELS[key],
            "count": counts.get(key, 0),
            "url": query.url(tab=key, page=None),
            "current": key == query.tab,
        }
        for key in selectors.inbox_tabs_for(user)
    ]
    context = {
        "query": query,
        "tabs": tabs,
        "tab_label": TAB_LABELS[query.tab],
        "rows": rows,
        "has_more": has_more,
        "next_page": query.params(page=query.page + 1).items(),
        "clear_url": query.url(state=None, team=None, tag=None, q=None, page=None),
        "states": State.choices,
        "teams": teams,
        "tags": Tag.objects.only("name").order_by("name"),
        "has_teams": has_teams,
    }
    return render(request, "conversations/inbox.html", context)


@never_cache
@require_GET
@login_required
def rows(request: HttpRequest) -> HttpResponse:
    """The rows of one page of the current tab: "Load more", and the catch-up after a reconnect."""
    user: User = request.user  # type: ignore[assignment]
    query = InboxQuery.parse(user, request.GET)
    page, has_more = _rows(query, user)
    response = render(request, "conversations/_inbox_rows.html", {"rows": page, "query": query})
    if has_more:
        response["X-Inbox-Next-Page"] = str(query.page + 1)
    return _with_counts(response, _counts(query, user))


@never_cache
@require_GET
@login_required
def row(request: HttpRequest, pk: int) -> HttpResponse:
    """One row if this conversation belongs in the current tab and filters;
    204 otherwise (the browser removes it), also when the user may not see
    it, so the answer reveals nothing about other teams' conversations."""
    user: User = request.user  # type: ignore[assignment]
    query = InboxQuery.parse(user, request.GET)
    conversation = (
        selectors.inbox_tab(
            user=user,
            tab=query.tab,
            state=query.effective_state,
            team=query.team,
            tag=query.tag,
            q=query.q,
        )
        .filter(pk=pk)
        .first()
    )
    if conversation is None:
        response = HttpResponse(status=204)
    else:
        response = render(
            request,
            "conversations/_inbox_row.html",
            {"row": _row(conversation, tab=query.tab, user=user, now=timezone.now())},
        )
    return _with_counts(response, _counts(query, user))

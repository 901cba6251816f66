"""Reads: who may see which conversation, and the inbox list in a constant
number of queries whatever the page size."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from django.db.models import Count, Exists, F, OuterRef, Prefetch, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce, NullIf
from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext as _

from accounts.models import Team, User
from conversations.models import CannedReply, Contact, Conversation, Message, Tag

_DIGITS = re.compile(r"\D")
# The largest id a BigAutoField holds. A larger one reaching a query is an
# OverflowError on SQLite (a 500), not a miss: callers check, filters match nothing.
MAX_ID = 2**63 - 1


def conversations_visible_to(user: User) -> QuerySet[Conversation]:
    """The one rule of visibility: admins see everything; everyone else sees
    their teams' conversations and the ones assigned to them."""
    conversations = Conversation.objects.all()
    if user.is_admin:
        return conversations
    return conversations.filter(Q(team__in=user.teams.all()) | Q(assignee=user))


def conversation_get_for(user: User, pk: int | str) -> Conversation:
    """A conversation this user may see; 404 otherwise, so its existence is not revealed."""
    try:
        return (
            conversations_visible_to(user)
            .select_related("contact", "team", "assignee", "inbox")
            .get(pk=int(pk))
        )
    except (Conversation.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such conversation.")) from None


def contacts_visible_to(user: User) -> QuerySet[Contact]:
    """Contacts of conversations the user may see (admins: every contact)."""
    if user.is_admin:
        return Contact.objects.all()
    return Contact.objects.filter(
        Exists(conversations_visible_to(user).filter(contact=OuterRef("pk")))
    )


def contact_get_for(user: User, pk: int | str) -> Contact:
    try:
        return contacts_visible_to(user).get(pk=int(pk))
    except (Contact.DoesNotExist, ValueError, TypeError):
        raise Http404(_("No such contact.")) from None


def contact_search(queryset: QuerySet[Contact], q: str) -> QuerySet[Contact]:
    q = q.strip()
    if not q:
        return queryset
    match = Q(name__icontains=q) | Q(profile_name__icontains=q) | Q(customer_code__iexact=q)
    match |= Q(username__icontains=q.lstrip("@"))
    digits = _DIGITS.sub("", q)
    if len(digits) >= 4:
        match |= Q(phone__contains=digits)
    return queryset.filter(match)


def inbox_list(
    *,
    user: User,
    state: str | list[str] | None = None,
    team: int | None = None,
    assignee: str | None = None,
    tag: str | None = None,
    q: str = "",
) -> QuerySet[Conversation]:
    """The inbox: conversations the user may see, filtered, each with its
    contact, team, assignee, tags and last message, in a fixed number of
    queries (one for the page, one for the tags) for any page size.

    ``assignee``: "me", "none", "any" (default) or a user id.
    """
    # Automatic system messages (the protocol greeting) are not what the
    # conversation is about: the preview and the waiting time skip them.
    last = (
        Message.objects.filter(conversation=OuterRef("pk"))
        .exclude(sender_type=Message.SenderType.SYSTEM)
        .order_by("-created_at", "-id")
    )
    rows = (
        conversations_visible_to(user)
        .select_related("contact", "team", "assignee", "inbox")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name", "color")))
        .annotate(
            last_message_text=Subquery(last.values("text")[:1]),
            last_message_kind=Subquery(last.values("kind")[:1]),
            last_message_direction=Subquery(last.values("direction")[:1]),
        )
    )
    if state:
        rows = rows.filter(state__in=[state] if isinstance(state, str) else state)
    if team:
        rows = rows.filter(team_id=team) if team <= MAX_ID else rows.none()
    if assignee == "me":
        rows = rows.filter(assignee=user)
    elif assignee == "none":
        rows = rows.filter(assignee__isnull=True)
    elif assignee and assignee != "any":
        rows = rows.filter(assignee_id=int(assignee))
    if tag:
        rows = rows.filter(tags__name=tag)
    q = q.strip()
    if q:
        match = Q(protocol__icontains=q) | Q(contact__name__icontains=q)
        match |= Q(contact__profile_name__icontains=q)
        digits = _DIGITS.sub("", q)
        if len(digits) >= 4:
            match |= Q(contact__phone__contains=digits)
        match |= Exists(Message.objects.filter(conversation=OuterRef("pk"), text__icontains=q))
        rows = rows.filter(match)
    return rows


def messages_of(conversation: Conversation) -> QuerySet[Message]:
    return (
        Message.objects.filter(conversation=conversation)
        .select_related("sender_user")
        .order_by("created_at", "id")
    )


def canned_replies_for(user: User) -> QuerySet[CannedReply]:
    """Shared replies plus those of the user's teams (admins: all)."""
    replies = CannedReply.objects.select_related("team")
    if user.is_admin:
        return replies
    return replies.filter(Q(team__isnull=True) | Q(team__in=user.teams.all()))


@dataclass(frozen=True)
class QueuePlace:
    position: int  # 1 = next to be taken
    wait_minutes: int | None  # None when there is no recent history to go by


# Waits are estimated from the last conversations this team took from its queue.
WAIT_SAMPLE = 30
WAIT_HISTORY = timedelta(days=7)


def queue_place(conversation: Conversation) -> QueuePlace:
    """Where a queued conversation stands in its team's queue and a rough wait:
    the median recent wait from queue to first answer, times the conversations
    ahead, divided among the team's online agents."""
    position = 1
    # Not queued yet (still with the bot): nobody to count ahead, and a
    # queued_at__lt=None filter would raise.
    if conversation.queued_at is not None:
        position += (
            Conversation.objects.filter(
                state=Conversation.State.QUEUED,
                assignee__isnull=True,
                team_id=conversation.team_id,
            )
            .filter(
                Q(queued_at__lt=conversation.queued_at)
                | Q(queued_at=conversation.queued_at, pk__lt=conversation.pk)
            )
            .count()
        )
    since = timezone.now() - WAIT_HISTORY
    recent = list(
        Conversation.objects.filter(
            team_id=conversation.team_id,
            queued_at__gte=since,
            first_response_at__isnull=False,
            first_response_at__gte=F("queued_at"),
        )
        .order_by("-queued_at")
        .values_list("queued_at", "first_response_at")[:WAIT_SAMPLE]
    )
    if not recent:
        return QueuePlace(position, None)
    waits = sorted((answered - queued).total_seconds() / 60 for queued, answered in recent)
    median = waits[len(waits) // 2]
    online = (
        User.objects.filter(
            is_active=True,
            teams__id=conversation.team_id,
            availability=User.Availability.ONLINE,
        ).count()
        if conversation.team_id
        else 0
    )
    estimate = median * position / max(online, 1)
    return QueuePlace(position, max(1, round(estimate)))


# --- The console inbox's tabs ------------------------------------------------------

INBOX_TABS = ("mine", "queue", "all")
ACTIVE_STATES = [
    Conversation.State.BOT,
    Conversation.State.QUEUED,
    Conversation.State.OPEN,
    Conversation.State.PENDING,
]


def inbox_tabs_for(user: User) -> tuple[str, ...]:
    """Agents work from their own list and their teams' queues; supervisors
    also look over everything they may see."""
    return INBOX_TABS if user.is_supervisor else ("mine", "queue")


def queue_scope(user: User) -> Q:
    """Whose queue is whose: an agent's teams'; admins also hand out what is
    queued for no team (nobody else can see it), e.g. on a fresh install
    before any team exists."""
    scope = Q(team__in=user.teams.all())
    if user.is_admin:
        scope |= Q(team__isnull=True)
    return scope


def inbox_tab(
    *,
    user: User,
    tab: str,
    state: str | None = None,
    team: int | None = None,
    tag: str | None = None,
    q: str = "",
) -> QuerySet[Conversation]:
    """One tab of the console inbox, in its order, with the last message's
    sender joined in for the preview ("You:", "Bot:"): still a fixed number of
    queries for any page size.

    mine: assigned to me and not resolved (``state`` picks another state);
    queue: queued and unassigned in my teams, oldest first (``state`` does not
    apply); all: everything the user may see, any state.
    """
    if tab == "queue":
        rows = inbox_list(
            user=user, state=Conversation.State.QUEUED, assignee="none", team=team, tag=tag, q=q
        ).filter(queue_scope(user))
        order: tuple[str, ...] = ("queued_at", "id")
    elif tab == "all":
        rows = inbox_list(user=user, state=state, team=team, tag=tag, q=q)
        order = ("-last_message_at", "-id")
    else:
        rows = inbox_list(
            user=user, state=state or ACTIVE_STATES, assignee="me", team=team, tag=tag, q=q
        )
        order = ("-last_message_at", "-id")
    last = (
        Message.objects.filter(conversation=OuterRef("pk"))
        .exclude(sender_type=Message.SenderType.SYSTEM)
        .order_by("-created_at", "-id")
    )
    # The row never shows the bot's memory or the contact's private fields.
    rows = rows.defer("bot_state", "contact__notes", "contact__document_encrypted")
    return rows.annotate(
        last_message_sender_type=Subquery(last.values("sender_type")[:1]),
        last_message_sender_id=Subquery(last.values("sender_user_id")[:1]),
        last_message_sender_name=Subquery(
            last.annotate(
                who=Coalesce(NullIf("sender_user__name", Value("")), "sender_user__username")
            ).values("who")[:1]
        ),
    ).order_by(*order)


def inbox_tab_counts(
    *,
    user: User,
    state: str | None = None,
    team: int | None = None,
    tag: str | None = None,
    q: str = "",
) -> dict[str, int]:
    """How many rows each tab has under the same filters, in one aggregate query."""
    rows = inbox_list(user=user, team=team, tag=tag, q=q)
    counts = {
        "mine": Count("pk", filter=Q(assignee=user, state__in=[state] if state else ACTIVE_STATES)),
        "queue": Count(
            "pk",
            filter=Q(state=Conversation.State.QUEUED, assignee__isnull=True) & queue_scope(user),
        ),
    }
    if user.is_supervisor:
        counts["all"] = Count("pk", filter=Q(state=state)) if state else Count("pk")
    return rows.aggregate(**counts)


def inbox_teams_for(user: User) -> QuerySet[Team]:
    """The teams a user may filter the inbox by: admins every team, others their own."""
    return Team.objects.all() if user.is_admin else user.teams.all()

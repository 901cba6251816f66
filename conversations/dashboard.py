"""The supervisor dashboard's reads: every figure in a fixed number of queries
whatever the amount of data, returned as plain dataclasses for the template.

"Today" is the calendar day of ``settings.TIME_ZONE`` (the project's day, not
the browser's nor an activated per-user zone), so every supervisor of the ISP
sees the same figures. Every function takes ``now`` so a test can freeze it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

import structlog
from django.db.models import (
    Avg,
    Count,
    DurationField,
    ExpressionWrapper,
    F,
    FilteredRelation,
    Min,
    Q,
    QuerySet,
)
from django.db.models.functions import TruncHour
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Conversation, TeamQueue
from conversations.selectors import conversations_visible_to
from ispsupport import breakers

logger = structlog.get_logger(__name__)

State = Conversation.State
ACTIVE_STATES = (State.QUEUED, State.OPEN, State.PENDING)
CSAT_WEEK_DAYS = 7
AVAILABILITY_ORDER = {
    User.Availability.ONLINE: 0,
    User.Availability.AWAY: 1,
    User.Availability.OFFLINE: 2,
}
DEFAULT_MAX_ACTIVE = TeamQueue._meta.get_field("max_active_per_agent").default


@dataclass(frozen=True)
class Day:
    """Today's and yesterday's bounds in the project's time zone; DST-safe
    because each bound is built from a date, not by adding 24 hours."""

    now: datetime
    start: datetime
    end: datetime
    yesterday_start: datetime
    week_start: datetime  # the first of the last CSAT_WEEK_DAYS days, today included

    @classmethod
    def of(cls, now: datetime) -> Day:
        zone = timezone.get_default_timezone()
        today = timezone.localtime(now, zone).date()

        def midnight(days: int) -> datetime:
            return datetime.combine(today + timedelta(days=days), time.min, tzinfo=zone)

        return cls(
            now=now,
            start=midnight(0),
            end=midnight(1),
            yesterday_start=midnight(-1),
            week_start=midnight(-(CSAT_WEEK_DAYS - 1)),
        )


@dataclass(frozen=True)
class StateCounts:
    bot: int
    queued: int
    open: int
    pending: int
    resolved_today: int

    @property
    def active(self) -> int:
        return self.bot + self.queued + self.open + self.pending


@dataclass(frozen=True)
class QueueRow:
    """One team's queue. ``team_id`` None is the conversations of no team
    (an inbox without a default team), shown to admins only."""

    team_id: int | None
    name: str
    queued: int
    oldest_queued_at: datetime | None
    overdue: int
    max_active_per_agent: int


@dataclass(frozen=True)
class AgentRow:
    id: int
    name: str
    availability: str
    availability_label: str
    availability_changed_at: datetime | None
    load: int  # open + pending conversations assigned to them
    max_active: int  # the highest per-agent maximum among their teams in scope
    teams: list[str] = field(default_factory=list)

    @property
    def at_limit(self) -> bool:
        return self.load >= self.max_active


@dataclass(frozen=True)
class Times:
    """First response: ``first_response_at - queued_at`` of the conversations
    first answered today (queued before the answer). Resolution:
    ``resolved_at - created_at`` of the conversations resolved today."""

    first_response_median: timedelta | None
    first_response_p90: timedelta | None
    first_response_count: int
    resolution_median: timedelta | None
    resolution_count: int


@dataclass(frozen=True)
class SelfService:
    resolved: int
    self_served: int

    @property
    def percent(self) -> int | None:
        if not self.resolved:
            return None
        return round(100 * self.self_served / self.resolved)


@dataclass(frozen=True)
class Csat:
    average: float | None
    answers: int
    good: int  # answers of 4 or 5

    @property
    def good_percent(self) -> int | None:
        if not self.answers:
            return None
        return round(100 * self.good / self.answers)


@dataclass(frozen=True)
class BreakerRow:
    name: str
    description: str
    state: str  # closed, open, half-open, or unknown when its storage could not be read
    failures: int | None  # None when unknown
    fail_max: int
    opened_at: datetime | None

    @property
    def is_open(self) -> bool:
        return self.state == "open"


@dataclass(frozen=True)
class Hourly:
    """Conversations created in each local hour (0-23) of today and yesterday."""

    today: list[int]
    yesterday: list[int]
    current_hour: int

    @property
    def total_today(self) -> int:
        return sum(self.today)

    @property
    def total_yesterday(self) -> int:
        return sum(self.yesterday)


@dataclass(frozen=True)
class Dashboard:
    day: Day
    states: StateCounts
    queues: list[QueueRow]
    agents: list[AgentRow]
    times: Times
    self_service: SelfService
    csat_today: Csat
    csat_week: Csat
    breakers: list[BreakerRow]
    hourly: Hourly

    @property
    def has_activity_today(self) -> bool:
        return bool(self.hourly.total_today or self.states.resolved_today or self.states.active)


# --- Queries ----------------------------------------------------------------------


def _team_scope(user: User) -> QuerySet[Team]:
    """Admins: every team; supervisors: their own teams."""
    return Team.objects.all() if user.is_admin else Team.objects.filter(members=user)


def _between(field_name: str, start: datetime, end: datetime) -> Q:
    return Q(**{f"{field_name}__gte": start, f"{field_name}__lt": end})


def _first_response_today(day: Day) -> Q:
    # An answer given before the (latest) queueing, e.g. answered from the bot
    # and transferred later, is not a wait in the queue: left out, as in
    # selectors.queue_place.
    return _between("first_response_at", day.start, day.end) & Q(
        queued_at__isnull=False, first_response_at__gte=F("queued_at")
    )


def _resolved_today(day: Day) -> Q:
    return Q(state=State.RESOLVED) & _between("resolved_at", day.start, day.end)


def _self_served() -> Q:
    """What conversation_resolve calls self-served (the bot settled it, no
    person involved: resolved by no actor while still with the bot, never
    assigned, never answered by an agent), read back from the stored row:
    state "bot" at resolve time leaves no trace, but a conversation only ever
    gets a queued_at by leaving the bot for a queue, and the bot takes back
    (on reopen) only one that never had one."""
    return Q(
        resolved_by__isnull=True,
        assignee__isnull=True,
        first_response_at__isnull=True,
        queued_at__isnull=True,
    )


def _overdue(now: datetime) -> Q:
    """Waiting for a first answer past the team's first-response target."""
    return Q(first_response_at__isnull=True, first_response_due_at__lt=now)


def _totals(visible: QuerySet[Conversation], day: Day) -> dict[str, Any]:
    """One aggregate for the counts, rates and CSAT figures."""
    resolved_today = _resolved_today(day)
    csat_today = Q(csat_score__isnull=False) & _between("csat_answered_at", day.start, day.end)
    csat_week = Q(csat_score__isnull=False) & _between("csat_answered_at", day.week_start, day.end)
    no_team_queue = Q(state=State.QUEUED, team__isnull=True)
    relevant = (
        Q(state__in=[State.BOT, *ACTIVE_STATES])
        | Q(resolved_at__gte=day.start)
        | Q(first_response_at__gte=day.start)
        | Q(csat_answered_at__gte=day.week_start)
    )
    return visible.filter(relevant).aggregate(
        bot=Count("pk", filter=Q(state=State.BOT)),
        queued=Count("pk", filter=Q(state=State.QUEUED)),
        open=Count("pk", filter=Q(state=State.OPEN)),
        pending=Count("pk", filter=Q(state=State.PENDING)),
        resolved_today=Count("pk", filter=resolved_today),
        self_served_today=Count("pk", filter=resolved_today & _self_served()),
        first_responses_today=Count("pk", filter=_first_response_today(day)),
        csat_today_avg=Avg("csat_score", filter=csat_today),
        csat_today_n=Count("pk", filter=csat_today),
        csat_today_good=Count("pk", filter=csat_today & Q(csat_score__gte=4)),
        csat_week_avg=Avg("csat_score", filter=csat_week),
        csat_week_n=Count("pk", filter=csat_week),
        csat_week_good=Count("pk", filter=csat_week & Q(csat_score__gte=4)),
        no_team_queued=Count("pk", filter=no_team_queue),
        no_team_oldest=Min("queued_at", filter=no_team_queue),
        no_team_overdue=Count(
            "pk", filter=Q(state__in=ACTIVE_STATES, team__isnull=True) & _overdue(day.now)
        ),
    )


def _queues(
    user: User,
    visible: QuerySet[Conversation],
    teams: list[Team],
    totals: dict[str, Any],
    now: datetime,
) -> list[QueueRow]:
    by_team = {
        row["team_id"]: row
        for row in visible.filter(state__in=ACTIVE_STATES, team__isnull=False)
        .values("team_id")
        .annotate(
            queued=Count("pk", filter=Q(state=State.QUEUED)),
            oldest=Min("queued_at", filter=Q(state=State.QUEUED)),
            overdue=Count("pk", filter=_overdue(now)),
        )
        .order_by("team_id")
    }
    rows = []
    for team in teams:
        row = by_team.get(team.pk, {})
        rows.append(
            QueueRow(
                team_id=team.pk,
                name=team.name,
                queued=row.get("queued", 0),
                oldest_queued_at=row.get("oldest"),
                overdue=row.get("overdue", 0),
                max_active_per_agent=_max_active(team),
            )
        )
    if user.is_admin and (totals["no_team_queued"] or totals["no_team_overdue"]):
        rows.append(
            QueueRow(
                team_id=None,
                name="",
                queued=totals["no_team_queued"],
                oldest_queued_at=totals["no_team_oldest"],
                overdue=totals["no_team_overdue"],
                max_active_per_agent=DEFAULT_MAX_ACTIVE,
            )
        )
    return rows


def _max_active(team: Team) -> int:
    try:
        return team.queue.max_active_per_agent
    except TeamQueue.DoesNotExist:
        # No queue settings saved yet: services.team_queue() uses the defaults.
        return DEFAULT_MAX_ACTIVE


def _agents(user: User, teams: list[Team]) -> list[AgentRow]:
    team_by_id = {team.pk: team for team in teams}
    memberships = Team.members.through.objects.filter(team_id__in=list(team_by_id))
    member_teams: dict[int, list[int]] = {}
    for user_id, team_id in memberships.values_list("user_id", "team_id").order_by("team_id"):
        member_teams.setdefault(user_id, []).append(team_id)
    people = User.objects.filter(is_active=True)
    if user.is_admin:
        # Agents nobody put in a team yet still count: an admin should notice them.
        people = people.filter(
            Q(pk__in=list(member_teams)) | Q(role__in=[User.Role.AGENT, User.Role.SUPERVISOR])
        )
    else:
        people = people.filter(pk__in=list(member_teams))
    # The condition sits in the join, so only active conversations are joined,
    # not each agent's whole history.
    people = people.annotate(
        active=FilteredRelation(
            "assigned_conversations",
            condition=Q(assigned_conversations__state__in=[State.OPEN, State.PENDING]),
        ),
        load=Count("active"),
    ).only("id", "username", "name", "first_name", "last_name", "availability",
           "availability_changed_at")  # fmt: skip
    rows = []
    for person in people:
        own = [team_by_id[team_id] for team_id in member_teams.get(person.pk, [])]
        rows.append(
            AgentRow(
                id=person.pk,
                name=person.display_name,
                availability=person.availability,
                availability_label=str(person.get_availability_display()),
                availability_changed_at=person.availability_changed_at,
                load=person.load,
                max_active=max((_max_active(team) for team in own), default=DEFAULT_MAX_ACTIVE),
                teams=[team.name for team in own],
            )
        )
    rows.sort(key=lambda row: (AVAILABILITY_ORDER.get(row.availability, 9), row.name.lower()))
    return rows


def _ordered_durations(queryset: QuerySet[Conversation], end: str, start: str) -> QuerySet[Any]:
    return (
        queryset.annotate(
            duration=ExpressionWrapper(F(end) - F(start), output_field=DurationField())
        )
        .order_by("duration", "pk")
        .values_list("duration", flat=True)
    )


def _median(durations: QuerySet[Any], count: int) -> timedelta | None:
    """The middle value (the mean of the two middle ones for an even count),
    read by offset: one query of at most two rows, whatever the count."""
    if count <= 0:
        return None
    values = list(durations[(count - 1) // 2 : count // 2 + 1])
    if not values:
        return None  # rows changed since they were counted
    return sum(values, timedelta()) / len(values)


def _percentile(durations: QuerySet[Any], count: int, fraction: float) -> timedelta | None:
    """Nearest-rank percentile: the value at rank ceil(fraction x count)."""
    if count <= 0:
        return None
    rank = max(1, math.ceil(fraction * count))
    values = list(durations[rank - 1 : rank])
    return values[0] if values else None


def _times(visible: QuerySet[Conversation], day: Day, totals: dict[str, Any]) -> Times:
    answered = _ordered_durations(
        visible.filter(_first_response_today(day)), "first_response_at", "queued_at"
    )
    resolved = _ordered_durations(visible.filter(_resolved_today(day)), "resolved_at", "created_at")
    answered_count = totals["first_responses_today"]
    resolved_count = totals["resolved_today"]
    return Times(
        first_response_median=_median(answered, answered_count),
        first_response_p90=_percentile(answered, answered_count, 0.9),
        first_response_count=answered_count,
        resolution_median=_median(resolved, resolved_count),
        resolution_count=resolved_count,
    )


def _hourly(visible: QuerySet[Conversation], day: Day) -> Hourly:
    zone = timezone.get_default_timezone()
    today, yesterday = [0] * 24, [0] * 24
    buckets = (
        visible.filter(created_at__gte=day.yesterday_start, created_at__lt=day.end)
        .annotate(hour=TruncHour("created_at", tzinfo=zone))
        .values("hour")
        .annotate(n=Count("pk"))
        .order_by("hour")
    )
    for row in buckets:
        local = timezone.localtime(row["hour"], zone)
        series = today if local.date() == day.start.date() else yesterday
        # On a 25-hour DST day two buckets share a wall-clock hour: add them up.
        series[local.hour] += row["n"]
    return Hourly(
        today=today, yesterday=yesterday, current_hour=timezone.localtime(day.now, zone).hour
    )


def _breakers() -> list[BreakerRow]:
    try:
        # One call: the breakers kept in Redis are read in one bounded round trip.
        statuses = breakers.all_breaker_statuses()
    except Exception:
        # The dashboard must still render when the breaker storage is unreadable.
        logger.warning("dashboard_breaker_unreadable", exc_info=True)
        statuses = [
            {**vars(spec), "state": "unknown", "fail_counter": None, "opened_at": None}
            for spec in breakers.SPECS.values()
        ]
    rows = []
    for status in statuses:
        opened_at = status["opened_at"]
        rows.append(
            BreakerRow(
                name=status["name"],
                description=status["description"],
                state=status["state"],
                failures=status["fail_counter"],
                fail_max=status["fail_max"],
                opened_at=datetime.fromisoformat(opened_at) if opened_at else None,
            )
        )
    return rows


def dashboard_for(user: User, *, now: datetime | None = None) -> Dashboard:
    """Everything the supervisor dashboard shows, for what ``user`` may see:
    admins every team, supervisors their own teams (and, through
    ``conversations_visible_to``, conversations assigned to them).

    At most 9 queries: teams, totals, queues, memberships, agents, the hourly
    buckets and three single-row percentile reads (skipped when there is
    nothing to measure).
    """
    day = Day.of(now or timezone.now())
    visible = conversations_visible_to(user)
    teams = list(_team_scope(user).select_related("queue").order_by("name"))
    totals = _totals(visible, day)
    return Dashboard(
        day=day,
        states=StateCounts(
            bot=totals["bot"],
            queued=totals["queued"],
            open=totals["open"],
            pending=totals["pending"],
            resolved_today=totals["resolved_today"],
        ),
        queues=_queues(user, visible, teams, totals, day.now),
        agents=_agents(user, teams),
        times=_times(visible, day, totals),
        self_service=SelfService(
            resolved=totals["resolved_today"], self_served=totals["self_served_today"]
        ),
        csat_today=Csat(
            totals["csat_today_avg"], totals["csat_today_n"], totals["csat_today_good"]
        ),
        csat_week=Csat(totals["csat_week_avg"], totals["csat_week_n"], totals["csat_week_good"]),
        breakers=_breakers(),
        hourly=_hourly(visible, day),
    )

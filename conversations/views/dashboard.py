"""The supervisor dashboard at /console/dashboard/.

The page and its ``?part=body`` fragment (what dashboard.js fetches when a live
event arrives, every minute and after a reconnect) are the same view and the
same template, so they never disagree. The figures come from
``conversations.dashboard``; this module only shapes them for display: short
durations and the geometry of the hourly chart, an inline SVG (no script, no
style attribute: the colours are CSS classes, CSP allows that).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from conversations.dashboard import Dashboard, Hourly, dashboard_for

# The chart's drawing box (SVG user units; the CSS scales it to the card).
CHART_WIDTH = 480
CHART_HEIGHT = 160
PLOT_LEFT, PLOT_RIGHT, PLOT_TOP, PLOT_BOTTOM = 26, 4, 10, 20


def short_duration(value: timedelta | None) -> str:
    """ "45 s", "12 min", "2 h 5 min", "3 d": the same shape console.js gives
    waiting times, so a figure reads the same before and after a refresh."""
    if value is None:
        return "—"
    seconds = max(0, round(value.total_seconds()))
    if seconds < 60:
        return _("%(seconds)s s") % {"seconds": seconds}
    minutes = seconds // 60
    if minutes < 60:
        return _("%(minutes)s min") % {"minutes": minutes}
    hours, rest = divmod(minutes, 60)
    if hours < 24:
        text = _("%(hours)s h") % {"hours": hours}
        return f"{text} {_('%(minutes)s min') % {'minutes': rest}}" if rest else text
    return _("%(days)s d") % {"days": hours // 24}


@dataclass(frozen=True)
class Bar:
    hour: int
    today: int
    yesterday: int
    x: float
    y: float
    width: float
    height: float
    slot_x: float
    slot_width: float
    title: str
    is_now: bool
    is_future: bool


@dataclass(frozen=True)
class Tick:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    bars: list[Bar]
    yesterday_points: str
    ticks: list[Tick]
    plot_left: int
    plot_right: float
    top: int
    baseline: int
    plot_height: int
    scale_max: int
    summary: str


def hour_chart(hourly: Hourly) -> Chart:
    plot_width = CHART_WIDTH - PLOT_LEFT - PLOT_RIGHT
    plot_height = CHART_HEIGHT - PLOT_TOP - PLOT_BOTTOM
    baseline = PLOT_TOP + plot_height
    slot = plot_width / 24
    bar_width = round(slot * 0.7, 2)
    scale_max = max([*hourly.today, *hourly.yesterday, 1])

    def y_of(value: int) -> float:
        return round(baseline - value / scale_max * plot_height, 2)

    bars, points = [], []
    for hour, (today, yesterday) in enumerate(zip(hourly.today, hourly.yesterday, strict=True)):
        slot_x = PLOT_LEFT + hour * slot
        centre = slot_x + slot / 2
        bars.append(
            Bar(
                hour=hour,
                today=today,
                yesterday=yesterday,
                x=round(centre - bar_width / 2, 2),
                y=y_of(today),
                width=bar_width,
                height=round(baseline - y_of(today), 2),
                slot_x=round(slot_x, 2),
                slot_width=round(slot, 2),
                title=_("%(start)02d:00-%(end)02d:00: %(today)s today, %(yesterday)s yesterday")
                % {"start": hour, "end": (hour + 1) % 24, "today": today, "yesterday": yesterday},
                is_now=hour == hourly.current_hour,
                is_future=hour > hourly.current_hour,
            )
        )
        points.append(f"{round(centre, 2)},{y_of(yesterday)}")
    ticks = [
        Tick(x=round(PLOT_LEFT + hour * slot + slot / 2, 2), label=f"{hour:02d}")
        for hour in range(0, 24, 3)
    ]
    return Chart(
        width=CHART_WIDTH,
        height=CHART_HEIGHT,
        bars=bars,
        yesterday_points=" ".join(points),
        ticks=ticks,
        plot_left=PLOT_LEFT,
        plot_right=CHART_WIDTH - PLOT_RIGHT,
        top=PLOT_TOP,
        baseline=baseline,
        plot_height=plot_height,
        scale_max=scale_max,
        summary=_chart_summary(hourly),
    )


def _chart_summary(hourly: Hourly) -> str:
    """What a screen reader hears instead of the bars."""
    if not hourly.total_today:
        text = _("Conversations created per hour: none today yet.")
    else:
        busiest = max(range(24), key=lambda hour: (hourly.today[hour], -hour))
        text = _(
            "Conversations created per hour: %(total)s today, the most at "
            "%(hour)02d:00 (%(count)s)."
        ) % {"total": hourly.total_today, "hour": busiest, "count": hourly.today[busiest]}
    return "{} {}".format(
        text,
        _("Yesterday: %(total)s in total.") % {"total": hourly.total_yesterday},
    )


def _context(data: Dashboard, now: datetime) -> dict[str, Any]:
    times = data.times
    return {
        "dash": data,
        "now": now,
        "chart": hour_chart(data.hourly),
        "first_response_median": short_duration(times.first_response_median),
        "first_response_p90": short_duration(times.first_response_p90),
        "resolution_median": short_duration(times.resolution_median),
        # Server-side first text of the data-since elements; console.js keeps them growing.
        "queues": [
            {"row": row, "waiting": short_duration(now - row.oldest_queued_at)}
            if row.oldest_queued_at
            else {"row": row, "waiting": ""}
            for row in data.queues
        ],
        "agents": [
            {
                "row": row,
                "since": short_duration(now - row.availability_changed_at)
                if row.availability_changed_at
                else "",
            }
            for row in data.agents
        ],
    }


@never_cache
@require_GET
@login_required
def dashboard(request: HttpRequest) -> HttpResponse:
    """Supervisors and admins; an agent gets a friendly 403 page. ``?part=body``
    answers the fragment inside ``#dashboard-body`` only."""
    user = request.user
    if not user.is_supervisor:
        return render(request, "conversations/_dashboard_forbidden.html", status=403)
    now = timezone.now()
    context = _context(dashboard_for(user, now=now), now)
    if request.GET.get("part") == "body":
        return render(request, "conversations/_dashboard_body.html", context)
    return render(request, "conversations/dashboard.html", context)

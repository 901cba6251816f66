"""Due times counted in business hours.

A team's targets ("first answer within 15 minutes") only count while the team
works: a message at 17:55 on a Friday with a 15-minute target is due at 08:10
on Saturday, not at 18:10 on Friday.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta
from typing import Any

from django.utils import timezone

Schedule = dict[int, list[tuple[time, time]]]


def parse_schedule(raw: dict[str, Any]) -> Schedule:
    """``{"0": [["08:00", "18:00"]]}`` → ``{0: [(time(8), time(18))]}``; ValueError if malformed."""
    schedule: Schedule = {}
    for day, intervals in (raw or {}).items():
        weekday = int(day)
        if not 0 <= weekday <= 6:
            raise ValueError(f"weekday {day!r} is not 0 (Monday) to 6 (Sunday)")
        parsed = []
        for start, end in intervals:
            opens, closes = time.fromisoformat(start), time.fromisoformat(end)
            if closes <= opens:
                raise ValueError(f"{start}-{end} ends before it starts")
            parsed.append((opens, closes))
        schedule[weekday] = sorted(parsed)
    return schedule


def add_business_minutes(start: datetime, minutes: int, schedule: Schedule) -> datetime | None:
    """The moment ``minutes`` business minutes after ``start``; None when the
    schedule has no open hours at all (no target can be met)."""
    if not any(schedule.values()):
        return None
    zone = timezone.get_current_timezone()
    local = timezone.localtime(start, zone)
    remaining = timedelta(minutes=minutes)
    day = local.date()
    # A year of closed days would be a broken schedule, not a long wait.
    for _ in range(370):
        for opens, closes in schedule.get(day.weekday(), []):
            window_start = datetime.combine(day, opens, tzinfo=zone)
            window_end = datetime.combine(day, closes, tzinfo=zone)
            begin = max(window_start, local)
            if begin >= window_end:
                continue
            available = window_end - begin
            if remaining <= available:
                return begin + remaining
            remaining -= available
        day += timedelta(days=1)
    return None

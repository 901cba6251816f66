"""SLA due times counted in the team's business hours (America/Sao_Paulo)."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

import pytest
from django.utils import timezone

from accounts.models import Team, User
from conversations import channels
from conversations.models import Conversation, Message, TeamQueue, default_business_hours
from conversations.services import conversation_handoff, conversation_transfer
from conversations.sla import add_business_minutes, parse_schedule
from tests.ispsupport.sample_tasks import echo

SP = ZoneInfo("America/Sao_Paulo")
Receive = Callable[..., Message]

WEEK = parse_schedule(default_business_hours())


def at(*args: int) -> datetime:
    return datetime(*args, tzinfo=SP)


def test_the_project_runs_in_sao_paulo(settings: object) -> None:
    assert settings.TIME_ZONE == "America/Sao_Paulo"  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("start", "minutes", "due"),
    [
        # Friday 17:55 + 15: five minutes on Friday, ten on Saturday morning.
        (at(2025, 3, 7, 17, 55), 15, at(2025, 3, 8, 8, 10)),
        (at(2025, 3, 7, 10, 0), 15, at(2025, 3, 7, 10, 15)),
        # Saturday closes at noon, Sunday is closed.
        (at(2025, 3, 8, 11, 55), 15, at(2025, 3, 10, 8, 10)),
        (at(2025, 3, 9, 15, 0), 15, at(2025, 3, 10, 8, 15)),
        # Before opening and after closing.
        (at(2025, 3, 10, 6, 0), 15, at(2025, 3, 10, 8, 15)),
        (at(2025, 3, 10, 18, 0), 15, at(2025, 3, 11, 8, 15)),
        # Eight business hours from Friday 14:00: 4 h Friday, 4 h Saturday.
        (at(2025, 3, 7, 14, 0), 8 * 60, at(2025, 3, 8, 12, 0)),
        (at(2025, 3, 7, 14, 0), 8 * 60 + 1, at(2025, 3, 10, 8, 1)),
    ],
)
def test_add_business_minutes(start: datetime, minutes: int, due: datetime) -> None:
    assert add_business_minutes(start, minutes, WEEK) == due


def test_an_utc_start_gives_the_same_moment() -> None:
    # 20:55 UTC is 17:55 in São Paulo.
    start = datetime(2025, 3, 7, 20, 55, tzinfo=UTC)

    assert add_business_minutes(start, 15, WEEK) == at(2025, 3, 8, 8, 10)


def test_split_shifts() -> None:
    lunch = parse_schedule({"0": [["13:00", "18:00"], ["08:00", "12:00"]]})

    assert add_business_minutes(at(2025, 3, 10, 11, 50), 20, lunch) == at(2025, 3, 10, 13, 10)


def test_a_schedule_that_is_always_closed_has_no_due_time() -> None:
    assert add_business_minutes(at(2025, 3, 7, 10, 0), 15, {}) is None
    assert add_business_minutes(at(2025, 3, 7, 10, 0), 15, parse_schedule({"0": []})) is None


def test_parse_schedule() -> None:
    assert parse_schedule({"4": [["08:00", "18:00"]], "5": [["08:00", "12:00"]]}) == {
        4: [(time(8), time(18))],
        5: [(time(8), time(12))],
    }


@pytest.mark.parametrize(
    ("raw", "error"),
    [
        ({"7": [["08:00", "18:00"]]}, "weekday '7' is not 0 (Monday) to 6 (Sunday)"),
        ({"0": [["18:00", "08:00"]]}, "18:00-08:00 ends before it starts"),
        ({"0": [["8h", "18h"]]}, "Invalid isoformat string"),
        ({"segunda": [["08:00", "18:00"]]}, "invalid literal"),
    ],
)
def test_a_malformed_schedule_is_refused(raw: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=re.escape(error)):
        parse_schedule(raw)  # type: ignore[arg-type]


# --- due times of queued conversations ------------------------------------------------


@pytest.fixture
def friday_1755(monkeypatch: pytest.MonkeyPatch) -> datetime:
    now = at(2025, 3, 7, 17, 55)
    monkeypatch.setattr(timezone, "now", lambda: now)
    return now


def test_a_queued_conversation_gets_its_due_times(
    friday_1755: datetime, support: Team, receive: Receive
) -> None:
    TeamQueue.objects.create(team=support, first_response_minutes=15, resolution_minutes=60)

    conversation = receive().conversation

    conversation.refresh_from_db()
    assert conversation.queued_at == friday_1755
    assert conversation.first_response_due_at == at(2025, 3, 8, 8, 10)
    assert conversation.resolution_due_at == at(2025, 3, 8, 8, 55)


def test_a_team_without_queue_settings_uses_the_defaults(
    friday_1755: datetime, receive: Receive
) -> None:
    conversation = receive().conversation

    conversation.refresh_from_db()
    assert conversation.first_response_due_at == at(2025, 3, 8, 8, 10)
    # Eight business hours: 5 min Friday, 4 h Saturday, 3 h 55 min Monday.
    assert conversation.resolution_due_at == at(2025, 3, 10, 11, 55)


def test_a_closed_team_has_no_due_times(
    friday_1755: datetime, support: Team, receive: Receive
) -> None:
    TeamQueue.objects.create(team=support, business_hours={})

    conversation = receive().conversation

    conversation.refresh_from_db()
    assert (conversation.first_response_due_at, conversation.resolution_due_at) == (None, None)
    assert conversation.state == Conversation.State.QUEUED


def test_broken_business_hours_do_not_stop_the_queue(
    friday_1755: datetime, support: Team, receive: Receive
) -> None:
    TeamQueue.objects.create(team=support, business_hours={"0": [["18:00", "08:00"]]})

    conversation = receive().conversation

    conversation.refresh_from_db()
    assert conversation.state == Conversation.State.QUEUED
    assert (conversation.first_response_due_at, conversation.resolution_due_at) == (None, None)


def test_handoff_from_the_bot_starts_the_clock(
    monkeypatch: pytest.MonkeyPatch, receive: Receive
) -> None:
    channels.register_bot(echo)
    conversation = receive().conversation
    assert conversation.first_response_due_at is None
    monkeypatch.setattr(timezone, "now", lambda: at(2025, 3, 7, 17, 55))

    conversation_handoff(conversation=conversation)

    conversation.refresh_from_db()
    assert conversation.queued_at == at(2025, 3, 7, 17, 55)
    assert conversation.first_response_due_at == at(2025, 3, 8, 8, 10)


def test_transfer_uses_the_new_teams_hours(
    monkeypatch: pytest.MonkeyPatch, finance: Team, agent: User, receive: Receive
) -> None:
    TeamQueue.objects.create(
        team=finance, first_response_minutes=30, business_hours={"0": [["09:00", "17:00"]]}
    )
    conversation = receive().conversation
    monkeypatch.setattr(timezone, "now", lambda: at(2025, 3, 7, 17, 55))  # a Friday

    conversation_transfer(conversation=conversation, actor=agent, team=finance)

    conversation.refresh_from_db()
    assert conversation.first_response_due_at == at(2025, 3, 10, 9, 30)

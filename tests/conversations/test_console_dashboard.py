"""The supervisor dashboard: who may see it, each figure from rows with known
timestamps (``now`` is passed in, never patched), the hourly chart, breakers,
empty states, escaping, and a query count that does not grow with the data."""

from __future__ import annotations

import itertools
import re
import socket
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.models import Team, User
from conversations import channels, signals
from conversations.dashboard import dashboard_for
from conversations.models import Contact, Conversation, Inbox, Message, TeamQueue
from conversations.services import (
    conversation_assign,
    conversation_handoff,
    conversation_resolve,
    message_send,
)
from ispsupport.breakers import get_breaker
from tests.ispsupport.sample_tasks import echo
from tests.support import free_port

State = Conversation.State
SP = ZoneInfo("America/Sao_Paulo")
URL = "/console/dashboard/"
_phones = itertools.count(1)

# The figures are computed with a frozen "now" (15:30 of today in São Paulo)
# passed to dashboard_for; the page itself uses the real clock, so the rows
# are built on the real today and the page's assertions avoid what depends on
# the exact minute.
TODAY = timezone.localdate(timezone.now(), SP)
NOW = datetime.combine(TODAY, time(15, 30), tzinfo=SP)


def at(hour: int, minute: int = 0, *, days: int = 0) -> datetime:
    """A wall-clock time in São Paulo, ``days`` from today."""
    return datetime.combine(TODAY + timedelta(days=days), time(hour, minute), tzinfo=SP)


def make(
    inbox: Inbox, *, team: Team | None, state: str = State.QUEUED, **fields: Any
) -> Conversation:
    """A conversation row as the services would have left it, with explicit times."""
    contact = Contact.objects.create(phone=f"+55119{next(_phones):08d}", profile_name="Cliente")
    fields.setdefault("created_at", at(8))
    fields.setdefault("last_message_at", fields["created_at"])
    return Conversation.objects.create(
        contact=contact, inbox=inbox, team=team, state=state, **fields
    )


def login(user: User) -> Client:
    client = Client()
    client.force_login(user)
    return client


def get(client: Client, *, query: str = "", lang: str = "en") -> Any:
    return client.get(URL + query, HTTP_ACCEPT_LANGUAGE=lang)


def figure(html: str, name: str) -> str:
    """The text of the element carrying data-figure="name" (first one)."""
    match = re.search(rf'data-figure="{name}"[^>]*>(.*?)</', html, re.S)
    assert match, f"no data-figure={name}"
    return match.group(1).strip()


# --- Who may see it -----------------------------------------------------------------


def test_anonymous_is_sent_to_the_login_page(db: None) -> None:
    response = Client().get(URL)

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={URL}"


def test_an_agent_gets_a_friendly_403_with_a_way_back(agent: User) -> None:
    response = get(login(agent))

    assert response.status_code == 403
    html = response.content.decode()
    assert "Only supervisors see the dashboard." in html
    assert f'href="{reverse("console")}"' in html
    assert 'id="dashboard-body"' not in html


def test_an_agent_asking_for_the_fragment_gets_the_403_too(agent: User) -> None:
    response = get(login(agent), query="?part=body")

    assert response.status_code == 403
    assert 'class="dash-grid"' not in response.content.decode()


def test_supervisor_sees_only_their_teams(
    inbox: Inbox, support: Team, finance: Team, supervisor: User, agent: User, outsider: User
) -> None:
    make(inbox, team=support, queued_at=at(15))
    make(inbox, team=finance, queued_at=at(14))
    make(inbox, team=finance, queued_at=at(13))
    make(inbox, team=finance, state=State.BOT)

    mine = dashboard_for(supervisor, now=NOW)

    assert (mine.states.queued, mine.states.bot) == (1, 0)
    assert [q.name for q in mine.queues] == ["Suporte técnico"]
    assert {a.name for a in mine.agents} == {"Bruno", "Elisa"}
    html = get(login(supervisor)).content.decode()
    assert "Financeiro" not in html
    assert "Diego" not in html


def test_admin_sees_every_team(
    inbox: Inbox, support: Team, finance: Team, admin: User, agent: User, outsider: User
) -> None:
    make(inbox, team=support, queued_at=at(15))
    make(inbox, team=finance, queued_at=at(14))
    make(inbox, team=None, queued_at=at(12))  # an inbox without a default team

    everything = dashboard_for(admin, now=NOW)

    assert everything.states.queued == 3
    assert [(q.name, q.queued) for q in everything.queues] == [
        ("Financeiro", 1),
        ("Suporte técnico", 1),
        ("", 1),
    ]
    assert {a.name for a in everything.agents} >= {"Bruno", "Diego"}
    response = get(login(admin))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Financeiro" in html and "Suporte técnico" in html and "No team" in html


# --- The figures ----------------------------------------------------------------------


def test_conversations_by_state(inbox: Inbox, support: Team, supervisor: User) -> None:
    make(inbox, team=support, state=State.BOT)
    make(inbox, team=support, state=State.QUEUED, queued_at=at(15))
    make(inbox, team=support, state=State.QUEUED, queued_at=at(15, 10))
    make(inbox, team=support, state=State.OPEN, queued_at=at(9))
    make(inbox, team=support, state=State.PENDING, queued_at=at(9))
    make(inbox, team=support, state=State.RESOLVED, resolved_at=at(0, 1))
    make(inbox, team=support, state=State.RESOLVED, resolved_at=at(15, 29))
    # Resolved yesterday (23:59 local): not today.
    make(inbox, team=support, state=State.RESOLVED, resolved_at=at(23, 59, days=-1))

    states = dashboard_for(supervisor, now=NOW).states

    assert (states.bot, states.queued, states.open, states.pending, states.resolved_today) == (
        1,
        2,
        1,
        1,
        2,
    )
    html = get(login(supervisor)).content.decode()
    assert [figure(html, n) for n in ("bot", "queued", "open", "pending", "resolved-today")] == [
        "1",
        "2",
        "1",
        "1",
        "2",
    ]


def test_queue_length_oldest_wait_and_overdue_first_responses(
    inbox: Inbox, support: Team, supervisor: User, agent: User
) -> None:
    # Times from yesterday and tomorrow, so the page (real clock) agrees with NOW.
    oldest = make(
        inbox, team=support, queued_at=at(22, days=-1), first_response_due_at=at(22, 15, days=-1)
    )
    make(inbox, team=support, queued_at=at(23, days=-1), first_response_due_at=at(8, days=1))
    # Taken but not answered yet, and late: still overdue for a first response.
    make(
        inbox,
        team=support,
        state=State.OPEN,
        assignee=agent,
        queued_at=at(21, days=-1),
        first_response_due_at=at(21, 15, days=-1),
    )
    # Answered, even if late: not overdue any more.
    make(
        inbox,
        team=support,
        state=State.OPEN,
        assignee=agent,
        queued_at=at(20, days=-1),
        first_response_due_at=at(20, 15, days=-1),
        first_response_at=at(20, 40, days=-1),
    )

    [queue] = dashboard_for(supervisor, now=NOW).queues

    assert (queue.queued, queue.oldest_queued_at, queue.overdue) == (2, oldest.queued_at, 2)
    html = get(login(supervisor)).content.decode()
    row = re.search(rf'<tr data-team-id="{support.pk}">(.*?)</tr>', html, re.S).group(1)
    assert figure(row, "queued") == "2"
    # ISP.refreshTimes keeps this growing in the browser.
    assert f'data-since="{oldest.queued_at.astimezone(SP).isoformat()}"' in row
    assert '<span class="overdue">2</span>' in row


def test_agents_availability_load_and_limit(
    inbox: Inbox, support: Team, supervisor: User, agent: User, teammate: User
) -> None:
    TeamQueue.objects.create(team=support, max_active_per_agent=2)
    User.objects.filter(pk=agent.pk).update(
        availability=User.Availability.ONLINE, availability_changed_at=at(9)
    )
    User.objects.filter(pk=teammate.pk).update(availability=User.Availability.AWAY)
    make(inbox, team=support, state=State.OPEN, assignee=agent)
    make(inbox, team=support, state=State.PENDING, assignee=agent)
    make(inbox, team=support, state=State.RESOLVED, assignee=agent, resolved_at=at(10))
    make(inbox, team=support, state=State.OPEN, assignee=teammate)

    agents = {a.name: a for a in dashboard_for(supervisor, now=NOW).agents}

    bruno, carla = agents["Bruno"], agents["Carla"]
    assert (bruno.availability, bruno.load, bruno.max_active, bruno.at_limit) == (
        "online",
        2,
        2,
        True,
    )
    assert bruno.availability_changed_at == at(9)
    assert (carla.availability, carla.load, carla.at_limit) == ("away", 1, False)
    assert [a.name for a in dashboard_for(supervisor, now=NOW).agents][:2] == ["Bruno", "Carla"]
    html = get(login(supervisor)).content.decode()
    row = re.search(rf'<tr data-agent-id="{agent.pk}">(.*?)</tr>', html, re.S).group(1)
    # The colour dot comes with the word: never colour alone.
    assert 'class="presence presence-online"' in row
    assert '<span class="dot" aria-hidden="true"></span>Online</span>' in row
    assert (figure(row, "load"), figure(row, "max")) == ("2", "2")
    assert "full" in row
    assert f'data-since="{at(9).isoformat()}"' in row


def test_an_agent_without_queue_settings_has_the_default_limit(
    support: Team, supervisor: User, agent: User
) -> None:
    [bruno] = [a for a in dashboard_for(supervisor, now=NOW).agents if a.name == "Bruno"]

    assert bruno.max_active == TeamQueue().max_active_per_agent == 5


def test_first_response_and_resolution_times_today(
    inbox: Inbox, support: Team, supervisor: User
) -> None:
    for minutes in (2, 4, 6, 10):
        make(
            inbox,
            team=support,
            state=State.OPEN,
            queued_at=at(10),
            first_response_at=at(10) + timedelta(minutes=minutes),
        )
    # Answered yesterday; answered before it was (re)queued; answered straight
    # from the bot, never queued: none of them is a wait in today's queue.
    make(
        inbox,
        team=support,
        state=State.OPEN,
        queued_at=at(10, days=-1),
        first_response_at=at(11, days=-1),
    )
    make(inbox, team=support, state=State.QUEUED, queued_at=at(12), first_response_at=at(11))
    make(inbox, team=support, state=State.OPEN, first_response_at=at(11))
    for hours in (1, 3, 2):
        make(
            inbox,
            team=support,
            state=State.RESOLVED,
            created_at=at(15) - timedelta(hours=hours),
            resolved_at=at(15),
        )
    make(
        inbox,
        team=support,
        state=State.RESOLVED,
        created_at=at(1, days=-2),
        resolved_at=at(9, days=-1),
    )

    times = dashboard_for(supervisor, now=NOW).times

    assert times.first_response_count == 4
    assert times.first_response_median == timedelta(minutes=5)  # (4 + 6) / 2
    assert times.first_response_p90 == timedelta(minutes=10)  # rank ceil(0.9 x 4) = 4
    assert (times.resolution_count, times.resolution_median) == (3, timedelta(hours=2))
    html = get(login(supervisor)).content.decode()
    assert figure(html, "first-response-median") == "5 min"
    assert figure(html, "first-response-p90") == "10 min"
    assert figure(html, "resolution-median") == "2 h"


def test_an_odd_count_takes_the_middle_value(inbox: Inbox, support: Team, supervisor: User) -> None:
    for seconds in (30, 50, 400):
        make(
            inbox,
            team=support,
            state=State.OPEN,
            queued_at=at(10),
            first_response_at=at(10) + timedelta(seconds=seconds),
        )

    times = dashboard_for(supervisor, now=NOW).times

    assert (times.first_response_median, times.first_response_p90) == (
        timedelta(seconds=50),
        timedelta(seconds=400),
    )


@pytest.fixture
def resolutions() -> Iterator[dict[int, bool]]:
    """What conversation_resolve announced, by conversation id."""
    seen: dict[int, bool] = {}

    def record(sender: object, conversation_id: int, self_served: bool, **_: object) -> None:
        seen[conversation_id] = self_served

    signals.conversation_resolved.connect(record)
    yield seen
    signals.conversation_resolved.disconnect(record)


@pytest.mark.django_db(transaction=True)
def test_self_service_matches_what_the_resolve_service_announces(
    receive: Callable[..., Message],
    resolutions: dict[int, bool],
    supervisor: User,
    agent: User,
) -> None:
    channels.register_bot(echo)

    def bot_conversation(phone: str) -> Conversation:
        conversation = receive("Oi", wa_id=phone).conversation
        assert conversation.state == State.BOT
        return conversation

    # The bot settles two alone.
    for phone in ("5511911110001", "5511911110002"):
        conversation_resolve(conversation=bot_conversation(phone), actor=None)
    # Handed off to the queue, then closed by the system: people were involved.
    handed = conversation_handoff(conversation=bot_conversation("5511911110003"))
    conversation_resolve(conversation=handed, actor=None)
    # An agent answered from the bot and resolved it.
    answered = bot_conversation("5511911110004")
    message_send(conversation=answered, actor=agent, text="Olá, sou o Bruno")
    conversation_resolve(conversation=answered, actor=agent)
    # A supervisor gave it to an agent; the system closed it later.
    assigned = conversation_assign(
        conversation=bot_conversation("5511911110005"), agent=agent, actor=supervisor
    )
    conversation_resolve(conversation=assigned, actor=None)

    served = dashboard_for(supervisor).self_service

    assert sorted(resolutions.values()) == [False, False, False, True, True]
    assert (served.resolved, served.self_served, served.percent) == (5, 2, 40)
    html = get(login(supervisor)).content.decode()
    assert figure(html, "self-service") == "40%"


def test_csat_today_and_last_seven_days(inbox: Inbox, support: Team, supervisor: User) -> None:
    for score, answered in (
        (5, at(9)),
        (4, at(10)),
        (2, at(0, 5)),
        (1, at(12, days=-3)),
        (5, at(0, 0, days=-6)),  # the first of the 7 days
        (5, at(23, 59, days=-7)),  # the day before: too old
    ):
        make(
            inbox,
            team=support,
            state=State.RESOLVED,
            resolved_at=answered - timedelta(minutes=1),
            csat_score=score,
            csat_answered_at=answered,
        )
    make(inbox, team=support, state=State.RESOLVED, resolved_at=at(9), csat_requested_at=at(9))

    data = dashboard_for(supervisor, now=NOW)

    today, week = data.csat_today, data.csat_week
    assert (round(today.average, 2), today.answers, today.good, today.good_percent) == (
        3.67,
        3,
        2,
        67,
    )
    assert (week.average, week.answers, week.good, week.good_percent) == (3.4, 5, 3, 60)
    html = get(login(supervisor)).content.decode()
    assert re.search(r'data-csat="today".*?data-figure="csat-average">3.7<', html, re.S)
    assert "67% rated 4\u20135" in html
    assert "3 answers" in html


def test_conversations_per_hour_today_and_yesterday(
    inbox: Inbox, support: Team, supervisor: User
) -> None:
    for created in (
        at(0, 10),
        at(0, 50),
        at(9, 15),
        at(15, 5),
        at(9, 30, days=-1),
        # 02:30 UTC today is 23:30 yesterday in São Paulo.
        datetime.combine(TODAY, time(2, 30), tzinfo=UTC),
        at(12, days=-2),  # the day before yesterday: not drawn
    ):
        make(inbox, team=support, state=State.BOT, created_at=created)

    hourly = dashboard_for(supervisor, now=NOW).hourly

    assert {h: n for h, n in enumerate(hourly.today) if n} == {0: 2, 9: 1, 15: 1}
    assert {h: n for h, n in enumerate(hourly.yesterday) if n} == {9: 1, 23: 1}
    assert hourly.current_hour == 15


def test_the_hour_chart_is_an_accessible_svg(
    receive: Callable[..., Message], supervisor: User
) -> None:
    receive("Oi")  # created now: today's current hour

    html = get(login(supervisor)).content.decode()

    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S).group(0)
    assert 'role="img"' in svg
    assert 'aria-label="Conversations created per hour: 1 today' in svg
    assert svg.count("<title>") == 24
    assert len(re.findall(r'<g class="hour[^"]*" data-hour="\d+"', svg)) == 24
    assert re.search(r'class="hour now" data-hour="\d+" data-today="1"', svg)
    assert "style=" not in html


def test_svg_coordinates_keep_the_dot_in_portuguese(
    receive: Callable[..., Message], supervisor: User
) -> None:
    receive("Oi")

    html = get(login(supervisor), lang="pt-br").content.decode()

    svg = re.search(r"<svg[^>]*>.*?</svg>", html, re.S).group(0)
    assert not re.search(r'(?:x|y|width|height)="\d+,\d+"', svg)
    assert re.search(r'width="\d+\.\d+"', svg)


# --- Breakers, empty states, escaping, the fragment ------------------------------------


def _connect_to_nothing() -> None:
    socket.create_connection(("127.0.0.1", free_port()), timeout=1).close()


def test_an_open_breaker_is_shown_and_highlighted(supervisor: User) -> None:
    breaker = get_breaker("whatsapp")
    for _ in range(3):
        with pytest.raises(ConnectionRefusedError):
            breaker.call(_connect_to_nothing)

    rows = {b.name: b for b in dashboard_for(supervisor, now=NOW).breakers}

    assert (rows["whatsapp"].state, rows["whatsapp"].failures, rows["whatsapp"].is_open) == (
        "open",
        3,
        True,
    )
    assert rows["gemini"].state == "closed"
    html = get(login(supervisor)).content.decode()
    assert re.search(
        r'class="breaker breaker-open" data-breaker="whatsapp" data-state="open"', html
    )
    assert re.search(r'class="breaker breaker-closed" data-breaker="database"', html)
    assert "Open: calls refused" in html
    assert "3/3 failures" in html


def test_a_half_open_breaker_says_it_is_testing(supervisor: User) -> None:
    get_breaker("gemini").half_open()

    html = get(login(supervisor)).content.decode()

    assert re.search(r'class="breaker breaker-half-open" data-breaker="gemini"', html)
    assert "Half-open: testing" in html


def test_a_fresh_install_shows_empty_states(admin: User) -> None:
    response = get(login(admin))

    assert response.status_code == 200
    html = response.content.decode()
    assert "No conversations today yet" in html
    assert html.count("No ratings yet") == 2
    assert "No conversations resolved today yet" in html
    assert "No teams yet" in html
    assert "<svg" not in html  # nothing to draw, today or yesterday
    assert [figure(html, n) for n in ("bot", "queued", "open", "pending")] == ["0"] * 4
    assert figure(html, "first-response-median") == "—"


def test_names_are_escaped(inbox: Inbox, support: Team, supervisor: User, agent: User) -> None:
    User.objects.filter(pk=agent.pk).update(name="<img src=x onerror=alert(1)>")
    Team.objects.filter(pk=support.pk).update(name="<script>alert(1)</script>")

    html = get(login(supervisor)).content.decode()

    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<img src=x" not in html
    assert "<script>alert(1)" not in html


def test_part_body_returns_only_the_fragment(supervisor: User) -> None:
    client = login(supervisor)

    page = get(client).content.decode()
    fragment = get(client, query="?part=body")

    assert fragment.status_code == 200
    body = fragment.content.decode()
    assert 'class="dash-grid"' in body
    assert "<html" not in body and "<header" not in body and 'id="dashboard-body"' not in body
    assert 'id="dashboard-body"' in page and 'data-url="/console/dashboard/?part=body"' in page
    assert "js/dashboard.js" in page and "css/dashboard.css" in page
    assert fragment["Cache-Control"].startswith("max-age=0")


# --- Query count --------------------------------------------------------------------------


def _populate(inbox: Inbox, teams: list[Team], agents: list[User], n: int) -> None:
    # Resolved and answered ones first: even 3 rows have every figure to
    # measure (an empty figure skips its percentile read).
    states = [State.RESOLVED, State.OPEN, State.QUEUED, State.BOT, State.PENDING]
    for i in range(n):
        state = states[i % len(states)]
        team = teams[i % len(teams)]
        agent = agents[i % len(agents)] if state in (State.OPEN, State.PENDING) else None
        make(
            inbox,
            team=team,
            state=state,
            assignee=agent,
            created_at=at(i % 15, 5),
            queued_at=at(i % 15, 6) if state != State.BOT else None,
            first_response_at=at(i % 15, 9) if state in (State.OPEN, State.RESOLVED) else None,
            first_response_due_at=at(i % 15, 20),
            resolved_at=at(15, 0) if state == State.RESOLVED else None,
            csat_score=(i % 5) + 1 if state == State.RESOLVED else None,
            csat_answered_at=at(15, 1) if state == State.RESOLVED else None,
        )


def _queries(client: Client) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = get(client)
    assert response.status_code == 200
    return len(captured)


def test_the_query_count_does_not_grow_with_the_data(
    inbox: Inbox,
    support: Team,
    finance: Team,
    admin: User,
    agent: User,
    teammate: User,
    outsider: User,
    django_assert_max_num_queries: Any,
) -> None:
    TeamQueue.objects.create(team=support)
    client = login(admin)
    _populate(inbox, [support, finance], [agent, teammate, outsider], 3)
    small = _queries(client)

    _populate(inbox, [support, finance], [agent, teammate, outsider], 27)
    # 2 for the session and user, then teams, totals, queues, memberships,
    # agents, hourly buckets and 3 one-row percentile reads: 11.
    with django_assert_max_num_queries(11):
        get(client)

    assert _queries(client) == small

"""Where a waiting customer stands in the team's queue, and roughly how long
they will wait (what the bot tells them on handoff)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Contact, Conversation, Inbox, Message
from conversations.selectors import QueuePlace, queue_place

State = Conversation.State
Receive = Callable[..., Message]
T0 = timezone.now().replace(microsecond=0) - timedelta(hours=1)


def queued(receive: Receive, wa_id: str, at: datetime | None, **fields: object) -> Conversation:
    """A customer's conversation waiting in Suporte técnico since ``at``."""
    conversation = receive(wa_id=wa_id).conversation
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)
    Conversation.objects.filter(pk=conversation.pk).update(queued_at=at, **fields)
    conversation.refresh_from_db()
    return conversation


def available(*users: User, status: str = User.Availability.ONLINE) -> None:
    User.objects.filter(pk__in=[u.pk for u in users]).update(availability=status)


@pytest.fixture
def history(inbox: Inbox, support: Team, finance: Team) -> Callable[..., None]:
    """Conversations already answered: ``(team, queued ago, minutes until answered)``."""
    contact = Contact.objects.create(wa_id="5511900000000", phone="+5511900000000")

    def make(*rows: tuple[Team, timedelta, float]) -> None:
        now = timezone.now()
        for team, ago, wait in rows:
            Conversation.objects.create(
                contact=contact,
                inbox=inbox,
                team=team,
                state=State.RESOLVED,
                queued_at=now - ago,
                first_response_at=now - ago + timedelta(minutes=wait),
                resolved_at=now,
            )

    return make


# --- position -------------------------------------------------------------------------------


def test_the_position_counts_only_unassigned_conversations_of_the_team_queued_earlier(
    receive: Receive, agent: User, finance: Team
) -> None:
    earlier = queued(receive, "5511911110001", T0 - timedelta(minutes=10))
    same_time_first = queued(receive, "5511911110002", T0)
    me = queued(receive, "5511911110003", T0)
    same_time_after = queued(receive, "5511911110004", T0)
    later = queued(receive, "5511911110005", T0 + timedelta(minutes=5))
    # Earlier still, but not waiting in this queue:
    queued(receive, "5511911110006", T0 - timedelta(minutes=40), team=finance)
    queued(receive, "5511911110007", T0 - timedelta(minutes=40), state=State.OPEN, assignee=agent)
    queued(receive, "5511911110008", T0 - timedelta(minutes=40), assignee=agent)
    queued(receive, "5511911110009", T0 - timedelta(minutes=40), state=State.PENDING)
    queued(receive, "5511911110010", T0 - timedelta(minutes=40), state=State.RESOLVED)
    queued(receive, "5511911110011", T0 - timedelta(minutes=40), state=State.BOT)

    positions = [
        queue_place(c).position for c in (earlier, same_time_first, me, same_time_after, later)
    ]

    assert positions == [1, 2, 3, 4, 5]


def test_each_team_has_its_own_queue(receive: Receive, finance: Team) -> None:
    queued(receive, "5511911110001", T0 - timedelta(minutes=10))
    billing = queued(receive, "5511911110002", T0, team=finance)

    assert queue_place(billing).position == 1


def test_a_conversation_not_queued_yet_would_be_next(receive: Receive) -> None:
    queued(receive, "5511911110001", T0)
    with_the_bot = queued(receive, "5511911110002", None, state=State.BOT)

    assert queue_place(with_the_bot) == QueuePlace(position=1, wait_minutes=None)


# --- wait -----------------------------------------------------------------------------------


def test_without_recent_history_there_is_no_estimate(
    receive: Receive, agent: User, history: Callable[..., None], support: Team, finance: Team
) -> None:
    available(agent)
    history(
        (support, timedelta(days=8), 5),  # too old
        (finance, timedelta(hours=2), 5),  # another team
    )
    me = queued(receive, "5511911110001", T0)

    assert queue_place(me) == QueuePlace(position=1, wait_minutes=None)


def test_the_estimate_is_the_median_wait_times_the_position_over_online_agents(
    receive: Receive,
    agent: User,
    teammate: User,
    supervisor: User,
    outsider: User,
    history: Callable[..., None],
    support: Team,
    finance: Team,
) -> None:
    history(
        (support, timedelta(hours=3), 2),
        (support, timedelta(days=2), 4),
        (support, timedelta(days=6), 30),
        (support, timedelta(days=8), 600),  # older than a week: ignored
        (finance, timedelta(hours=1), 600),  # another team's queue: ignored
    )
    available(agent, teammate, outsider)  # the outsider is online for Financeiro only
    available(supervisor, status=User.Availability.AWAY)
    gone = User.objects.create_user(username="ex.agente", password=None)
    gone.teams.set([support])
    User.objects.filter(pk=gone.pk).update(availability=User.Availability.ONLINE, is_active=False)
    queued(receive, "5511911110001", T0 - timedelta(minutes=2))
    queued(receive, "5511911110002", T0 - timedelta(minutes=1))
    me = queued(receive, "5511911110003", T0)

    # median 4 min x position 3 / 2 online agents
    assert queue_place(me) == QueuePlace(position=3, wait_minutes=6)


def test_away_and_offline_agents_do_not_shorten_the_wait(
    receive: Receive,
    agent: User,
    teammate: User,
    history: Callable[..., None],
    support: Team,
) -> None:
    history((support, timedelta(hours=1), 10), (support, timedelta(hours=2), 10))
    available(agent, status=User.Availability.AWAY)
    available(teammate, status=User.Availability.OFFLINE)
    me = queued(receive, "5511911110001", T0)

    assert queue_place(me).wait_minutes == 10  # as if one agent were there

    available(agent, teammate)

    assert queue_place(me).wait_minutes == 5


def test_the_estimate_is_at_least_a_minute(
    receive: Receive, agent: User, teammate: User, history: Callable[..., None], support: Team
) -> None:
    history((support, timedelta(hours=1), 0.2))
    available(agent, teammate)
    me = queued(receive, "5511911110001", T0)

    assert queue_place(me) == QueuePlace(position=1, wait_minutes=1)


def test_a_conversation_answered_before_it_was_queued_again_is_no_sample(
    receive: Receive, agent: User, history: Callable[..., None], support: Team, inbox: Inbox
) -> None:
    """A transfer queues an answered conversation again: its first answer came
    before this queueing and says nothing about the wait."""
    history((support, timedelta(hours=1), 8))
    transferred = queued(receive, "5511911110009", T0)
    Conversation.objects.filter(pk=transferred.pk).update(
        state=State.RESOLVED, first_response_at=T0 - timedelta(hours=3)
    )
    available(agent)
    me = queued(receive, "5511911110001", T0)

    assert queue_place(me).wait_minutes == 8

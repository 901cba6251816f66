"""Take-next: the oldest queued conversation of the agent's teams, and never
the same one to two agents, even when they all click at once."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from accounts.models import Team, User
from conversations.models import Conversation, Inbox, Message
from conversations.services import conversation_assign, conversation_take_next

State = Conversation.State
Receive = Callable[..., Message]


def _queued(receive: Receive, n: int, *, minutes_ago: int = 0, **kwargs: object) -> Conversation:
    conversation = receive(wa_id=f"55119100{n:05d}", **kwargs).conversation
    Conversation.objects.filter(pk=conversation.pk).update(
        queued_at=timezone.now() - timedelta(minutes=minutes_ago)
    )
    return conversation


def test_takes_the_oldest_queued_conversation(agent: User, receive: Receive) -> None:
    newer = _queued(receive, 1, minutes_ago=1)
    older = _queued(receive, 2, minutes_ago=30)

    taken = conversation_take_next(agent=agent)

    assert taken is not None
    assert taken.pk == older.pk
    assert (taken.state, taken.assignee) == (State.OPEN, agent)
    older.refresh_from_db()
    assert (older.state, older.assignee) == (State.OPEN, agent)
    newer.refresh_from_db()
    assert (newer.state, newer.assignee) == (State.QUEUED, None)


def test_only_from_the_agents_own_teams(
    agent: User, outsider: User, finance: Team, receive: Receive
) -> None:
    finance_inbox = Inbox.objects.create(name="Financeiro", default_team=finance)
    billing = _queued(receive, 1, minutes_ago=60, inbox=finance_inbox)
    support = _queued(receive, 2, minutes_ago=5)

    taken_by_agent = conversation_take_next(agent=agent)
    taken_by_outsider = conversation_take_next(agent=outsider)

    assert taken_by_agent is not None and taken_by_agent.pk == support.pk
    assert taken_by_outsider is not None and taken_by_outsider.pk == billing.pk
    assert conversation_take_next(agent=agent) is None


def test_skips_conversations_someone_already_has(
    agent: User, teammate: User, receive: Receive
) -> None:
    held = _queued(receive, 1, minutes_ago=30)
    conversation_assign(conversation=held, agent=teammate, actor=teammate)
    waiting = _queued(receive, 2, minutes_ago=1)

    taken = conversation_take_next(agent=agent)

    assert taken is not None and taken.pk == waiting.pk
    held.refresh_from_db()
    assert held.assignee == teammate


def test_nothing_to_take(agent: User, inbox: Inbox) -> None:
    assert conversation_take_next(agent=agent) is None


def test_an_agent_without_a_team_takes_nothing(receive: Receive) -> None:
    _queued(receive, 1)
    loner = User.objects.create_user(username="sem.time", password="Senha-Forte-123")

    assert conversation_take_next(agent=loner) is None
    assert Conversation.objects.get().state == State.QUEUED


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize(("agents", "conversations"), [(6, 6), (6, 20), (8, 3)])
def test_agents_taking_at_once_never_get_the_same_conversation(
    support: Team, receive: Receive, agents: int, conversations: int
) -> None:
    staff = []
    for n in range(agents):
        user = User.objects.create_user(username=f"agente{n}", password="Senha-Forte-123")
        user.teams.add(support)
        staff.append(user)
    queued = {_queued(receive, n, minutes_ago=conversations - n).pk for n in range(conversations)}
    barrier = threading.Barrier(agents)

    def take_all(user: User) -> list[int]:
        taken: list[int] = []
        try:
            barrier.wait(timeout=10)
            while (conversation := conversation_take_next(agent=user)) is not None:
                taken.append(conversation.pk)
            return taken
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=agents) as pool:
        results = list(pool.map(take_all, staff))

    given = Counter(pk for taken in results for pk in taken)
    assert all(times == 1 for times in given.values()), given
    assert set(given) == queued
    rows = Conversation.objects.filter(pk__in=queued)
    assert {row.state for row in rows} == {State.OPEN}
    owner = {pk: staff[i].pk for i, taken in enumerate(results) for pk in taken}
    assert {row.pk: row.assignee_id for row in rows} == owner


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_more_agents_than_conversations_each_one_given_once(
    support: Team, receive: Receive
) -> None:
    staff = []
    for n in range(8):
        user = User.objects.create_user(username=f"agente{n}", password="Senha-Forte-123")
        user.teams.add(support)
        staff.append(user)
    queued = {_queued(receive, n).pk for n in range(4)}
    barrier = threading.Barrier(len(staff))

    def take_one(user: User) -> int | None:
        try:
            barrier.wait(timeout=10)
            conversation = conversation_take_next(agent=user)
            return conversation.pk if conversation else None
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(staff)) as pool:
        results = list(pool.map(take_one, staff))

    given = [pk for pk in results if pk is not None]
    assert sorted(given) == sorted(queued)
    assert results.count(None) == 4


def test_what_is_queued_for_no_team_is_for_the_admins_to_take(
    agent: User, receive: Receive, db: None
) -> None:
    """A fresh install has no teams: the bot's hand-offs queue for nobody, and
    only admins (who alone can see them) hand them out."""
    admin = User.objects.create_user(username="root.admin", role=User.Role.ADMIN)
    no_team = Inbox.objects.create(name="Sem equipe")
    orphan = _queued(receive, 1, minutes_ago=10, inbox=no_team)
    Conversation.objects.filter(pk=orphan.pk).update(team=None)

    assert conversation_take_next(agent=agent) is None
    taken = conversation_take_next(agent=admin)

    assert taken is not None and taken.pk == orphan.pk
    assert taken.assignee == admin

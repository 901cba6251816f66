"""Concurrency on PostgreSQL, at the issue's numbers.

Already covered elsewhere, and not repeated here:
- tests/whatsapp/test_webhook_concurrency.py: the same delivery posted 50 times
  at once through the view in one process (threads) → one message, one bot task;
- tests/conversations/test_take_next.py: 6 or 8 agents taking at once (service).

Added here: the 50 deliveries across two real daphne processes (as production
runs them, each with its own connection pool), and 20 agents calling the
take-next API at once, each on a connection of its own, which the test proves.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client

from accounts.models import Team, User
from conversations.models import Conversation, Message
from tests.conversations.conftest import (  # noqa: F401 - fixtures
    _fast_password_hashing,
    _no_channel_registrations,
    _no_greeting,
    inbox,
    receive,
    support,
)
from tests.faults.conftest import Answer, FaultDatabase, Served, delivery
from tests.support import bearer

pytestmark = pytest.mark.postgres

DELIVERIES = 50
AGENTS = 20
QUEUED = 30
TAKE_NEXT = "/api/v1/conversations/take-next/"


def _at_once(count: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)

    def run(index: int) -> object:
        barrier.wait(timeout=30)
        return work(index)

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.server
def test_fifty_deliveries_of_one_payload_across_two_servers_store_one_message(
    fault_database: FaultDatabase, serve: Callable[..., Served]
) -> None:
    servers = [serve(DATABASE_URL=fault_database.url()) for _ in range(2)]
    external_id = "wamid.FAULT.FIFTY.ACROSS"
    body = delivery(external_id)

    answers = _at_once(DELIVERIES, lambda i: servers[i % 2].post_webhook(body))

    assert all(isinstance(a, Answer) and a.status == 200 for a in answers), answers
    results = [a.body for a in answers if isinstance(a, Answer)]
    assert sum(r["messages"] for r in results) == 1
    assert sum(r["duplicates"] for r in results) == DELIVERIES - 1
    assert fault_database.stored([external_id]) == {external_id: 1}
    # The bot is asked about it once, whichever process stored it.
    assert fault_database.tasks_about(external_id) == ["chatbot.tasks.handle_message"]


@pytest.fixture
def wide_pool(transactional_db: None) -> Iterator[None]:
    """A connection pool of this process big enough for every agent at once
    (the default's 12 would queue them and hide the race)."""
    pool = connection.settings_dict["OPTIONS"].get("pool")
    saved = dict(pool)
    connection.close()
    connection.close_pool()
    pool["max_size"] = max(pool["max_size"], AGENTS + 4)
    try:
        yield
    finally:
        connection.close()
        connection.close_pool()
        pool.clear()
        pool.update(saved)


@pytest.mark.django_db(transaction=True)
def test_twenty_agents_taking_next_at_once_never_get_the_same_conversation(
    support: Team,  # noqa: F811
    receive: Callable[..., Message],  # noqa: F811
    wide_pool: None,
) -> None:
    staff = []
    for n in range(AGENTS):
        user = User.objects.create_user(username=f"agente{n:02d}", password="Senha-Forte-123")
        user.teams.add(support)
        staff.append(user)
    queued = {receive(wa_id=f"551192000{n:04d}").conversation_id for n in range(QUEUED)}
    assert Conversation.objects.filter(pk__in=queued, state="queued").count() == QUEUED
    tokens = [bearer(user) for user in staff]

    barrier = threading.Barrier(AGENTS)

    def agent(index: int) -> tuple[int, list[int], int]:
        client = Client()
        try:
            # Each agent holds a connection of its own before any of them starts.
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_backend_pid()")
                [pid] = cursor.fetchone()
            barrier.wait(timeout=30)
            taken: list[int] = []
            while (response := client.post(TAKE_NEXT, headers=tokens[index])).status_code == 200:
                taken.append(response.json()["id"])
            return pid, taken, response.status_code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=AGENTS) as pool:
        results = list(pool.map(agent, range(AGENTS)))

    # All twenty were connected at the same time: they really raced.
    assert len({pid for pid, _, _ in results}) == AGENTS
    assert [last for _, _, last in results] == [204] * AGENTS
    given = Counter(pk for _, taken, _ in results for pk in taken)
    assert all(times == 1 for times in given.values()), given
    assert set(given) == queued
    owner = {pk: staff[i].pk for i, (_, taken, _) in enumerate(results) for pk in taken}
    rows = Conversation.objects.filter(pk__in=queued)
    assert {row.pk: (row.state, row.assignee_id) for row in rows} == {
        pk: ("open", agent_id) for pk, agent_id in owner.items()
    }

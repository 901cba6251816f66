"""The conversation metrics as Prometheus scrapes them from GET /metrics.

Counters and histograms live for the whole test process, so those tests
compare with the value before; the gauges are read from this test's database.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import Team, User
from conversations.models import Conversation, Inbox, Message
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    conversation_set_pending,
    message_apply_status,
    message_send,
)

Receive = Callable[..., Message]


def scrape(client: Client) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }


def now_value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


# Counters move when the change commits: these tests really commit.
@pytest.mark.django_db(transaction=True)
def test_conversations_created_and_by_state(client: Client, agent: User, receive: Receive) -> None:
    created_before = now_value("conversations_created_total")
    first = receive(wa_id="5511911110001").conversation
    second = receive(wa_id="5511911110002").conversation
    receive(wa_id="5511911110003")
    receive("de novo", wa_id="5511911110003")  # the same conversation
    conversation_assign(conversation=first, agent=agent, actor=agent)
    conversation_assign(conversation=second, agent=agent, actor=agent)
    conversation_set_pending(conversation=second, actor=agent)

    metrics = scrape(client)

    assert metrics[("conversations_created_total", ())] == created_before + 3
    by_state = {
        dict(labels)["state"]: value
        for (name, labels), value in metrics.items()
        if name == "conversations_by_state"
    }
    assert by_state == {"bot": 0, "queued": 1, "open": 1, "pending": 1, "resolved": 0}


# Counters move when the change commits: these tests really commit.
@pytest.mark.django_db(transaction=True)
def test_conversation_duration_is_observed_on_resolve(
    client: Client, agent: User, conversation: Conversation
) -> None:
    count_before = now_value("conversation_duration_seconds_count")
    sum_before = now_value("conversation_duration_seconds_sum")

    conversation_resolve(conversation=conversation, actor=agent)

    metrics = scrape(client)
    conversation.refresh_from_db()
    duration = (conversation.resolved_at - conversation.created_at).total_seconds()
    assert metrics[("conversation_duration_seconds_count", ())] == count_before + 1
    assert abs(metrics[("conversation_duration_seconds_sum", ())] - sum_before - duration) < 1e-6


# Counters move when the change commits: these tests really commit.
@pytest.mark.django_db(transaction=True)
def test_messages_sent_count_what_the_channel_accepted_once(
    client: Client, agent: User, conversation: Conversation
) -> None:
    agent_before = now_value("messages_sent_total", sender="agent")
    bot_before = now_value("messages_sent_total", sender="bot")
    accepted = message_send(conversation=conversation, actor=agent, text="Olá").message
    refused = message_send(conversation=conversation, actor=agent, text="Tudo bem?").message
    by_bot = message_send(conversation=conversation, text="Sou o assistente").message

    message_apply_status(message=accepted, status="sent")
    message_apply_status(message=accepted, status="delivered")
    message_apply_status(message=accepted, status="read")
    message_apply_status(message=refused, status="failed", error_code="131026")
    message_apply_status(message=by_bot, status="delivered")  # "sent" was lost on the way

    metrics = scrape(client)
    assert metrics[("messages_sent_total", (("sender", "agent"),))] == agent_before + 1
    assert metrics[("messages_sent_total", (("sender", "bot"),))] == bot_before + 1


def test_message_queue_size_counts_pending_messages(
    client: Client, agent: User, conversation: Conversation
) -> None:
    first = message_send(conversation=conversation, actor=agent, text="Olá").message
    message_send(conversation=conversation, actor=agent, text="Um momento")
    message_send(conversation=conversation, actor=agent, text="Verificando")
    message_apply_status(message=first, status="sent")

    assert scrape(client)[("message_queue_size", ())] == 2


def test_an_empty_system_reports_zeros(client: Client, db: None) -> None:
    metrics = scrape(client)

    assert metrics[("message_queue_size", ())] == 0
    assert {
        dict(labels)["state"]: value
        for (name, labels), value in metrics.items()
        if name == "conversations_by_state"
    } == {"bot": 0, "queued": 0, "open": 0, "pending": 0, "resolved": 0}


def by_team(metrics: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str) -> dict:
    return {
        dict(labels)["team"]: value for (sample, labels), value in metrics.items() if sample == name
    }


def waited(conversation: Conversation, *, queued: float, due: float | None = None) -> None:
    """Move a conversation's queue times ``queued`` seconds (and its
    first-response due time ``due`` seconds) into the past."""
    now = timezone.now()
    fields: dict[str, Any] = {"queued_at": now - timedelta(seconds=queued)}
    if due is not None:
        fields["first_response_due_at"] = now - timedelta(seconds=due)
    Conversation.objects.filter(pk=conversation.pk).update(**fields)


def test_queue_gauges_per_team(
    client: Client, agent: User, finance: Team, inbox: Inbox, receive: Receive
) -> None:
    # Suporte técnico (the inbox's team): two waiting, one of them past its
    # due time; one assigned but never answered, past its due time; one
    # answered late; one resolved unanswered. Financeiro: nothing.
    waiting_long = receive(wa_id="5511911110001").conversation
    waiting_short = receive(wa_id="5511911110002").conversation
    taken_unanswered = receive(wa_id="5511911110003").conversation
    answered = receive(wa_id="5511911110004").conversation
    resolved = receive(wa_id="5511911110005").conversation
    waited(waiting_long, queued=600, due=60)
    waited(waiting_short, queued=120, due=-600)
    for taken in (taken_unanswered, answered):
        waited(taken, queued=900, due=300)
        conversation_assign(conversation=taken, agent=agent, actor=agent)
    message_send(conversation=answered, actor=agent, text="Olá, já verifico")
    waited(resolved, queued=1200, due=600)
    conversation_resolve(conversation=resolved, actor=agent)
    # An inbox of no team: its queue is labelled "".
    orphan_inbox = Inbox.objects.create(name="Sem equipe", address="+5511400099999")
    orphan = receive(wa_id="5511911110006", inbox=orphan_inbox).conversation
    waited(orphan, queued=30)

    metrics = scrape(client)

    wait = by_team(metrics, "conversations_queue_oldest_wait_seconds")
    assert set(wait) == {"Suporte técnico", "Financeiro", ""}
    assert 600 <= wait["Suporte técnico"] < 610
    assert 30 <= wait[""] < 40
    assert wait["Financeiro"] == 0
    assert by_team(metrics, "conversations_first_response_overdue") == {
        "Suporte técnico": 2,
        "Financeiro": 0,
        "": 0,
    }


def test_queue_gauges_of_an_empty_system(client: Client, support: Team) -> None:
    metrics = scrape(client)

    assert by_team(metrics, "conversations_queue_oldest_wait_seconds") == {"Suporte técnico": 0}
    assert by_team(metrics, "conversations_first_response_overdue") == {"Suporte técnico": 0}


# The recount happens when the change commits: this test really commits.
@pytest.mark.django_db(transaction=True)
def test_taking_the_oldest_conversation_is_seen_by_the_next_scrape(
    client: Client, agent: User, receive: Receive
) -> None:
    oldest = receive(wa_id="5511911110001").conversation
    newer = receive(wa_id="5511911110002").conversation
    waited(oldest, queued=600, due=60)
    waited(newer, queued=60)
    before = scrape(client)

    conversation_assign(conversation=oldest, agent=agent, actor=agent)
    message_send(conversation=oldest, actor=agent, text="Olá")
    after = scrape(client)

    assert by_team(before, "conversations_queue_oldest_wait_seconds")["Suporte técnico"] >= 600
    assert by_team(before, "conversations_first_response_overdue")["Suporte técnico"] == 1
    # Not the 10 s cached figures: the state change dropped them.
    assert 60 <= by_team(after, "conversations_queue_oldest_wait_seconds")["Suporte técnico"] < 70
    assert by_team(after, "conversations_first_response_overdue")["Suporte técnico"] == 0

"""A customer's message arrives: one contact, one active conversation with a
protocol, one message per provider id, even when WhatsApp redelivers or sends
several at once; a customer who writes again shortly after resolution reopens
the same conversation."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import Team, User
from conversations import channels
from conversations.models import Contact, Conversation, Inbox, Message
from conversations.services import (
    Received,
    conversation_assign,
    conversation_resolve,
    message_receive,
)
from tests.ispsupport.sample_tasks import echo

State = Conversation.State
Receive = Callable[..., Message]


def test_first_message_creates_the_contact_and_a_queued_conversation(
    receive: Receive, support: Team
) -> None:
    before = timezone.now()

    message = receive("Minha internet caiu", wa_id="5511988887777")

    contact = Contact.objects.get()
    assert (contact.wa_id, contact.phone, contact.profile_name) == (
        "5511988887777",
        "+5511988887777",
        "Maria Souza",
    )
    conversation = Conversation.objects.get()
    assert conversation.contact == contact
    assert (conversation.state, conversation.team, conversation.assignee) == (
        State.QUEUED,
        support,
        None,
    )
    assert conversation.unread_count == 1
    assert before <= conversation.last_inbound_at <= timezone.now()
    assert conversation.queued_at is not None
    message.refresh_from_db()
    assert (message.direction, message.sender_type, message.kind, message.status) == (
        Message.Direction.IN,
        Message.SenderType.CONTACT,
        Message.Kind.TEXT,
        Message.Status.RECEIVED,
    )
    assert message.text == "Minha internet caiu"
    assert message.conversation == conversation


def test_a_redelivered_message_changes_nothing(inbox: Inbox) -> None:
    first = message_receive(inbox=inbox, wa_id="5511988887777", text="Oi", external_id="wamid.1")
    conversation = first.message.conversation
    updated_at = Conversation.objects.get().updated_at

    again = message_receive(inbox=inbox, wa_id="5511988887777", text="Oi", external_id="wamid.1")

    assert first.created is True
    assert again == Received(first.message, created=False)
    assert Message.objects.count() == 1
    conversation.refresh_from_db()
    assert (conversation.unread_count, conversation.updated_at) == (1, updated_at)


def test_later_messages_join_the_active_conversation(receive: Receive) -> None:
    first = receive("Oi")
    second = receive("Minha internet caiu")

    assert second.conversation_id == first.conversation_id
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 2
    assert list(conversation.messages.values_list("text", flat=True)) == [
        "Oi",
        "Minha internet caiu",
    ]


def test_the_old_eight_digit_mobile_is_the_same_customer(receive: Receive) -> None:
    first = receive("Oi", wa_id="5511988887777")
    second = receive("Sou eu de novo", wa_id="551188887777")

    assert Contact.objects.count() == 1
    assert second.conversation_id == first.conversation_id


def test_messages_are_ordered_by_when_the_customer_sent_them(receive: Receive) -> None:
    now = timezone.now()
    later = receive("segunda", sent_at=now - timedelta(seconds=10))
    earlier = receive("primeira", sent_at=now - timedelta(seconds=30))

    assert earlier.created_at == now - timedelta(seconds=30)
    conversation = Conversation.objects.get()
    assert list(conversation.messages.values_list("text", flat=True)) == ["primeira", "segunda"]
    # The late arrival of an older message does not move the conversation back.
    assert conversation.last_message_at >= later.created_at


def test_a_clock_ahead_of_ours_does_not_date_a_message_in_the_future(receive: Receive) -> None:
    before = timezone.now()

    message = receive("do futuro", sent_at=timezone.now() + timedelta(hours=1))

    assert before <= message.created_at <= timezone.now()


def test_a_reply_is_linked_to_the_message_it_quotes(receive: Receive) -> None:
    quoted = receive("Qual o valor?", external_id="wamid.QUOTED")
    reply = receive("Esse aqui", reply_to_external_id="wamid.QUOTED")
    unknown = receive("E esse?", reply_to_external_id="wamid.NEVER-SEEN")

    assert reply.reply_to == quoted
    assert unknown.reply_to is None


def test_a_conversation_with_the_bot_enqueues_the_bot(receive: Receive) -> None:
    channels.register_bot(echo)

    message = receive("Oi")

    assert message.conversation.state == State.BOT
    assert message.conversation.queued_at is None
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "tests.ispsupport.sample_tasks.echo"
    assert task.args_kwargs["args"] == [message.pk]


def test_without_a_bot_nothing_is_enqueued(receive: Receive) -> None:
    receive("Oi")

    assert not DBTaskResult.objects.exists()


def test_an_inbox_without_a_team_queues_for_nobody_in_particular(
    receive: Receive, db: None
) -> None:
    inbox = Inbox.objects.create(name="Sem time")

    conversation = receive("Oi", inbox=inbox).conversation

    assert (conversation.state, conversation.team) == (State.QUEUED, None)


def test_a_username_only_customer_is_known_by_bsuid(inbox: Inbox) -> None:
    received = message_receive(
        inbox=inbox, bsuid="BR.12345abc", username="maria.fibra", text="Oi", external_id="w.1"
    )

    contact = received.message.conversation.contact
    assert (contact.bsuid, contact.wa_id, contact.phone, contact.username) == (
        "BR.12345abc",
        None,
        None,
        "maria.fibra",
    )
    assert contact.display_name == "@maria.fibra"


# --- protocol -------------------------------------------------------------------------


def test_protocol_is_the_local_date_and_a_six_digit_number(
    receive: Receive, monkeypatch: pytest.MonkeyPatch
) -> None:
    # 01:30 UTC on 1 March is still 28 February in São Paulo (UTC-3).
    monkeypatch.setattr(timezone, "now", lambda: datetime(2025, 3, 1, 1, 30, tzinfo=UTC))

    conversation = receive().conversation

    assert conversation.protocol == f"20250228-{conversation.pk:06d}"


def test_protocols_are_unique(receive: Receive) -> None:
    protocols = [receive(wa_id=f"55119111100{n:02d}").conversation.protocol for n in range(1, 6)]

    assert all(re.fullmatch(r"\d{8}-\d{6}", protocol) for protocol in protocols)
    assert len(set(protocols)) == 5


# --- reopening ------------------------------------------------------------------------


def _resolved_minutes_ago(conversation: Conversation, minutes: int) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - timedelta(minutes=minutes)
    )


def test_writing_soon_after_resolution_reopens_with_the_same_agent(
    agent: User, conversation: Conversation, receive: Receive, settings: object
) -> None:
    settings.CONVERSATION_REOPEN_MINUTES = 60  # type: ignore[attr-defined]
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_resolve(conversation=conversation, actor=agent)
    _resolved_minutes_ago(conversation, 59)

    again = receive("Caiu de novo").conversation

    assert again.pk == conversation.pk
    assert again.protocol == conversation.protocol
    assert (again.state, again.assignee) == (State.OPEN, agent)
    assert (again.resolved_at, again.resolved_by) == (None, None)
    assert Conversation.objects.count() == 1


def test_writing_soon_after_an_unassigned_resolution_queues_it_again(
    conversation: Conversation, receive: Receive, support: Team
) -> None:
    conversation_resolve(conversation=conversation, actor=None)

    again = receive("Caiu de novo").conversation

    assert again.pk == conversation.pk
    assert (again.state, again.team, again.assignee) == (State.QUEUED, support, None)


def test_writing_later_starts_a_new_conversation_with_a_new_protocol(
    agent: User, conversation: Conversation, receive: Receive, settings: object
) -> None:
    settings.CONVERSATION_REOPEN_MINUTES = 60  # type: ignore[attr-defined]
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_resolve(conversation=conversation, actor=agent)
    _resolved_minutes_ago(conversation, 61)

    fresh = receive("Outro problema").conversation

    assert fresh.pk != conversation.pk
    assert fresh.protocol != conversation.protocol
    assert (fresh.state, fresh.assignee, fresh.unread_count) == (State.QUEUED, None, 1)
    conversation.refresh_from_db()
    assert conversation.state == State.RESOLVED


def test_the_same_customer_in_another_inbox_has_another_conversation(
    receive: Receive, conversation: Conversation
) -> None:
    other = Inbox.objects.create(name="WhatsApp Vendas", address="+5511400099999")

    elsewhere = receive("Quero contratar", inbox=other).conversation

    assert elsewhere.pk != conversation.pk
    assert elsewhere.contact_id == conversation.contact_id


# --- at the same time (real PostgreSQL) ------------------------------------------------


def _in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    """Run ``work(i)`` for i in range(count) at once, each on its own connection."""
    barrier = threading.Barrier(count)

    def run(index: int) -> object:
        try:
            barrier.wait(timeout=10)
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_five_messages_of_a_new_customer_at_once(inbox: Inbox) -> None:
    def deliver(index: int) -> object:
        return message_receive(
            inbox=inbox,
            wa_id="5511977776666",
            profile_name="João",
            text=f"mensagem {index}",
            external_id=f"wamid.BURST{index}",
        )

    results = _in_threads(5, deliver)

    assert all(isinstance(r, Received) and r.created for r in results)
    contact = Contact.objects.get()
    conversation = Conversation.objects.get()
    assert conversation.contact == contact
    assert conversation.unread_count == 5
    assert sorted(Message.objects.values_list("text", flat=True)) == [
        f"mensagem {i}" for i in range(5)
    ]
    assert set(Message.objects.values_list("conversation_id", flat=True)) == {conversation.pk}


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_message_delivered_ten_times_at_once_is_stored_once(inbox: Inbox) -> None:
    def deliver(_index: int) -> object:
        return message_receive(
            inbox=inbox, wa_id="5511977776666", text="Oi", external_id="wamid.SAME"
        )

    results = _in_threads(10, deliver)

    message = Message.objects.get()
    assert message.external_id == "wamid.SAME"
    assert all(isinstance(r, Received) and r.message.pk == message.pk for r in results)
    assert sum(1 for r in results if isinstance(r, Received) and r.created) == 1
    assert Contact.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1

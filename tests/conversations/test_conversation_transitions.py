"""Assign, transfer, pending, resolve, reopen, handoff, automatic assignment and
the release of a deactivated agent's conversations: legal moves change the
row, illegal ones are refused with ``invalid_transition`` and change nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone, translation

from accounts.models import Team, User
from accounts.services import user_deactivate, user_update
from conversations import channels
from conversations.models import Conversation, Message, Note, TeamQueue
from conversations.selectors import conversations_visible_to
from conversations.services import (
    conversation_assign,
    conversation_handoff,
    conversation_reopen,
    conversation_resolve,
    conversation_set_pending,
    conversation_transfer,
    message_send,
)
from ispsupport.errors import ServiceError
from tests.ispsupport.sample_tasks import echo

State = Conversation.State
Receive = Callable[..., Message]


@pytest.fixture(autouse=True)
def _english() -> Iterator[None]:
    with translation.override("en"):
        yield


def online(*users: User) -> None:
    for user in users:
        user_update(user=user, actor=None, availability=User.Availability.ONLINE)


def refused(conversation: Conversation, call: Callable[[], object], message: str) -> None:
    """``call`` is refused as an invalid transition and the row stays as it was."""
    before = Conversation.objects.values().get(pk=conversation.pk)
    with pytest.raises(ServiceError) as exc:
        call()
    assert exc.value.code == "invalid_transition"
    assert exc.value.message == message
    assert exc.value.status == 409
    assert Conversation.objects.values().get(pk=conversation.pk) == before


# --- assign ---------------------------------------------------------------------------


def test_agent_takes_an_unassigned_conversation(agent: User, conversation: Conversation) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, agent)


def test_agent_cannot_assign_someone_else(
    agent: User, teammate: User, conversation: Conversation
) -> None:
    with pytest.raises(PermissionDenied) as exc:
        conversation_assign(conversation=conversation, agent=teammate, actor=agent)

    assert str(exc.value) == "Only supervisors assign conversations to someone else."
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


def test_agent_cannot_take_a_conversation_a_teammate_holds(
    agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=teammate, actor=teammate)

    with pytest.raises(ServiceError) as exc:
        conversation_assign(conversation=conversation, agent=agent, actor=agent)

    assert exc.value.code == "already_assigned"
    assert exc.value.message == "Carla has already taken this conversation."
    conversation.refresh_from_db()
    assert conversation.assignee == teammate


def test_supervisor_assigns_a_teammate(
    supervisor: User, agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=supervisor)
    conversation_assign(conversation=conversation, agent=teammate, actor=supervisor)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, teammate)


def test_supervisor_cannot_assign_someone_outside_the_team(
    supervisor: User, outsider: User, conversation: Conversation
) -> None:
    with pytest.raises(ValidationError) as exc:
        conversation_assign(conversation=conversation, agent=outsider, actor=supervisor)

    assert exc.value.message_dict == {"agent": ["Diego is not in this conversation's team."]}
    conversation.refresh_from_db()
    assert conversation.assignee is None


def test_nobody_assigns_a_deactivated_user(
    supervisor: User, teammate: User, conversation: Conversation
) -> None:
    teammate.is_active = False
    teammate.save(update_fields=["is_active"])

    with pytest.raises(ValidationError) as exc:
        conversation_assign(conversation=conversation, agent=teammate, actor=supervisor)

    assert exc.value.message_dict == {"agent": ["This user is deactivated."]}


def test_a_resolved_conversation_cannot_be_assigned(
    supervisor: User, agent: User, conversation: Conversation
) -> None:
    conversation_resolve(conversation=conversation, actor=supervisor)

    refused(
        conversation,
        lambda: conversation_assign(conversation=conversation, agent=agent, actor=supervisor),
        "A conversation that is resolved cannot be assigned.",
    )


# --- transfer -------------------------------------------------------------------------


def test_transfer_to_another_team_queues_it_there_with_a_note(
    agent: User, outsider: User, finance: Team, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    conversation_transfer(
        conversation=conversation, actor=agent, team=finance, note="Quer segunda via do boleto"
    )

    conversation.refresh_from_db()
    assert (conversation.state, conversation.team, conversation.assignee) == (
        State.QUEUED,
        finance,
        None,
    )
    assert conversation.unread_count == 0
    [note] = Note.objects.filter(conversation=conversation)
    assert (note.author, note.text) == (agent, "Quer segunda via do boleto")
    assert conversations_visible_to(outsider).filter(pk=conversation.pk).exists()
    assert not conversations_visible_to(agent).filter(pk=conversation.pk).exists()


def test_transfer_to_an_agent_of_another_team_moves_the_team_too(
    agent: User, outsider: User, finance: Team, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    conversation_transfer(conversation=conversation, actor=agent, agent=outsider)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.team, conversation.assignee) == (
        State.OPEN,
        finance,
        outsider,
    )
    assert not Note.objects.filter(conversation=conversation).exists()


def test_transfer_needs_a_team_or_an_agent(agent: User, conversation: Conversation) -> None:
    with pytest.raises(ValidationError) as exc:
        conversation_transfer(conversation=conversation, actor=agent)

    assert exc.value.message_dict == {"team": ["Choose a team or an agent."]}


def test_only_the_assignee_or_a_supervisor_transfers(
    agent: User, teammate: User, supervisor: User, finance: Team, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    with pytest.raises(PermissionDenied) as exc:
        conversation_transfer(conversation=conversation, actor=teammate, team=finance)

    assert str(exc.value) == (
        "This conversation is assigned to Bruno; ask them or a supervisor to transfer it."
    )
    conversation.refresh_from_db()
    assert (conversation.team.name, conversation.assignee) == ("Suporte técnico", agent)

    conversation_transfer(conversation=conversation, actor=supervisor, team=finance)
    conversation.refresh_from_db()
    assert (conversation.team, conversation.assignee) == (finance, None)


def test_a_resolved_conversation_cannot_be_transferred(
    agent: User, finance: Team, conversation: Conversation
) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    refused(
        conversation,
        lambda: conversation_transfer(conversation=conversation, actor=agent, team=finance),
        "A conversation that is resolved cannot be transferred.",
    )


# --- pending --------------------------------------------------------------------------


def test_pending_then_the_customer_answers_and_it_is_open_again(
    agent: User, conversation: Conversation, receive: Receive
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_set_pending(conversation=conversation, actor=agent)
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.PENDING, agent)

    receive("Pronto, reiniciei o roteador")

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, agent)
    assert conversation.unread_count == 2


def test_only_an_open_conversation_can_wait_on_the_customer(
    agent: User, conversation: Conversation
) -> None:
    refused(
        conversation,
        lambda: conversation_set_pending(conversation=conversation, actor=agent),
        "Only an open conversation can wait on the customer.",
    )


# --- resolve and reopen ---------------------------------------------------------------


def test_resolve_records_who_and_when(agent: User, conversation: Conversation) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    before = timezone.now()

    conversation_resolve(conversation=conversation, actor=agent)

    conversation.refresh_from_db()
    assert conversation.state == State.RESOLVED
    assert conversation.resolved_by == agent
    assert before <= conversation.resolved_at <= timezone.now()
    assert conversation.unread_count == 0


def test_resolving_twice_is_refused(agent: User, conversation: Conversation) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    refused(
        conversation,
        lambda: conversation_resolve(conversation=conversation, actor=agent),
        "A conversation that is resolved cannot be resolved.",
    )


def test_the_bot_resolves_without_an_actor(conversation: Conversation) -> None:
    conversation_resolve(conversation=conversation, actor=None)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.resolved_by) == (State.RESOLVED, None)


def test_a_teammate_cannot_resolve_the_agents_conversation(
    agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    with pytest.raises(PermissionDenied):
        conversation_resolve(conversation=conversation, actor=teammate)

    conversation.refresh_from_db()
    assert conversation.state == State.OPEN


def test_agent_reopens_a_resolved_conversation(agent: User, conversation: Conversation) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    conversation_reopen(conversation=conversation, actor=agent)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, agent)
    assert (conversation.resolved_at, conversation.resolved_by) == (None, None)


def test_reopen_of_a_conversation_that_is_not_resolved_is_refused(
    agent: User, conversation: Conversation
) -> None:
    refused(
        conversation,
        lambda: conversation_reopen(conversation=conversation, actor=agent),
        "This conversation is not resolved.",
    )


def test_reopen_is_refused_while_the_customer_has_another_conversation(
    agent: User, conversation: Conversation, receive: Receive, settings: object
) -> None:
    settings.CONVERSATION_REOPEN_MINUTES = 0  # type: ignore[attr-defined]
    conversation_resolve(conversation=conversation, actor=agent)
    newer = receive("Caiu de novo").conversation
    assert newer.pk != conversation.pk

    with pytest.raises(ServiceError) as exc:
        conversation_reopen(conversation=conversation, actor=agent)

    assert exc.value.code == "already_open"
    assert exc.value.message == (
        f"The customer already has an open conversation (protocol {newer.protocol})."
    )
    conversation.refresh_from_db()
    assert conversation.state == State.RESOLVED


# --- handoff --------------------------------------------------------------------------


@pytest.fixture
def bot_conversation(receive: Receive) -> Conversation:
    channels.register_bot(echo)
    conversation = receive("Oi").conversation
    assert conversation.state == State.BOT
    return conversation


def test_handoff_queues_the_bot_conversation_in_the_team(
    bot_conversation: Conversation, support: Team
) -> None:
    assert bot_conversation.queued_at is None
    assert bot_conversation.first_response_due_at is None

    conversation_handoff(conversation=bot_conversation, reason="cliente pediu atendente")

    bot_conversation.refresh_from_db()
    assert (bot_conversation.state, bot_conversation.team, bot_conversation.assignee) == (
        State.QUEUED,
        support,
        None,
    )
    assert bot_conversation.queued_at is not None
    assert bot_conversation.first_response_due_at is not None
    assert bot_conversation.resolution_due_at is not None


def test_handoff_to_a_chosen_team(bot_conversation: Conversation, finance: Team) -> None:
    conversation_handoff(conversation=bot_conversation, team=finance)

    bot_conversation.refresh_from_db()
    assert (bot_conversation.state, bot_conversation.team) == (State.QUEUED, finance)


def test_handoff_does_not_take_a_conversation_away_from_an_agent(
    agent: User, bot_conversation: Conversation
) -> None:
    # The agent answered while the bot was still working on the last message.
    message_send(conversation=bot_conversation, actor=agent, text="Oi, sou o Bruno")

    refused(
        bot_conversation,
        lambda: conversation_handoff(conversation=bot_conversation),
        "A conversation that is open cannot be handed off.",
    )


def test_a_resolved_conversation_cannot_be_handed_off(bot_conversation: Conversation) -> None:
    conversation_resolve(conversation=bot_conversation, actor=None)

    refused(
        bot_conversation,
        lambda: conversation_handoff(conversation=bot_conversation),
        "A conversation that is resolved cannot be handed off.",
    )


# --- automatic assignment -------------------------------------------------------------


@pytest.fixture
def auto_queue(support: Team) -> TeamQueue:
    return TeamQueue.objects.create(team=support, auto_assign=True, max_active_per_agent=1)


def test_auto_assignment_gives_the_least_busy_online_agent_up_to_the_maximum(
    auto_queue: TeamQueue, agent: User, teammate: User, outsider: User, receive: Receive
) -> None:
    online(agent, teammate, outsider)

    first = receive(wa_id="5511911110001").conversation
    second = receive(wa_id="5511911110002").conversation
    third = receive(wa_id="5511911110003").conversation

    # Equal load: the one online longest goes first.
    assert (first.state, first.assignee) == (State.OPEN, agent)
    assert (second.state, second.assignee) == (State.OPEN, teammate)
    # Both at their maximum of one: it waits in the queue.
    assert (third.state, third.assignee) == (State.QUEUED, None)


def test_auto_assignment_skips_agents_who_are_not_online(
    auto_queue: TeamQueue, agent: User, teammate: User, receive: Receive
) -> None:
    online(teammate)
    user_update(user=agent, actor=None, availability=User.Availability.AWAY)

    conversation = receive().conversation

    assert conversation.assignee == teammate


def test_without_auto_assignment_conversations_wait_in_the_queue(
    agent: User, receive: Receive
) -> None:
    online(agent)

    conversation = receive().conversation

    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


def test_pending_conversations_do_not_count_against_the_maximum(
    auto_queue: TeamQueue, agent: User, receive: Receive
) -> None:
    online(agent)
    first = receive(wa_id="5511911110001").conversation
    assert first.assignee == agent
    assert receive(wa_id="5511911110002").conversation.assignee is None

    conversation_set_pending(conversation=first, actor=agent)
    third = receive(wa_id="5511911110003").conversation

    assert (third.state, third.assignee) == (State.OPEN, agent)


# --- release on deactivation ----------------------------------------------------------


def test_deactivating_an_agent_puts_their_conversations_back_in_the_queue(
    agent: User,
    supervisor: User,
    support: Team,
    receive: Receive,
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    open_one = receive(wa_id="5511911110001").conversation
    pending_one = receive(wa_id="5511911110002").conversation
    resolved_one = receive(wa_id="5511911110003").conversation
    for conversation in (open_one, pending_one, resolved_one):
        conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_set_pending(conversation=pending_one, actor=agent)
    conversation_resolve(conversation=resolved_one, actor=agent)
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        user_deactivate(user=agent, actor=supervisor)

    for conversation in (open_one, pending_one):
        conversation.refresh_from_db()
        assert (conversation.state, conversation.team, conversation.assignee) == (
            State.QUEUED,
            support,
            None,
        )
        assert conversation.queued_at >= before
    resolved_one.refresh_from_db()
    assert (resolved_one.state, resolved_one.assignee) == (State.RESOLVED, agent)


def test_released_conversations_go_to_an_online_teammate_when_auto_assigning(
    auto_queue: TeamQueue,
    agent: User,
    teammate: User,
    supervisor: User,
    conversation: Conversation,
    django_capture_on_commit_callbacks: Callable[..., object],
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    online(teammate)

    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        user_deactivate(user=agent, actor=supervisor)

    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, teammate)


def test_customer_reopening_after_the_agent_left_goes_to_the_queue(
    agent: User, supervisor: User, conversation: Conversation, receive: Receive
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)
    conversation_resolve(conversation=conversation, actor=agent)
    agent.is_active = False
    agent.save(update_fields=["is_active"])
    Conversation.objects.filter(pk=conversation.pk).update(
        resolved_at=timezone.now() - timedelta(minutes=5)
    )

    again = receive("Voltou a cair").conversation

    assert again.pk == conversation.pk
    assert (again.state, again.assignee) == (State.QUEUED, None)

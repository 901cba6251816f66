"""The conversation and message-status state machines under random event sequences.

A Hypothesis ``RuleBasedStateMachine`` drives the REAL services of
``conversations.services`` (and ``accounts.services`` for an agent who leaves)
on the test database, in any order, with any staff member as the actor:
customers write, the bot hands off, agents assign, take the next, transfer, set
to wait, resolve, reopen and send; statuses arrive in any order.

After every step:
- every conversation's state is one of the five, consistent with its fields
  (open/pending: someone owns it; queued/bot: nobody does; resolved: resolved_at),
  and a customer has at most one unresolved conversation per inbox;
- every outbound message's status only moved forward (pending < sent <
  delivered < read; failed is terminal) and its timestamps match it;
- a refused action raised the service's own error (ServiceError,
  ValidationError, PermissionDenied) and changed nothing; a transition the rules
  forbid (assigning a resolved conversation...) was refused.

Each example starts from the same database: it runs in a savepoint that is
rolled back at its end (pytest-django keeps the whole test in a transaction,
and Hypothesis runs many examples inside one test). ``on_commit`` callbacks
(live events, signals, metrics) run at the end of each step, as after a real
commit: pytest-django's transaction would otherwise never commit.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from itertools import count
from typing import Any

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.test import TestCase, override_settings
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Team, User
from accounts.services import user_activate, user_deactivate
from conversations import channels
from conversations.models import Conversation, Inbox, Message, TeamQueue
from conversations.services import (
    conversation_assign,
    conversation_handoff,
    conversation_reopen,
    conversation_request_rating,
    conversation_resolve,
    conversation_set_pending,
    conversation_take_next,
    conversation_transfer,
    message_apply_status,
    message_receive,
    message_send,
)
from ispsupport.errors import ServiceError
from tests.conversations.conftest import _no_channel_registrations  # noqa: F401 - autouse
from tests.ispsupport.sample_tasks import echo
from tests.property import scaled

State = Conversation.State
Status = Message.Status

# What a service may raise when it refuses: anything else is a bug.
REFUSALS = (ServiceError, ValidationError, PermissionDenied)

# A status the webhook never passes on (it filters on whatsapp.payloads.STATUS_VALUES):
# message_apply_status refuses these with ValueError, a caller's mistake.
NOT_A_DELIVERY_STATUS = ["pending", "received", "deleted"]
DELIVERY_STATUSES = ["sent", "delivered", "read", "failed"]
_RANK = {Status.PENDING: 0, Status.SENT: 1, Status.DELIVERED: 2, Status.READ: 3}
_TIMESTAMP = {
    Status.SENT: "sent_at",
    Status.DELIVERED: "delivered_at",
    Status.READ: "read_at",
    Status.FAILED: "failed_at",
}

# Two customers: enough for two conversations at once, few enough that a
# customer often comes back to a conversation the staff just changed.
CUSTOMERS = ["5511988887777", "5521977776666"]
TEXTS = ["Minha internet caiu", "5", "Oi", "  "]
STAFF = ["ana", "bia", "caio", "sup", "adm"]


@dataclass(frozen=True)
class Row:
    state: str
    assignee_id: int | None
    team_id: int | None
    resolved_at: datetime | None
    queued_at: datetime | None


def _conversations() -> dict[int, Row]:
    return {
        pk: Row(*fields)
        for pk, *fields in Conversation.objects.values_list(
            "pk", "state", "assignee_id", "team_id", "resolved_at", "queued_at"
        )
    }


def _statuses() -> dict[int, str]:
    return dict(Message.objects.values_list("pk", "status"))


class ConversationMachine(RuleBasedStateMachine):
    conversations = Bundle("conversations")

    def __init__(self) -> None:
        super().__init__()
        # Rolled back in teardown(): the next example starts from the same rows.
        self._savepoint = transaction.atomic()
        self._savepoint.__enter__()
        self._settings: override_settings | None = None
        self._ids = count(1)
        self.support = Team.objects.create(name="Suporte técnico")
        self.finance = Team.objects.create(name="Financeiro")
        self.queue = TeamQueue.objects.create(team=self.support)
        self.inbox = Inbox.objects.create(name="WhatsApp", default_team=self.support)
        roles = {
            "ana": (User.Role.AGENT, [self.support]),
            "bia": (User.Role.AGENT, [self.support]),
            "caio": (User.Role.AGENT, [self.finance]),
            "sup": (User.Role.SUPERVISOR, [self.support]),
            "adm": (User.Role.ADMIN, []),
        }
        self.staff: dict[str, User] = {}
        for username, (role, teams) in roles.items():
            # No password: hashing one costs a quarter of a second per user.
            user = User.objects.create_user(
                username=username, password=None, role=role, availability="online"
            )
            user.teams.set(teams)
            self.staff[username] = user
        # Last status seen per outbound message, to check it only moves forward.
        self.seen: dict[int, str] = {}
        self.delivered_ids: list[str] = []

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self._savepoint.__exit__(None, None, None)
        if self._settings is not None:
            self._settings.disable()
        channels.unregister_all()

    # --- The world of this example ------------------------------------------------

    @initialize(
        target=conversations,
        bot=st.booleans(),
        greeting=st.booleans(),
        reopen_minutes=st.sampled_from([0, 120]),
        auto_assign=st.booleans(),
        max_active=st.integers(1, 3),
    )
    def start(
        self, bot: bool, greeting: bool, reopen_minutes: int, auto_assign: bool, max_active: int
    ) -> Any:
        """The world of this example, then its first customer: every example starts
        with a conversation, so the rules about one apply from the first step."""
        self._settings = override_settings(
            CONVERSATION_GREETING=greeting, CONVERSATION_REOPEN_MINUTES=reopen_minutes
        )
        self._settings.enable()
        channels.unregister_all()
        # Tasks are only enqueued (a row in the task table), never run here.
        channels.register_sender("whatsapp", echo)
        if bot:
            channels.register_bot(echo)
        self.queue.auto_assign = auto_assign
        self.queue.max_active_per_agent = max_active
        self.queue.save()
        return self.customer_writes(customer=CUSTOMERS[0], text=TEXTS[0])

    # --- Helpers --------------------------------------------------------------------

    def _user(self, name: str) -> User:
        return User.objects.get(pk=self.staff[name].pk)

    def _act(self, action: Callable[[], Any]) -> tuple[Any, Exception | None]:
        """Run ``action`` as one committed step; a refusal must change nothing."""
        before = (_conversations(), _statuses())
        with TestCase.captureOnCommitCallbacks(execute=True):
            try:
                result = action()
            except REFUSALS as exc:
                refused: Exception | None = exc
                result = None
            else:
                refused = None
        if refused is not None:
            assert (_conversations(), _statuses()) == before, f"refused but changed: {refused!r}"
        return result, refused

    def _row(self, pk: int) -> Row:
        return _conversations()[pk]

    def _conversation(self, pk: int) -> Conversation:
        return Conversation.objects.get(pk=pk)

    @staticmethod
    def _outbound() -> list[int]:
        # Every outbound message: the ones sent below, greetings and bot texts.
        return list(
            Message.objects.filter(direction=Message.Direction.OUT)
            .order_by("pk")
            .values_list("pk", flat=True)
        )

    # --- Customers --------------------------------------------------------------------

    @rule(target=conversations, customer=st.sampled_from(CUSTOMERS), text=st.sampled_from(TEXTS))
    def customer_writes(self, customer: str, text: str) -> Any:
        external_id = f"wamid.SM{next(self._ids):05d}"
        received, refused = self._act(
            lambda: message_receive(
                inbox=self.inbox,
                wa_id=customer,
                profile_name="Maria",
                text=text,
                external_id=external_id,
            )
        )
        assert refused is None, refused
        assert received.created
        self.delivered_ids.append(external_id)
        return received.message.conversation_id

    @precondition(lambda self: self.delivered_ids)
    @rule(data=st.data())
    def meta_redelivers(self, data: st.DataObject) -> None:
        external_id = data.draw(st.sampled_from(self.delivered_ids))
        before = _conversations()
        received, refused = self._act(
            lambda: message_receive(
                inbox=self.inbox, wa_id=CUSTOMERS[0], text="again", external_id=external_id
            )
        )
        assert refused is None and not received.created
        assert _conversations() == before

    # --- The bot and the people --------------------------------------------------------

    @rule(conversation=conversations, team=st.sampled_from([None, "support", "finance"]))
    def bot_hands_off(self, conversation: Any, team: str | None) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        target = {"support": self.support, "finance": self.finance}.get(team or "")
        _result, refused = self._act(
            lambda: conversation_handoff(conversation=self._conversation(pk), team=target)
        )
        if before.state != State.BOT:
            assert isinstance(refused, ServiceError), "only the bot's conversation is handed off"
            return
        assert refused is None, refused
        after = self._row(pk)
        assert after.state in (State.QUEUED, State.OPEN)
        assert after.team_id == (target.pk if target else before.team_id)

    @rule(
        conversation=conversations,
        agent=st.sampled_from(STAFF),
        actor=st.sampled_from(STAFF),
    )
    def someone_assigns(self, conversation: Any, agent: str, actor: str) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        who, by = self._user(agent), self._user(actor)
        if not by.is_active:
            return  # the API never lets a deactivated user act
        _result, refused = self._act(
            lambda: conversation_assign(conversation=self._conversation(pk), agent=who, actor=by)
        )
        # Several reasons may hold at once; which one the service names first is its choice.
        if before.state == State.RESOLVED:
            assert refused is not None, "a resolved conversation was assigned"
        if not by.is_supervisor and who.pk != by.pk:
            assert refused is not None, "an agent assigned someone else"
        if not who.is_active:
            assert refused is not None, "a deactivated user got a conversation"
        if refused is None:
            after = self._row(pk)
            assert (after.state, after.assignee_id) == (State.OPEN, who.pk)

    @rule(agent=st.sampled_from(STAFF))
    def agent_takes_next(self, agent: str) -> None:
        who = self._user(agent)
        if not who.is_active:
            return
        before = _conversations()
        teams = set(who.teams.values_list("pk", flat=True))

        def takeable(row: Row) -> bool:
            mine = row.team_id in teams or (who.is_admin and row.team_id is None)
            return mine and row.state == State.QUEUED and row.assignee_id is None

        taken, refused = self._act(lambda: conversation_take_next(agent=who))
        assert refused is None, refused
        if taken is None:
            assert not any(takeable(row) for row in before.values()), "a queue was skipped"
            return
        assert takeable(before[taken.pk]), "took a conversation that was not in its queues"
        oldest = min(
            (row.queued_at, pk) for pk, row in before.items() if takeable(row) and row.queued_at
        )
        assert taken.pk == oldest[1], "did not take the oldest"
        after = self._row(taken.pk)
        assert (after.state, after.assignee_id) == (State.OPEN, who.pk)

    @rule(
        conversation=conversations,
        actor=st.sampled_from(STAFF),
        team=st.sampled_from([None, "support", "finance"]),
        agent=st.sampled_from([None, *STAFF]),
    )
    def someone_transfers(
        self, conversation: Any, actor: str, team: str | None, agent: str | None
    ) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        by = self._user(actor)
        if not by.is_active:
            return
        target = {"support": self.support, "finance": self.finance}.get(team or "")
        who = self._user(agent) if agent else None
        _result, refused = self._act(
            lambda: conversation_transfer(
                conversation=self._conversation(pk), actor=by, team=target, agent=who, note="x"
            )
        )
        if target is None and who is None:
            assert refused is not None, "transferred to nowhere"
        if before.state == State.RESOLVED:
            assert refused is not None, "a resolved conversation was transferred"
        if refused is None:
            after = self._row(pk)
            if who is not None:
                assert (after.state, after.assignee_id) == (State.OPEN, who.pk)
            else:
                assert after.team_id == target.pk
                assert after.state in (State.QUEUED, State.OPEN)

    @rule(conversation=conversations, actor=st.sampled_from(STAFF))
    def agent_waits_on_customer(self, conversation: Any, actor: str) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        by = self._user(actor)
        if not by.is_active:
            return
        _result, refused = self._act(
            lambda: conversation_set_pending(conversation=self._conversation(pk), actor=by)
        )
        if before.state != State.OPEN:
            assert refused is not None, "only an open conversation waits"
        if refused is None:
            assert self._row(pk).state == State.PENDING

    @rule(conversation=conversations, actor=st.sampled_from([None, *STAFF]))
    def someone_resolves(self, conversation: Any, actor: str | None) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        by = self._user(actor) if actor else None
        if by is not None and not by.is_active:
            return
        _result, refused = self._act(
            lambda: conversation_resolve(conversation=self._conversation(pk), actor=by)
        )
        if before.state == State.RESOLVED:
            assert refused is not None, "resolved twice"
        if refused is None:
            after = self._row(pk)
            assert after.state == State.RESOLVED and after.resolved_at is not None

    @rule(conversation=conversations, actor=st.sampled_from(STAFF))
    def someone_reopens(self, conversation: Any, actor: str) -> None:
        pk = self._pk(conversation)
        before = _conversations()
        by = self._user(actor)
        if not by.is_active:
            return
        _result, refused = self._act(
            lambda: conversation_reopen(conversation=self._conversation(pk), actor=by)
        )
        if before[pk].state != State.RESOLVED:
            assert refused is not None, "reopened a conversation that was not resolved"
        if refused is None:
            after = self._row(pk)
            assert (after.state, after.assignee_id, after.resolved_at) == (State.OPEN, by.pk, None)

    @rule(conversation=conversations)
    def bot_asks_for_rating(self, conversation: Any) -> None:
        pk = self._pk(conversation)
        if self._row(pk).state == State.RESOLVED:
            _result, refused = self._act(
                lambda: conversation_request_rating(conversation=self._conversation(pk))
            )
            assert refused is None, refused

    @rule(agent=st.sampled_from(["ana", "bia", "caio", "sup"]))
    def admin_deactivates_or_activates(self, agent: str) -> None:
        who, admin = self._user(agent), self._user("adm")
        if not who.is_active:
            _result, refused = self._act(lambda: user_activate(user=who, actor=admin))
            assert refused is None, refused
            return
        _result, refused = self._act(lambda: user_deactivate(user=who, actor=admin))
        assert refused is None, refused
        # The on_commit signal released their conversations back to the queues.
        assert not Conversation.objects.filter(
            assignee=who, state__in=[State.OPEN, State.PENDING]
        ).exists()

    # --- Messages out and their statuses -----------------------------------------------

    @rule(
        conversation=conversations,
        actor=st.sampled_from([None, *STAFF]),
        kind=st.sampled_from([Message.Kind.TEXT, Message.Kind.TEMPLATE]),
        text=st.sampled_from(["Olá!", "", "   "]),
    )
    def someone_sends(self, conversation: Any, actor: str | None, kind: str, text: str) -> None:
        pk = self._pk(conversation)
        before = self._row(pk)
        by = self._user(actor) if actor else None
        if by is not None and not by.is_active:
            return
        sent, refused = self._act(
            lambda: message_send(
                conversation=self._conversation(pk), text=text, kind=kind, actor=by
            )
        )
        if before.state == State.RESOLVED:
            assert refused is not None, "wrote to a resolved conversation"
        if kind == Message.Kind.TEXT and not text.strip():
            assert refused is not None, "sent an empty text"
        if refused is not None:
            return
        message = sent.message
        assert (message.direction, message.status) == (Message.Direction.OUT, Status.PENDING)
        after = self._row(pk)
        if by is not None and before.state in (State.BOT, State.QUEUED):
            assert (after.state, after.assignee_id) == (State.OPEN, by.pk)

    @precondition(lambda self: self._outbound())
    @rule(
        data=st.data(),
        status=st.sampled_from(DELIVERY_STATUSES + NOT_A_DELIVERY_STATUS),
        by_external_id=st.booleans(),
    )
    def meta_reports_status(self, data: st.DataObject, status: str, by_external_id: bool) -> None:
        pk = data.draw(st.sampled_from(self._outbound()), label="message")
        row = Message.objects.get(pk=pk)
        if by_external_id and row.external_id is None:
            # The send task stores Meta's id; give it one as the task would.
            Message.objects.filter(pk=pk).update(external_id=f"wamid.OUT{pk}")
        before = Message.objects.get(pk=pk).status
        lookup: dict[str, Any] = (
            {"external_id": f"wamid.OUT{pk}"} if by_external_id else {"message": row}
        )
        if status in NOT_A_DELIVERY_STATUS:
            with pytest.raises(ValueError):
                message_apply_status(status=status, **lookup)
            assert Message.objects.get(pk=pk).status == before
            return
        changed, refused = self._act(
            lambda: message_apply_status(status=status, error_code="131047", **lookup)
        )
        assert refused is None, refused
        after = Message.objects.get(pk=pk).status
        assert changed == (after != before)
        if before in (Status.FAILED, Status.READ):
            assert not changed and after == before, f"{before} is terminal, became {after}"
        elif status == Status.FAILED:
            assert after == Status.FAILED
        else:
            assert after == (status if _RANK[status] > _RANK[before] else before)

    # --- Invariants ----------------------------------------------------------------------

    @invariant()
    def conversations_are_consistent(self) -> None:
        active: set[tuple[int, int]] = set()
        for conversation in Conversation.objects.all():
            state, assignee = conversation.state, conversation.assignee_id
            where = f"conversation {conversation.pk} ({state})"
            assert state in State.values, where
            if state in (State.OPEN, State.PENDING):
                assert assignee is not None, f"{where} has nobody on it"
            if state == State.QUEUED:
                assert assignee is None, f"{where} is queued but assigned"
                assert conversation.queued_at is not None, f"{where} has no queued_at"
            if state == State.BOT:
                assert assignee is None, f"{where} is with the bot but assigned"
            if state == State.RESOLVED:
                assert conversation.resolved_at is not None, f"{where} has no resolved_at"
            else:
                assert conversation.resolved_at is None, f"{where} keeps a resolved_at"
                key = (conversation.contact_id, conversation.inbox_id)
                assert key not in active, f"{where}: a second active conversation"
                active.add(key)

    @invariant()
    def statuses_only_move_forward(self) -> None:
        for message in Message.objects.all():
            where = f"message {message.pk} ({message.status})"
            if message.direction == Message.Direction.IN:
                assert message.status == Status.RECEIVED, where
                continue
            status = message.status
            assert status in _TIMESTAMP or status == Status.PENDING, where
            previous = self.seen.get(message.pk, Status.PENDING)
            if previous == Status.FAILED or previous == Status.READ:
                assert status == previous, f"{where} left the terminal {previous}"
            elif status != Status.FAILED:
                assert _RANK[status] >= _RANK[previous], f"{where} went back from {previous}"
            self.seen[message.pk] = status
            if status in _RANK:
                for step, rank in _RANK.items():
                    if 0 < rank <= _RANK[status]:
                        assert getattr(message, _TIMESTAMP[step]) is not None, where
            if status == Status.FAILED:
                assert message.failed_at is not None and message.error_code, where

    # --- Bundle values ---------------------------------------------------------------------

    @staticmethod
    def _pk(conversation: Any) -> int:
        return int(conversation)


# Each example builds ~10 rows and runs up to 25 steps of a few queries each:
# 30 examples take ~15 s on SQLite. HYPOTHESIS_PROFILE=deep runs 300.
MACHINE_SETTINGS = settings(
    max_examples=scaled(30),
    stateful_step_count=25,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


@pytest.mark.django_db
def test_conversations_and_statuses_never_reach_an_illegal_state() -> None:
    run_state_machine_as_test(ConversationMachine, settings=MACHINE_SETTINGS)


@pytest.mark.django_db
def test_back_with_the_bot_after_its_agent_left(
    settings: Any,
) -> None:
    settings.CONVERSATION_REOPEN_MINUTES = 120
    channels.register_bot(echo)
    support = Team.objects.create(name="Suporte técnico")
    inbox = Inbox.objects.create(name="WhatsApp", default_team=support)
    agent = User.objects.create_user(username="ana", password=None)
    agent.teams.set([support])
    supervisor = User.objects.create_user(username="sup", password=None, role=User.Role.SUPERVISOR)
    first = message_receive(inbox=inbox, wa_id=CUSTOMERS[0], text="Oi", external_id="wamid.A")
    conversation = first.message.conversation
    assert conversation.state == State.BOT
    # The agent answers straight from the bot (never queued), resolves, and leaves.
    conversation_assign(conversation=conversation, agent=agent, actor=supervisor)
    conversation_resolve(conversation=conversation, actor=agent)
    with TestCase.captureOnCommitCallbacks(execute=True):
        user_deactivate(user=agent, actor=supervisor)

    again = message_receive(inbox=inbox, wa_id=CUSTOMERS[0], text="Oi", external_id="wamid.B")

    conversation = Conversation.objects.get(pk=again.message.conversation_id)
    assert conversation.state == State.BOT
    assert conversation.assignee_id is None

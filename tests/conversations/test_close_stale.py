"""manage.py close_stale_conversations: conversations nobody wrote in for a
while are resolved by the system, with a note and without a rating question."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations import signals
from conversations.models import Conversation, Message, Note
from conversations.services import (
    STALE_SKIPPED,
    conversation_assign,
    conversation_close_stale,
    conversation_resolve,
)

Receive = Callable[..., Message]
State = Conversation.State


@pytest.fixture(autouse=True)
def _english(settings: Any) -> None:
    """The internal note is written in the deployment's language; these tests read English."""
    settings.LANGUAGE_CODE = "en"


@pytest.fixture
def resolved_signals() -> Iterator[list[int]]:
    """Conversations announced as resolved (what makes the bot ask for a rating)."""
    seen: list[int] = []

    def record(*, conversation_id: int, **_kwargs: object) -> None:
        seen.append(conversation_id)

    signals.conversation_resolved.connect(record, dispatch_uid="test-close-stale")
    yield seen
    signals.conversation_resolved.disconnect(dispatch_uid="test-close-stale")


def aged(conversation: Conversation, *, hours: float, inbound_hours: float | None = None) -> None:
    """The conversation's last message (and the customer's last one) ``hours`` ago."""
    now = timezone.now()
    inbound = hours if inbound_hours is None else inbound_hours
    Conversation.objects.filter(pk=conversation.pk).update(
        last_message_at=now - timedelta(hours=hours),
        last_inbound_at=now - timedelta(hours=inbound),
    )
    conversation.refresh_from_db()


@pytest.fixture
def stale(receive: Receive, agent: User) -> dict[str, Conversation]:
    """Two stale conversations (queued 50 h, open with Bruno 72 h), a lively
    one (1 h) and one resolved long ago."""
    queued = receive(wa_id="5511988880001").conversation
    aged(queued, hours=50)
    opened = receive(wa_id="5511988880002").conversation
    conversation_assign(conversation=opened, agent=agent, actor=agent)
    aged(opened, hours=72)
    lively = receive(wa_id="5511988880003").conversation
    aged(lively, hours=1)
    done = receive(wa_id="5511988880004").conversation
    conversation_resolve(conversation=done, actor=agent)
    aged(done, hours=100)
    return {"queued": queued, "open": opened, "lively": lively, "done": done}


def close(*args: str) -> str:
    out = StringIO()
    call_command("close_stale_conversations", *args, stdout=out)
    return out.getvalue()


def states(conversations: dict[str, Conversation]) -> dict[str, str]:
    return {
        name: Conversation.objects.get(pk=conversation.pk).state
        for name, conversation in conversations.items()
    }


def test_a_dry_run_lists_the_stale_conversations_and_changes_nothing(
    stale: dict[str, Conversation],
) -> None:
    output = close("--idle", "48h")

    assert output == (
        "Would resolve 2 conversations idle for more than 2d (queued 1, open 1):\n"
        f"  {stale['open'].protocol}  open     idle 3d\n"
        f"  {stale['queued'].protocol}  queued   idle 2d2h\n"
        "Dry run: nothing changed. Add --commit to resolve them.\n"
    )
    assert states(stale) == {
        "queued": State.QUEUED,
        "open": State.OPEN,
        "lively": State.QUEUED,
        "done": State.RESOLVED,
    }
    assert not Note.objects.exists()


def test_commit_resolves_them_with_a_note_and_no_rating_question(
    stale: dict[str, Conversation],
    resolved_signals: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    DBTaskResult.objects.all().delete()
    before = timezone.now()

    with django_capture_on_commit_callbacks(execute=True):
        output = close("--idle", "48h", "--commit")

    assert output == "Resolved 2 conversations idle for more than 2d.\n"
    assert states(stale) == {
        "queued": State.RESOLVED,
        "open": State.RESOLVED,
        "lively": State.QUEUED,
        "done": State.RESOLVED,
    }
    for name, idle in (("queued", "2d2h"), ("open", "3d")):
        conversation = Conversation.objects.get(pk=stale[name].pk)
        assert conversation.resolved_at is not None and conversation.resolved_at >= before
        assert conversation.resolved_by is None
        assert conversation.csat_requested_at is None
        # The open one stays Bruno's: reports still credit his work.
        [note] = Note.objects.filter(conversation=conversation)
        assert note.author is None
        assert note.text == f"Resolved automatically: no message for {idle} (limit 2d)."
    # No message to the customer, no rating question, nothing enqueued.
    assert Message.objects.filter(direction=Message.Direction.OUT).count() == 0
    assert resolved_signals == []
    assert not DBTaskResult.objects.exists()
    # Whereas a person resolving one is announced (and the bot asks for a rating).
    with django_capture_on_commit_callbacks(execute=True):
        conversation_resolve(conversation=stale["lively"], actor=None)
    assert resolved_signals == [stale["lively"].pk]
    assert DBTaskResult.objects.get().task_path == "chatbot.csat.ask_rating"


def test_a_second_run_finds_nothing_left(stale: dict[str, Conversation]) -> None:
    close("--idle", "48h", "--commit")

    assert close("--idle", "48h") == "No conversation has been idle for more than 2d.\n"
    assert close("--idle", "48h", "--commit") == (
        "Resolved 0 conversations idle for more than 2d.\n"
    )
    assert Note.objects.count() == 2


def test_the_bot_conversations_are_closed_too(receive: Receive) -> None:
    conversation = receive().conversation
    Conversation.objects.filter(pk=conversation.pk).update(state=State.BOT, queued_at=None)
    aged(conversation, hours=30)

    assert close("--idle", "1d").startswith(
        "Would resolve 1 conversations idle for more than 1d (bot 1):"
    )
    close("--idle", "1d", "--commit")

    assert Conversation.objects.get(pk=conversation.pk).state == State.RESOLVED


def test_goodbye_goes_only_where_the_24_hour_window_is_open(
    receive: Receive,
    resolved_signals: list[int],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    # Quiet for 13 h: the customer's window (24 h from their last message) is open.
    recent = receive(wa_id="5511988880001").conversation
    aged(recent, hours=13)
    # Quiet for 30 h: WhatsApp no longer allows free text.
    late = receive(wa_id="5511988880002").conversation
    aged(late, hours=30)

    plan = close("--idle", "12h", "--goodbye")
    assert plan.splitlines()[-2:] == [
        "A goodbye would go to 1; 1 skipped (more than 24 hours since the customer's last "
        "message).",
        "Dry run: nothing changed. Add --commit to resolve them.",
    ]
    assert not Message.objects.filter(direction=Message.Direction.OUT).exists()

    with django_capture_on_commit_callbacks(execute=True):
        output = close("--idle", "12h", "--goodbye", "--commit")

    assert output == (
        "Resolved 2 conversations idle for more than 12h; goodbye sent to 1, skipped for 1 "
        "(more than 24 hours since the customer's last message).\n"
    )
    [goodbye] = Message.objects.filter(direction=Message.Direction.OUT)
    assert goodbye.conversation_id == recent.pk
    assert goodbye.status == Message.Status.PENDING
    assert goodbye.sender_type == Message.SenderType.BOT
    assert goodbye.text == (
        "Como não tivemos mais notícias, estamos encerrando este atendimento "
        f"(protocolo {recent.protocol}). Se precisar, é só mandar uma nova mensagem por aqui. "
        "Até logo!"
    )
    assert Note.objects.get(conversation=recent).text == (
        "Resolved automatically: no message for 13h (limit 12h). The customer was sent a goodbye."
    )
    assert Note.objects.get(conversation=late).text == (
        "Resolved automatically: no message for 1d6h (limit 12h). No goodbye was sent: more "
        "than 24 hours have passed since the customer's last message."
    )
    assert states({"recent": recent, "late": late}) == {
        "recent": State.RESOLVED,
        "late": State.RESOLVED,
    }
    assert resolved_signals == []


def test_a_message_that_arrives_after_the_listing_keeps_the_conversation_open(
    receive: Receive,
) -> None:
    conversation = receive().conversation
    aged(conversation, hours=50)
    # The customer writes between the command's listing and its turn to close it.
    receive("Ainda estou sem internet")

    outcome = conversation_close_stale(conversation=conversation, idle=timedelta(hours=48))

    assert outcome == STALE_SKIPPED
    assert Conversation.objects.get(pk=conversation.pk).state == State.QUEUED
    assert not Note.objects.exists()


def test_progress_lines_on_long_runs(receive: Receive, monkeypatch: pytest.MonkeyPatch) -> None:
    from conversations.management.commands import close_stale_conversations

    monkeypatch.setattr(close_stale_conversations, "PROGRESS_FROM", 2)
    for n in range(5):
        aged(receive(wa_id=f"55119888800{n:02d}").conversation, hours=50)

    output = close("--idle", "2d", "--commit")

    assert output.splitlines() == [
        "resolved 1/5 conversations…",
        "resolved 2/5 conversations…",
        "resolved 3/5 conversations…",
        "resolved 4/5 conversations…",
        "resolved 5/5 conversations…",
        "Resolved 5 conversations idle for more than 2d.",
    ]
    # Below the threshold: just the summary.
    aged(receive(wa_id="5511988889999").conversation, hours=50)
    assert close("--idle", "2d", "--commit") == "Resolved 1 conversations idle for more than 2d.\n"


def test_a_long_list_is_cut_in_a_dry_run(receive: Receive) -> None:
    for n in range(23):
        aged(receive(wa_id=f"55119888800{n:02d}").conversation, hours=50 + n)

    lines = close("--idle", "2d").splitlines()

    assert lines[0] == "Would resolve 23 conversations idle for more than 2d (queued 23):"
    assert len(lines) == 1 + 20 + 2
    assert lines[-2] == "  … and 3 more (-v 2 lists them all)"
    assert len(close("--idle", "2d", "-v", "2").splitlines()) == 1 + 23 + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--idle", "48x"),
            "Error: argument --idle: invalid duration '48x': use a number and a unit, "
            "e.g. 30m, 48h, 365d or 1h30m (units: w, d, h, m, s)",
        ),
        (("--idle", "48"), "Error: argument --idle: invalid duration '48'"),
        (
            ("--idle", "30m"),
            "--idle 30m is too short: at least 1h (did you mean days, e.g. 2d?).",
        ),
        ((), "Error: the following arguments are required: --idle"),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    db: None, args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError) as raised:
        close(*args, "--commit")

    assert str(raised.value).startswith(message)

"""manage.py resend_pending: outbound messages stuck in pending are sent again."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from conversations.models import Conversation, Inbox, Message
from conversations.services import message_receive, message_send
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import WhatsAppAccount


@pytest.fixture
def conversation(account: WhatsAppAccount) -> Conversation:
    return message_receive(
        inbox=account.inbox, wa_id="5511988887777", text="Oi", external_id="wamid.IN1"
    ).message.conversation


@pytest.fixture
def stuck(conversation: Conversation) -> Iterator[Message]:
    """An agent's reply from 20 minutes ago whose send task was lost."""
    message = message_send(
        conversation=conversation, text="Já verifiquei, pode testar?", now=timezone.now()
    ).message
    Message.objects.filter(pk=message.pk).update(created_at=timezone.now() - timedelta(minutes=20))
    DBTaskResult.objects.all().delete()
    yield message


def resend(*args: str) -> str:
    out = StringIO()
    call_command("resend_pending", *args, stdout=out)
    return out.getvalue()


def test_without_commit_it_only_reports(stuck: Message) -> None:
    output = resend()

    assert output == (
        "1 WhatsApp messages pending for more than 15 min; add --commit to send them again.\n"
    )
    assert not DBTaskResult.objects.exists()


# The worker needs real transactions on PostgreSQL.
@pytest.mark.django_db(transaction=True)
def test_with_commit_the_stuck_message_is_sent(
    stuck: Message,
    conversation: Conversation,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    recent = message_send(conversation=conversation, text="Mais alguma coisa?").message
    DBTaskResult.objects.all().delete()  # the recent one is simply still queued elsewhere

    assert resend("--commit") == "Re-enqueued 1 WhatsApp messages pending for more than 15 min.\n"
    run_worker()

    stuck.refresh_from_db()
    recent.refresh_from_db()
    assert stuck.status == Message.Status.SENT
    assert recent.status == Message.Status.PENDING
    assert [r.json["text"]["body"] for r in fake_graph.sent()] == ["Já verifiquei, pode testar?"]


def test_other_channels_are_left_alone(stuck: Message, support: object) -> None:
    other = Inbox.objects.create(name="E-mail", channel="email")
    Conversation.objects.filter(pk=stuck.conversation_id).update(inbox=other)

    assert resend().startswith("0 WhatsApp messages pending")


def test_a_window_shorter_than_the_longest_retry_wait_is_refused(db: None) -> None:
    with pytest.raises(CommandError, match="--minutes must be at least 5"):
        resend("--minutes", "1")

"""Delivery statuses from the provider: only forward (sent < delivered < read),
``failed`` is terminal, duplicates and late arrivals change nothing."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from accounts.models import User
from conversations.models import Conversation, Message
from conversations.services import message_apply_status, message_send

Status = Message.Status


@pytest.fixture
def outbound(agent: User, conversation: Conversation) -> Message:
    message = message_send(conversation=conversation, actor=agent, text="Olá").message
    Message.objects.filter(pk=message.pk).update(external_id="wamid.OUT1")
    message.refresh_from_db()
    return message


@pytest.fixture
def t0() -> datetime:
    return timezone.now().replace(microsecond=0) - timedelta(minutes=10)


def apply(status: str, at: datetime, **kwargs: str) -> bool:
    return message_apply_status(external_id="wamid.OUT1", status=status, at=at, **kwargs)


def state(message: Message) -> tuple[object, ...]:
    message.refresh_from_db()
    return (
        message.status,
        message.sent_at,
        message.delivered_at,
        message.read_at,
        message.failed_at,
        message.error_code,
        message.error_title,
    )


def test_statuses_in_order_fill_their_timestamps(outbound: Message, t0: datetime) -> None:
    s1, s2, s3 = t0, t0 + timedelta(seconds=1), t0 + timedelta(seconds=30)

    assert apply(Status.SENT, s1) is True
    assert apply(Status.DELIVERED, s2) is True
    assert apply(Status.READ, s3) is True

    assert state(outbound) == (Status.READ, s1, s2, s3, None, "", "")


def test_delivered_after_read_stays_read(outbound: Message, t0: datetime) -> None:
    apply(Status.SENT, t0)
    assert apply(Status.READ, t0 + timedelta(seconds=30)) is True

    assert apply(Status.DELIVERED, t0 + timedelta(seconds=1)) is False

    # The skipped step happened no later than the read: it is filled in.
    assert state(outbound) == (
        Status.READ,
        t0,
        t0 + timedelta(seconds=30),
        t0 + timedelta(seconds=30),
        None,
        "",
        "",
    )


def test_read_first_fills_sent_and_delivered(outbound: Message, t0: datetime) -> None:
    assert apply(Status.READ, t0) is True

    assert state(outbound) == (Status.READ, t0, t0, t0, None, "", "")


def test_a_duplicate_status_changes_nothing(outbound: Message, t0: datetime) -> None:
    assert apply(Status.DELIVERED, t0) is True
    before = state(outbound)

    assert apply(Status.DELIVERED, t0 + timedelta(minutes=1)) is False
    assert apply(Status.SENT, t0 + timedelta(minutes=2)) is False

    assert state(outbound) == before


def test_failed_is_terminal_and_keeps_the_error(outbound: Message, t0: datetime) -> None:
    apply(Status.SENT, t0)

    assert (
        apply(
            Status.FAILED,
            t0 + timedelta(seconds=5),
            error_code="131047",
            error_title="Re-engagement message",
            error_detail="More than 24 hours have passed since the recipient last replied.",
        )
        is True
    )
    assert apply(Status.DELIVERED, t0 + timedelta(seconds=6)) is False
    assert apply(Status.READ, t0 + timedelta(seconds=7)) is False
    assert apply(Status.FAILED, t0 + timedelta(seconds=8), error_code="1") is False

    assert state(outbound) == (
        Status.FAILED,
        t0,
        None,
        None,
        t0 + timedelta(seconds=5),
        "131047",
        "Re-engagement message",
    )
    assert outbound.error_detail == (
        "More than 24 hours have passed since the recipient last replied."
    )


def test_failed_after_read_is_ignored(outbound: Message, t0: datetime) -> None:
    apply(Status.READ, t0)

    assert apply(Status.FAILED, t0 + timedelta(seconds=1), error_code="131026") is False

    assert state(outbound) == (Status.READ, t0, t0, t0, None, "", "")


def test_a_pending_message_may_fail_before_it_was_sent(outbound: Message, t0: datetime) -> None:
    assert apply(Status.FAILED, t0, error_code="131026", error_title="Message undeliverable")

    assert state(outbound) == (
        Status.FAILED,
        None,
        None,
        None,
        t0,
        "131026",
        "Message undeliverable",
    )


def test_by_message_as_the_sending_task_does(outbound: Message, t0: datetime) -> None:
    assert message_apply_status(message=outbound, status=Status.SENT, at=t0) is True

    assert state(outbound)[:2] == (Status.SENT, t0)


def test_an_unknown_provider_id_changes_nothing(outbound: Message, t0: datetime) -> None:
    assert message_apply_status(external_id="wamid.NOPE", status=Status.READ, at=t0) is False

    assert state(outbound)[0] == Status.PENDING


def test_statuses_never_apply_to_customer_messages(conversation: Conversation) -> None:
    inbound = conversation.messages.get()

    assert message_apply_status(message=inbound, status=Status.READ) is False

    inbound.refresh_from_db()
    assert (inbound.status, inbound.read_at) == (Status.RECEIVED, None)


@pytest.mark.parametrize("status", [Status.PENDING, Status.RECEIVED, "bogus"])
def test_only_provider_statuses_apply(outbound: Message, status: str) -> None:
    with pytest.raises(ValueError, match=r"cannot apply status|is not a valid"):
        message_apply_status(message=outbound, status=status)


def test_a_message_or_a_provider_id_is_needed(db: None) -> None:
    with pytest.raises(ValueError, match="message or external_id is required"):
        message_apply_status(status=Status.SENT)

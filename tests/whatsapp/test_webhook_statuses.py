"""Statuses move our messages forward only; failed keeps Meta's error; a status
that arrives before its message id is known is kept and applied later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from conversations.models import Message
from conversations.services import message_send
from tests.whatsapp.payloads import envelope, post, status, text
from whatsapp.models import EarlyStatus, WhatsAppAccount
from whatsapp.services import early_statuses_apply, early_statuses_purge

AT = datetime(2026, 1, 1, tzinfo=UTC)


def _outbound(client: Client, external_id: str | None = "wamid.OUT1") -> Message:
    post(client, envelope(messages=[text("Oi")]))
    conversation = Message.objects.get().conversation
    reply = message_send(conversation=conversation, text="Olá! Em que posso ajudar?").message
    if external_id:
        Message.objects.filter(pk=reply.pk).update(
            external_id=external_id, status=Message.Status.SENT
        )
    reply.refresh_from_db()
    return reply


def _statuses(client: Client, *items: dict[str, Any]) -> Any:
    response = post(client, envelope(statuses=list(items)))
    assert response.status_code == 200, response.content
    return response


def test_delivered_then_read(client: Client, account: WhatsAppAccount) -> None:
    reply = _outbound(client)

    _statuses(client, status("wamid.OUT1", "delivered"))
    reply.refresh_from_db()
    assert (reply.status, reply.delivered_at) == (Message.Status.DELIVERED, AT)

    _statuses(client, status("wamid.OUT1", "read", timestamp="1767225660"))
    reply.refresh_from_db()
    assert (reply.status, reply.read_at) == (Message.Status.READ, AT + timedelta(seconds=60))


def test_statuses_never_move_backwards(client: Client, account: WhatsAppAccount) -> None:
    reply = _outbound(client)

    # Out of order in one POST, and a late "sent" afterwards.
    _statuses(client, status("wamid.OUT1", "read"), status("wamid.OUT1", "delivered"))
    _statuses(client, status("wamid.OUT1", "sent"))

    reply.refresh_from_db()
    assert reply.status == Message.Status.READ
    assert reply.delivered_at == AT  # the skipped step is filled in


def test_failed_keeps_metas_error(client: Client, account: WhatsAppAccount) -> None:
    reply = _outbound(client)
    error = {
        "code": 131047,
        "title": "Re-engagement message",
        "message": "Re-engagement message",
        "error_data": {"details": "Message failed to send because more than 24 hours have passed."},
    }

    _statuses(client, status("wamid.OUT1", "failed", errors=[error], recipient_user_id=None))

    reply.refresh_from_db()
    assert (reply.status, reply.error_code, reply.error_title, reply.error_detail) == (
        Message.Status.FAILED,
        "131047",
        "Re-engagement message",
        "Message failed to send because more than 24 hours have passed.",
    )
    assert reply.failed_at == AT


def test_unknown_status_values_are_ignored(client: Client, account: WhatsAppAccount) -> None:
    reply = _outbound(client)

    response = _statuses(client, status("wamid.OUT1", "deleted"))

    assert response.json()["statuses"] == 0
    reply.refresh_from_db()
    assert reply.status == Message.Status.SENT
    assert not EarlyStatus.objects.exists()


def test_a_status_before_its_message_id_is_kept_and_applied_later(
    client: Client, account: WhatsAppAccount
) -> None:
    reply = _outbound(client, external_id=None)

    response = _statuses(
        client,
        status("wamid.EARLY", "delivered"),
        status("wamid.EARLY", "read", timestamp="1767225660"),
    )

    assert response.json()["early_statuses"] == 2
    assert EarlyStatus.objects.filter(external_id="wamid.EARLY").count() == 2
    reply.refresh_from_db()
    assert reply.status == Message.Status.PENDING

    # The send task stores the wamid, then applies what came early.
    Message.objects.filter(pk=reply.pk).update(
        external_id="wamid.EARLY", status=Message.Status.SENT, sent_at=AT
    )
    changed = early_statuses_apply("wamid.EARLY")

    assert changed == 2
    reply.refresh_from_db()
    assert (reply.status, reply.delivered_at, reply.read_at) == (
        Message.Status.READ,
        AT,
        AT + timedelta(seconds=60),
    )
    assert not EarlyStatus.objects.exists()


def test_applying_early_statuses_for_an_unknown_id_does_nothing(db: None) -> None:
    EarlyStatus.objects.create(external_id="wamid.X", status="delivered", at=AT)

    assert early_statuses_apply("wamid.X") == 0
    assert early_statuses_apply("") == 0
    assert EarlyStatus.objects.count() == 1


def test_a_status_for_an_inbound_message_id_is_not_applied_to_it(
    client: Client, account: WhatsAppAccount
) -> None:
    post(client, envelope(messages=[text("Oi", id_="wamid.IN")]))

    _statuses(client, status("wamid.IN", "read"))

    assert Message.objects.get().status == Message.Status.RECEIVED


def test_old_early_statuses_are_purged(db: None) -> None:
    old = EarlyStatus.objects.create(external_id="wamid.OLD", status="sent", at=AT)
    EarlyStatus.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(hours=25))
    EarlyStatus.objects.create(external_id="wamid.NEW", status="sent", at=AT)

    assert early_statuses_purge() == 1

    assert list(EarlyStatus.objects.values_list("external_id", flat=True)) == ["wamid.NEW"]


def test_the_purge_command_reports_until_told_to_commit(db: None, capsys: Any) -> None:
    old = EarlyStatus.objects.create(external_id="wamid.OLD", status="sent", at=AT)
    EarlyStatus.objects.filter(pk=old.pk).update(received_at=timezone.now() - timedelta(days=2))

    call_command("purge_early_statuses")
    assert EarlyStatus.objects.count() == 1
    assert "Would delete 1 early statuses" in capsys.readouterr().out

    call_command("purge_early_statuses", "--commit")
    assert not EarlyStatus.objects.exists()
    assert "Deleted 1 early statuses." in capsys.readouterr().out


def test_an_id_stored_while_the_early_status_commits_is_caught_after_the_commit(
    client: Client, account: WhatsAppAccount, django_capture_on_commit_callbacks: Any
) -> None:
    reply = _outbound(client, external_id=None)

    with django_capture_on_commit_callbacks() as callbacks:
        _statuses(client, status("wamid.RACE", "delivered"))
    # The send task stored the id (and found no early status yet) meanwhile.
    Message.objects.filter(pk=reply.pk).update(external_id="wamid.RACE", status=Message.Status.SENT)
    for callback in callbacks:
        callback()

    reply.refresh_from_db()
    assert reply.status == Message.Status.DELIVERED
    assert not EarlyStatus.objects.exists()

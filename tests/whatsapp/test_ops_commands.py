"""Operators' WhatsApp commands: resend_failed_messages (failed sends go out
again, once) and check_whatsapp (each number asked about at the fake Graph API)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from typing import Any

import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations import channels
from conversations.models import Conversation, Inbox, Message
from conversations.services import (
    RESEND_NOT_FAILED,
    RESEND_QUEUED,
    conversation_resolve,
    message_apply_status,
    message_receive,
    message_resend,
    message_send,
)
from ispsupport import breakers
from tests.whatsapp.conftest import ACCESS_TOKEN, PHONE_NUMBER_ID
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import WhatsAppAccount
from whatsapp.tasks import send_message

NUMBER = {
    "verified_name": "Fibra Rápida Telecom",
    "display_phone_number": "+55 11 4000-1234",
    "quality_rating": "GREEN",
    "code_verification_status": "VERIFIED",
    "id": PHONE_NUMBER_ID,
}


def number_path(phone_number_id: str = PHONE_NUMBER_ID) -> str:
    return f"/{settings.WHATSAPP_API_VERSION}/{phone_number_id}"


def messages_path() -> str:
    return f"{number_path()}/messages"


# --- resend_failed_messages ------------------------------------------------------------


class Failures:
    """Outbound messages that failed, in the account's inbox."""

    def __init__(self, account: WhatsAppAccount) -> None:
        self.account = account
        self.counter = 0

    def conversation(self) -> Conversation:
        self.counter += 1
        return message_receive(
            inbox=self.account.inbox,
            wa_id=f"55119888{self.counter:05d}",
            text="Oi",
            external_id=f"wamid.IN{self.counter}",
        ).message.conversation

    def failed(
        self,
        conversation: Conversation,
        text: str,
        *,
        code: str = "130429",
        minutes_ago: float = 10,
        **kwargs: Any,
    ) -> Message:
        message = message_send(conversation=conversation, text=text, **kwargs).message
        message_apply_status(
            message=message,
            status=Message.Status.FAILED,
            error_code=code,
            error_title="Rate limit hit",
            at=timezone.now() - timedelta(minutes=minutes_ago),
        )
        message.refresh_from_db()
        return message


@pytest.fixture
def failures(account: WhatsAppAccount) -> Failures:
    return Failures(account)


@pytest.fixture
def incident(failures: Failures) -> dict[str, Message]:
    """What an hour of Meta's rate limiting leaves behind, and older or
    unsendable failures around it."""
    lively = failures.conversation()
    rate_limited = failures.failed(lively, "Seu boleto vence amanhã.")
    undeliverable = failures.failed(lively, "Pode testar agora?", code="131026")
    yesterday = failures.failed(lively, "Bom dia!", minutes_ago=25 * 60)
    closed = failures.conversation()
    in_resolved = failures.failed(closed, "Obrigado pelo contato!")
    conversation_resolve(conversation=closed, actor=None)
    quiet = failures.conversation()
    window_closed = failures.failed(quiet, "Conseguiu resolver?")
    template = failures.failed(
        quiet,
        "",
        kind=Message.Kind.TEMPLATE,
        payload={"name": "retorno_atendimento", "language": "pt_BR"},
    )
    Conversation.objects.filter(pk=quiet.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=30)
    )
    DBTaskResult.objects.all().delete()
    return {
        "rate_limited": rate_limited,
        "undeliverable": undeliverable,
        "yesterday": yesterday,
        "in_resolved": in_resolved,
        "window_closed": window_closed,
        "template": template,
    }


def resend(*args: str) -> str:
    out = StringIO()
    call_command("resend_failed_messages", *args, stdout=out)
    return out.getvalue()


def statuses(messages: dict[str, Message]) -> dict[str, str]:
    return {name: Message.objects.get(pk=m.pk).status for name, m in messages.items()}


def queued_ids() -> list[int]:
    return sorted(r.args_kwargs["args"][0] for r in DBTaskResult.objects.all())


def test_a_dry_run_counts_what_would_go_and_why_not(incident: dict[str, Message]) -> None:
    output = resend("--since", "1h")

    assert output == (
        "WhatsApp messages failed in the last 1h: 5.\n"
        "Would send again: 3.\n"
        "Would skip 1: the conversation is resolved.\n"
        "Would skip 1: more than 24 hours since the customer's last message "
        "(only a template may be sent).\n"
        "Dry run: nothing changed. Add --commit to send them again.\n"
    )
    assert set(statuses(incident).values()) == {Message.Status.FAILED}
    assert not DBTaskResult.objects.exists()


def test_commit_puts_them_back_to_pending_and_enqueues_their_send(
    incident: dict[str, Message],
) -> None:
    channels.register_sender("whatsapp", send_message)

    output = resend("--since", "1h", "--commit")

    assert output == (
        "WhatsApp messages failed in the last 1h: 5.\n"
        "Sent again (queued): 3.\n"
        "Skipped 1: the conversation is resolved.\n"
        "Skipped 1: more than 24 hours since the customer's last message "
        "(only a template may be sent).\n"
    )
    assert statuses(incident) == {
        "rate_limited": Message.Status.PENDING,
        "undeliverable": Message.Status.PENDING,
        "yesterday": Message.Status.FAILED,
        "in_resolved": Message.Status.FAILED,
        "window_closed": Message.Status.FAILED,
        "template": Message.Status.PENDING,
    }
    again = Message.objects.get(pk=incident["rate_limited"].pk)
    assert (again.error_code, again.error_title, again.failed_at, again.external_id) == (
        "",
        "",
        None,
        None,
    )
    assert queued_ids() == sorted(
        incident[name].pk for name in ("rate_limited", "undeliverable", "template")
    )
    assert {r.task_path for r in DBTaskResult.objects.all()} == {"whatsapp.tasks.send_message"}


def test_code_picks_only_those_errors(incident: dict[str, Message]) -> None:
    channels.register_sender("whatsapp", send_message)

    output = resend("--since", "1h", "--code", "131026", "--commit")

    assert output == (
        "WhatsApp messages failed in the last 1h with error 131026: 1.\nSent again (queued): 1.\n"
    )
    assert queued_ids() == [incident["undeliverable"].pk]


def test_a_wider_since_reaches_older_failures(incident: dict[str, Message]) -> None:
    assert resend("--since", "2d").splitlines()[:2] == [
        "WhatsApp messages failed in the last 2d: 6.",
        "Would send again: 4.",
    ]


def test_a_message_is_queued_once_however_often_it_is_resent(
    incident: dict[str, Message],
) -> None:
    channels.register_sender("whatsapp", send_message)
    message = incident["rate_limited"]

    assert message_resend(message=message) == RESEND_QUEUED
    assert message_resend(message=message) == RESEND_NOT_FAILED
    resend("--since", "1h", "--commit")
    second = resend("--since", "1h", "--commit")

    assert queued_ids().count(message.pk) == 1
    assert second.splitlines()[0] == "WhatsApp messages failed in the last 1h: 2."
    assert second.splitlines()[1] == "Sent again (queued): 0."


def test_other_channels_are_left_alone(incident: dict[str, Message]) -> None:
    other = Inbox.objects.create(name="E-mail", channel="email")
    Conversation.objects.filter(pk=incident["rate_limited"].conversation_id).update(inbox=other)

    # The two of that conversation are no longer counted.
    assert resend().splitlines()[0] == "WhatsApp messages failed in the last 1h: 3."


# The worker needs real transactions on PostgreSQL.
@pytest.mark.django_db(transaction=True)
def test_through_the_worker_each_failed_message_reaches_meta_once(
    failures: Failures,
    agent: User,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    channels.register_sender("whatsapp", send_message)
    conversation = failures.conversation()
    fake_graph.fail("POST", messages_path(), code=131026, message="Undeliverable")
    message = message_send(conversation=conversation, text="Sua conexão voltou?").message
    run_worker()
    message.refresh_from_db()
    assert (message.status, message.error_code) == (Message.Status.FAILED, "131026")

    resend("--since", "1h", "--commit")
    resend("--since", "1h", "--commit")
    run_worker()
    run_worker()

    message.refresh_from_db()
    assert (message.status, message.external_id) == (Message.Status.SENT, "wamid.FAKE00000001")
    assert [r.json["text"]["body"] for r in fake_graph.sent()] == [
        "Sua conexão voltou?",
        "Sua conexão voltou?",
    ]  # the failed attempt, then the one resend
    assert resend("--since", "1h").splitlines()[0] == "WhatsApp messages failed in the last 1h: 0."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--since", "1x"), "Error: argument --since: invalid duration '1x'"),
        (("--since", "1w"), "--since 7d is too long: at most 3d"),
    ],
)
def test_resend_refuses_bad_input(db: None, args: tuple[str, ...], message: str) -> None:
    with pytest.raises(CommandError) as raised:
        resend(*args, "--commit")

    assert str(raised.value).startswith(message)


# --- check_whatsapp --------------------------------------------------------------------


def check(*args: str) -> tuple[str, CommandError | None]:
    out = StringIO()
    try:
        call_command("check_whatsapp", *args, stdout=out)
    except CommandError as exc:
        return out.getvalue(), exc
    return out.getvalue(), None


def test_a_good_number_is_reported_healthy(account: WhatsAppAccount, fake_graph: FakeGraph) -> None:
    fake_graph.reply("GET", number_path(), NUMBER)

    output, error = check()

    assert error is None
    assert output == (
        "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), quality GREEN\n"
        "  status: ok; token: valid; quality: GREEN; no webhook received yet\n"
        "whatsapp breaker: closed (0/3 failures)\n"
        "1 number(s): 1 ok, 0 sandbox, 0 warning, 0 unhealthy.\n"
    )
    [request] = fake_graph.requests
    assert (request.method, request.path) == ("GET", number_path())
    assert request.query == {
        "fields": ["display_phone_number,verified_name,quality_rating,code_verification_status"]
    }
    assert request.headers["authorization"] == f"Bearer {ACCESS_TOKEN}"


def test_an_expired_token_is_unhealthy_and_exits_2(
    account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    fake_graph.fail(
        "GET",
        number_path(),
        code=190,
        status=401,
        message="Error validating access token: Session has expired.",
    )

    output, error = check()

    assert error is not None
    assert (str(error), error.returncode) == (
        "Unhealthy WhatsApp number(s): Suporte (+55 11 4000-1234).",
        2,
    )
    assert output.splitlines()[:2] == [
        "Suporte (+55 11 4000-1234): Meta refused the access token (error 190: Error validating "
        "access token: Session has expired.). It is invalid or expired: the number is marked "
        "unhealthy until you type a new token.",
        "  status: unhealthy; token: refused (expired or revoked); quality: unknown; "
        "no webhook received yet",
    ]
    assert output.splitlines()[-1] == "1 number(s): 0 ok, 0 sandbox, 0 warning, 1 unhealthy."
    account.refresh_from_db()
    assert not account.is_healthy


def test_a_good_answer_makes_an_unhealthy_number_healthy_again(
    account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    WhatsAppAccount.objects.filter(pk=account.pk).update(
        is_healthy=False, last_webhook_at=timezone.now() - timedelta(minutes=90)
    )
    fake_graph.reply("GET", number_path(), NUMBER)

    output, error = check()

    assert error is None
    assert output.splitlines()[:2] == [
        "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), quality "
        "GREEN — marked healthy again.",
        "  status: ok; token: valid; quality: GREEN; last webhook 1h30m ago",
    ]
    account.refresh_from_db()
    assert account.is_healthy


@pytest.mark.parametrize(
    ("script", "first_line"),
    [
        (
            {"status": 503, "code": 2, "message": "Service temporarily unavailable"},
            "Suporte (+55 11 4000-1234): could not check now: Meta answered with an error "
            "(HTTP 503, 2: Service temporarily unavailable). Try again in a moment.",
        ),
        (
            None,
            "Suporte (+55 11 4000-1234): OK: Fibra Rápida Telecom (+55 11 4000-1234), quality "
            "RED — Meta may limit how many customers this number reaches.",
        ),
    ],
)
def test_warnings_exit_1(
    account: WhatsAppAccount,
    fake_graph: FakeGraph,
    script: dict[str, Any] | None,
    first_line: str,
) -> None:
    if script is None:
        fake_graph.reply("GET", number_path(), {**NUMBER, "quality_rating": "RED"})
    else:
        fake_graph.fail("GET", number_path(), **script)

    output, error = check()

    assert error is not None
    assert (str(error), error.returncode) == (
        "WhatsApp needs attention (see the warnings above).",
        1,
    )
    assert output.splitlines()[0] == first_line
    assert output.splitlines()[-1] == "1 number(s): 0 ok, 0 sandbox, 1 warning, 0 unhealthy."
    account.refresh_from_db()
    assert account.is_healthy


def test_an_open_breaker_is_reported_without_calling_meta(
    account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    breakers.get_breaker("whatsapp").open()

    output, error = check()

    assert error is not None and error.returncode == 1
    lines = output.splitlines()
    assert lines[0] == (
        "Suporte (+55 11 4000-1234): could not check now: calls to Meta are paused after "
        "repeated failures (the whatsapp circuit breaker is open). Try again in a moment."
    )
    assert lines[2] == (
        "whatsapp breaker: open (0/3 failures); calls to Meta are paused (retried after 30 s, "
        "or reset_circuit_breaker whatsapp)"
    )
    assert fake_graph.requests == []


def test_sandbox_numbers_are_reported_as_such(
    sandbox_account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    inactive = WhatsAppAccount.objects.create(
        inbox=Inbox.objects.create(name="Antigo"),
        name="Antigo",
        phone_number_id="300000000000002",
        is_active=False,
    )
    inactive.access_token = "EAAG-old"
    inactive.save()

    output, error = check()

    assert error is None
    assert output == (
        "Suporte (+55 11 4000-1234): Sandbox number: nothing to check (no access token).\n"
        "  status: ok; token: none (sandbox); quality: —; no webhook received yet\n"
        "whatsapp breaker: closed (0/3 failures)\n"
        "1 number(s): 0 ok, 1 sandbox, 0 warning, 0 unhealthy.\n"
    )
    assert fake_graph.requests == []


def test_account_picks_one_number(account: WhatsAppAccount, fake_graph: FakeGraph) -> None:
    fake_graph.reply("GET", number_path(), NUMBER)

    output, error = check("--account", PHONE_NUMBER_ID)
    _output, unknown = check("--account", "999")

    assert error is None and output.startswith("Suporte (+55 11 4000-1234): OK")
    assert unknown is not None
    assert str(unknown) == "No WhatsApp number with phone number id 999."


def test_no_number_at_all(db: None) -> None:
    output, error = check()

    assert error is None
    assert (
        output == "whatsapp breaker: closed (0/3 failures)\nNo active WhatsApp number to check.\n"
    )

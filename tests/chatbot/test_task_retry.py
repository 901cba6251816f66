"""A database error under the bot's tasks: the run is retried later with
backoff and the customer gets their answer (their rating question) once; when
the database stays away the task gives up, failed and visible in admin, and
an admin's retry answers the customer.

The error is a real ``OperationalError`` from the database connection for one
chosen SQL statement, in the real queue run by ``db_worker``.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations.models import Conversation, Inbox, Message
from conversations.services import conversation_resolve, message_receive, message_send
from tests.chatbot.conftest import ensure_default_menu
from tests.whatsapp.conftest import run_worker  # noqa: F401 - fixture
from tests.whatsapp.test_task_retry import (
    ADMIN_LIST,
    MAX_ATTEMPTS,
    admin_client,
    assert_failed_in_admin,
    assert_retry_waits,
    database_fails,
    make_due,
    runs,
)

pytestmark = pytest.mark.django_db(transaction=True)

HANDLE = "chatbot.tasks.handle_message"
ASK_RATING = "chatbot.csat.ask_rating"
# The bot's first answer, and the mark that the rating question was asked:
# both written in the transaction of their run.
WRITE_ANSWER = r'INSERT INTO "conversations_message"'
MARK_ASKED = r'UPDATE "conversations_conversation" SET .*"csat_requested_at" ='


def answers(conversation: Conversation) -> list[Message]:
    return list(
        Message.objects.filter(conversation=conversation, direction=Message.Direction.OUT).order_by(
            "id"
        )
    )


@pytest.fixture
def hello(inbox: Inbox) -> Message:
    """Maria writes "oi"; the bot's task waits in the queue."""
    ensure_default_menu()
    return message_receive(
        inbox=inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        text="oi",
        external_id="wamid.RETRY.BOT1",
    ).message


def assert_greeted_once(conversation: Conversation) -> None:
    """The greeting with her protocol, then the menu: once each."""
    greeting, menu = answers(conversation)
    assert conversation.protocol in greeting.text
    assert menu.kind == Message.Kind.INTERACTIVE


# --- The bot's answer ------------------------------------------------------------------


def test_a_database_error_while_answering_is_retried_and_the_customer_answered_once(
    hello: Message,
    run_worker: Callable[[], None],  # noqa: F811
) -> None:
    conversation = hello.conversation
    assert [r.task_path for r in runs(HANDLE)] == [HANDLE]
    before = timezone.now()

    with database_fails(WRITE_ANSWER):
        run_worker()

    # Nothing of the failed run stayed, not even its note that "oi" was read.
    assert answers(conversation) == []
    conversation.refresh_from_db()
    assert "last_id" not in (conversation.bot_state or {})
    failed, retry = runs(HANDLE)
    assert_retry_waits(failed, retry, before)

    make_due()
    run_worker()

    assert_greeted_once(conversation)
    assert runs(HANDLE)[-1].return_value == "answered"


def test_the_bot_gives_up_visibly_and_an_admins_retry_answers_the_customer(
    hello: Message,
    run_worker: Callable[[], None],  # noqa: F811
) -> None:
    with database_fails(WRITE_ANSWER, times=MAX_ATTEMPTS):
        for _ in range(MAX_ATTEMPTS):
            run_worker()
            make_due()

    assert [r.status for r in runs(HANDLE)] == ["FAILED"] * MAX_ATTEMPTS
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert answers(hello.conversation) == []
    assert_failed_in_admin(HANDLE)

    # The database is back; an admin retries the last run from the list.
    last = runs(HANDLE)[-1]
    client = admin_client()
    response = client.post(
        ADMIN_LIST, {"action": "retry_failed", "_selected_action": [str(last.pk)]}, follow=True
    )
    assert response.status_code == 200
    run_worker()

    assert_greeted_once(hello.conversation)
    assert runs(HANDLE)[-1].status == "SUCCESSFUL"


# --- The rating question -----------------------------------------------------------------


@pytest.fixture
def resolved(
    hello: Message,
    agent: User,
    django_capture_on_commit_callbacks: Callable[..., AbstractContextManager[Any]],
) -> Conversation:
    """Bruno answered Maria and resolved it; the question waits in the queue."""
    conversation = hello.conversation
    DBTaskResult.objects.all().delete()  # the bot's run on "oi" is not this test's
    message_send(conversation=conversation, actor=agent, text="Reiniciei sua conexão, Maria.")
    with django_capture_on_commit_callbacks(execute=True):
        conversation_resolve(conversation=conversation, actor=agent)
    assert [r.task_path for r in runs(ASK_RATING)] == [ASK_RATING]
    return conversation


def rating_questions(conversation: Conversation) -> list[Message]:
    return [m for m in answers(conversation) if m.kind == Message.Kind.INTERACTIVE]


def test_a_database_error_while_asking_for_a_rating_is_retried_and_asked_once(
    resolved: Conversation,
    run_worker: Callable[[], None],  # noqa: F811
) -> None:
    before = timezone.now()

    with database_fails(MARK_ASKED):
        run_worker()

    # The question written before the failure went with it.
    assert rating_questions(resolved) == []
    failed, retry = runs(ASK_RATING)
    assert_retry_waits(failed, retry, before)

    make_due()
    run_worker()

    [question] = rating_questions(resolved)
    assert question.payload["sections"][0]["rows"][0]["id"] == "csat:5"
    resolved.refresh_from_db()
    assert resolved.csat_requested_at is not None
    assert runs(ASK_RATING)[-1].return_value == "asked"


def test_asking_for_a_rating_gives_up_visibly(
    resolved: Conversation,
    run_worker: Callable[[], None],  # noqa: F811
) -> None:
    with database_fails(MARK_ASKED, times=MAX_ATTEMPTS):
        for _ in range(MAX_ATTEMPTS):
            run_worker()
            make_due()

    assert [r.status for r in runs(ASK_RATING)] == ["FAILED"] * MAX_ATTEMPTS
    assert rating_questions(resolved) == []
    assert_failed_in_admin(ASK_RATING)

"""A database error under the send and media tasks: the run is retried later
with backoff and the customer's message goes out once (the media is stored
once); when the database stays away the task gives up, failed and visible in
admin.

The error is a real ``OperationalError`` raised by the database connection for
one chosen SQL statement (``FailingStatement``), in the real queue run by
``db_worker``, on SQLite or PostgreSQL.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.db import OperationalError, connection
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts import services as accounts_services
from accounts.models import User
from conversations import channels
from conversations.models import Conversation, Message
from conversations.services import message_receive, message_send
from ispsupport.tasks import enqueue
from tests.whatsapp.fake_graph import FakeGraph
from tests.whatsapp.test_media import JPEG, MEDIA_ID, _script_media
from whatsapp.media import download_media
from whatsapp.models import WhatsAppAccount
from whatsapp.tasks import send_message

pytestmark = pytest.mark.django_db(transaction=True)

ADMIN_LIST = "/admin/django_tasks_database/dbtaskresult/"
MAX_ATTEMPTS = 5  # Retry()'s default, which these tasks use
SEND = "whatsapp.tasks.send_message"
DOWNLOAD = "whatsapp.media.download_media"
# The statements the tests make fail.
READ_ACCOUNT = r'SELECT .* FROM "whatsapp_whatsappaccount"'
STORE_WAMID = r'UPDATE "conversations_message" SET "external_id"'
STORE_MEDIA = r'UPDATE "conversations_message" SET .*"media_file" ='


class FailingStatement:
    """Connection wrapper: the next ``times`` statements that match the
    regular expression ``pattern`` (from their start) fail with the error a
    restarting database server gives, before reaching it."""

    def __init__(self, pattern: str, times: int) -> None:
        self.pattern = re.compile(pattern, re.DOTALL)
        self.left = times
        self.failed = 0

    def __call__(self, execute: Callable[..., Any], sql: str, *args: Any) -> Any:
        if self.left and self.pattern.match(sql.lstrip()):
            self.left -= 1
            self.failed += 1
            raise OperationalError("server closed the connection unexpectedly")
        return execute(sql, *args)


@contextmanager
def database_fails(pattern: str, *, times: int = 1) -> Iterator[FailingStatement]:
    failing = FailingStatement(pattern, times)
    with connection.execute_wrapper(failing):
        yield failing
    assert failing.failed == times, f"{failing.failed} statements matched {pattern!r}, not {times}"


def runs(task_path: str) -> list[DBTaskResult]:
    return list(DBTaskResult.objects.filter(task_path=task_path).order_by("enqueued_at"))


def make_due() -> None:
    """The backoff has passed: every scheduled retry is due now."""
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())


def assert_retry_waits(failed: DBTaskResult, retry: DBTaskResult, before: Any) -> None:
    """Attempt 1 failed: attempt 2 is scheduled 1-2 s later (2 s with jitter)."""
    assert failed.status == "FAILED"
    assert failed.exception_class_path == "django.db.utils.OperationalError"
    assert retry.status == "READY"
    assert retry.args_kwargs["kwargs"]["task_attempt"] == 2
    assert retry.args_kwargs["kwargs"]["retry_of"] == str(failed.pk)
    assert before + timedelta(seconds=1) <= retry.run_after
    assert retry.run_after <= timezone.now() + timedelta(seconds=2)


def admin_client() -> Client:
    admin = User.objects.filter(username="ana.admin").first() or accounts_services.user_create(
        username="ana.admin", password="Senha-Forte-123", role=User.Role.ADMIN, name="Ana"
    )
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(admin)
    return client


def assert_failed_in_admin(task_path: str) -> None:
    """The last run is listed as failed, not retried, with its error; the
    retry action is offered."""
    client = admin_client()
    listing = client.get(
        ADMIN_LIST, {"status__exact": "FAILED", "retried": "no", "task_path": task_path}
    )
    assert listing.status_code == 200
    [last] = listing.context["cl"].result_list
    assert last.args_kwargs["kwargs"]["task_attempt"] == MAX_ATTEMPTS
    assert "Retry selected failed tasks" in listing.content.decode()
    page = client.get(f"{ADMIN_LIST}{last.pk}/change/").content.decode()
    assert "django.db.utils.OperationalError" in page
    assert "server closed the connection unexpectedly" in page


# --- Sending -------------------------------------------------------------------------


@pytest.fixture
def conversation(account: WhatsAppAccount) -> Conversation:
    channels.register_sender("whatsapp", send_message)
    return message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        text="Minha internet caiu",
        external_id="wamid.RETRY.IN",
    ).message.conversation


def test_a_database_error_before_sending_is_retried_and_the_message_sent_once(
    conversation: Conversation, fake_graph: FakeGraph, run_worker: Callable[[], None]
) -> None:
    message = message_send(conversation=conversation, text="Olá, Maria!").message
    before = timezone.now()

    with database_fails(READ_ACCOUNT):
        run_worker()

    assert fake_graph.sent() == []
    failed, retry = runs(SEND)
    assert_retry_waits(failed, retry, before)
    run_worker()  # not due yet
    assert fake_graph.sent() == []

    make_due()
    run_worker()

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")
    assert [r.json["text"]["body"] for r in fake_graph.sent()] == ["Olá, Maria!"]
    assert [r.status for r in runs(SEND)] == ["FAILED", "SUCCESSFUL"]


def test_meta_took_it_but_storing_its_wamid_failed_the_retry_stores_it_and_sends_nothing(
    conversation: Conversation, fake_graph: FakeGraph, run_worker: Callable[[], None]
) -> None:
    message = message_send(conversation=conversation, text="Pode reiniciar o roteador?").message

    with database_fails(STORE_WAMID):
        run_worker()

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("pending", None)
    assert len(fake_graph.sent()) == 1
    failed, retry = runs(SEND)
    assert failed.status == "FAILED"
    assert retry.args_kwargs["kwargs"]["sent_as"] == "wamid.FAKE00000001"

    make_due()
    run_worker()

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")
    assert len(fake_graph.sent()) == 1  # Meta got it once
    assert runs(SEND)[-1].status == "SUCCESSFUL"


def test_a_send_enqueued_again_meanwhile_does_not_send_a_second_copy(
    conversation: Conversation, fake_graph: FakeGraph, run_worker: Callable[[], None]
) -> None:
    """resend_pending (or a worker that died while storing) enqueues the send
    without the wamid: the cache still knows Meta has the message."""
    message = message_send(conversation=conversation, text="Pode reiniciar o roteador?").message
    with database_fails(STORE_WAMID):
        run_worker()
    DBTaskResult.objects.filter(status="READY").delete()  # the retry is lost

    enqueue(send_message, message.pk)
    run_worker()

    message.refresh_from_db()
    assert (message.status, message.external_id) == ("sent", "wamid.FAKE00000001")
    assert len(fake_graph.sent()) == 1


def test_a_send_gives_up_after_the_last_attempt_and_shows_in_admin(
    conversation: Conversation, fake_graph: FakeGraph, run_worker: Callable[[], None]
) -> None:
    message = message_send(conversation=conversation, text="Olá, Maria!").message

    with database_fails(READ_ACCOUNT, times=MAX_ATTEMPTS):
        for _ in range(MAX_ATTEMPTS):
            run_worker()
            make_due()

    assert [r.status for r in runs(SEND)] == ["FAILED"] * MAX_ATTEMPTS
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert fake_graph.sent() == []
    message.refresh_from_db()
    assert message.status == "pending"  # not failed: Meta never refused it
    assert_failed_in_admin(SEND)


# --- Downloading media ---------------------------------------------------------------


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def image_message(account: WhatsAppAccount) -> Message:
    message = message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        kind=Message.Kind.IMAGE,
        external_id="wamid.RETRY.IMAGE",
        media_id=MEDIA_ID,
        media_mime_type="image/jpeg",
        payload={"image": {"id": MEDIA_ID, "mime_type": "image/jpeg"}},
    ).message
    enqueue(download_media, message.pk)  # as the webhook does
    return message


def script_media(fake: FakeGraph, settings: Any, *, runs: int) -> None:
    """Meta answers the media id's look-up ``runs`` times (each run asks once)."""
    for _ in range(runs):
        _script_media(fake, settings)


def stored_files(settings: Any) -> list[Path]:
    return sorted(p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file())


def test_a_database_error_storing_the_media_is_retried_and_the_file_kept_once(
    image_message: Message,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
    settings: Any,
) -> None:
    script_media(fake_graph, settings, runs=2)
    assert [r.task_path for r in runs(DOWNLOAD)] == [DOWNLOAD]
    before = timezone.now()

    with database_fails(STORE_MEDIA):
        run_worker()

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert "media_error" not in image_message.payload
    # The bytes no message points at are not left on the disk.
    assert stored_files(settings) == []
    failed, retry = runs(DOWNLOAD)
    assert_retry_waits(failed, retry, before)

    make_due()
    run_worker()

    image_message.refresh_from_db()
    assert image_message.media_file
    [stored] = stored_files(settings)
    assert stored.read_bytes() == JPEG
    assert stored.as_posix().endswith(image_message.media_file)
    assert [r.status for r in runs(DOWNLOAD)] == ["FAILED", "SUCCESSFUL"]


def test_a_download_gives_up_after_the_last_attempt_and_shows_in_admin(
    image_message: Message,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
    settings: Any,
) -> None:
    script_media(fake_graph, settings, runs=MAX_ATTEMPTS)

    with database_fails(STORE_MEDIA, times=MAX_ATTEMPTS):
        for _ in range(MAX_ATTEMPTS):
            run_worker()
            make_due()

    assert [r.status for r in runs(DOWNLOAD)] == ["FAILED"] * MAX_ATTEMPTS
    assert not DBTaskResult.objects.filter(status="READY").exists()
    assert stored_files(settings) == []
    assert_failed_in_admin(DOWNLOAD)

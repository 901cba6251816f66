"""Failed background tasks: retried with backoff when the failure may pass,
visible in admin with their error when they give up, retried from there by
hand, and put back in the queue when their worker died."""

from __future__ import annotations

import logging
import signal
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import structlog
from django.contrib.admin.models import CHANGE, LogEntry
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError, connection
from django.test import Client, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone, translation
from django_tasks_db.models import DBTaskResult
from structlog.testing import capture_logs

from accounts import services as accounts_services
from accounts.models import User
from ispsupport.tasks import (
    MAX_CLAIMS,
    Retry,
    background_task,
    enqueue,
    tasks_requeue_stuck,
)

PASSWORD = "Senha-Forte-123"
LIST = "/admin/django_tasks_database/dbtaskresult/"
IMMEDIATE = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default"],
    }
}
HERE = __name__

# What the tasks below did in this process, and how often each key still fails.
CALLS: list[str] = []
FAILURES_LEFT: dict[str, int] = {}


def _maybe_fail(key: str) -> str:
    CALLS.append(key)
    if FAILURES_LEFT.get(key, 0) > 0:
        FAILURES_LEFT[key] -= 1
        raise OperationalError("the database system is starting up")
    return f"ok:{key}"


@background_task(retry=Retry(on=(OperationalError,), max_attempts=3, base_delay=0))
def flaky(key: str) -> str:
    """Fails with a database error while FAILURES_LEFT[key] > 0; retried at once."""
    return _maybe_fail(key)


@background_task(retry=Retry(on=(OperationalError,), max_attempts=4))
def flaky_with_backoff(key: str) -> str:
    return _maybe_fail(key)


@background_task(retry=Retry(on=(OperationalError,), max_attempts=3, base_delay=0))
def wrong(text: str) -> None:
    """A bug, not a passing failure: never retried by itself."""
    CALLS.append(text)
    raise ValueError(text)


@background_task()
def recoverable(key: str) -> str:
    """No automatic retry: fails while FAILURES_LEFT[key] > 0, for the admin to retry."""
    return _maybe_fail(key)


@background_task()
def exits() -> None:
    raise SystemExit(3)


@pytest.fixture(autouse=True)
def _clean_slate() -> Iterator[None]:
    CALLS.clear()
    FAILURES_LEFT.clear()
    structlog.contextvars.clear_contextvars()
    yield
    CALLS.clear()
    FAILURES_LEFT.clear()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def run_worker() -> Iterator[Callable[..., None]]:
    """``manage.py worker --batch`` here: every ready task, then exit. The
    command installs its own signal handlers; the test process gets its own back."""
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    loggers = {name: logging.getLogger(name).level for name in ("django_tasks", "django_tasks_db")}

    def run(*extra: str) -> None:
        call_command("worker", "--batch", "--no-startup-delay", *extra, verbosity=0)

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)


def rows() -> list[DBTaskResult]:
    return list(DBTaskResult.objects.order_by("enqueued_at"))


def kwargs_of(result: DBTaskResult) -> dict[str, Any]:
    return dict(result.args_kwargs["kwargs"])


# --- Automatic retries with backoff ------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_passing_failure_is_retried_until_the_task_works(
    run_worker: Callable[..., None],
) -> None:
    FAILURES_LEFT["plano"] = 2
    with structlog.contextvars.bound_contextvars(request_id="req-7c1d"):
        enqueue(flaky, "plano")

    with capture_logs() as logs:
        run_worker()

    first, second, third = rows()
    assert [r.status for r in rows()] == ["FAILED", "FAILED", "SUCCESSFUL"]
    assert CALLS == ["plano", "plano", "plano"]
    assert third.return_value == "ok:plano"
    # Each failed run keeps its own error; each retry says which run it retries.
    for failed in (first, second):
        assert failed.exception_class_path == "django.db.utils.OperationalError"
        assert "the database system is starting up" in failed.traceback
    assert first.args_kwargs == {"args": ["plano"], "kwargs": {"request_id": "req-7c1d"}}
    assert second.args_kwargs == {
        "args": ["plano"],
        "kwargs": {"request_id": "req-7c1d", "retry_of": str(first.pk), "task_attempt": 2},
    }
    assert kwargs_of(third) == {
        "request_id": "req-7c1d",
        "retry_of": str(second.pk),
        "task_attempt": 3,
    }
    scheduled = [e for e in logs if e["event"] == "task_retry_scheduled"]
    assert [(e["attempt"], e["next_attempt"], e["error"]) for e in scheduled] == [
        (1, 2, "OperationalError"),
        (2, 3, "OperationalError"),
    ]
    assert all(e["task_path"] == f"{HERE}.flaky" for e in scheduled)


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_after_max_attempts_and_says_so(run_worker: Callable[..., None]) -> None:
    FAILURES_LEFT["fatura"] = 10
    enqueue(flaky, "fatura")

    with capture_logs() as logs:
        run_worker()

    assert [r.status for r in rows()] == ["FAILED", "FAILED", "FAILED"]
    assert CALLS == ["fatura"] * 3
    [gave_up] = [e for e in logs if e["event"] == "task_gave_up"]
    assert (gave_up["attempts"], gave_up["error"], gave_up["log_level"]) == (
        3,
        "OperationalError",
        "error",
    )
    # The message of the error is not logged: it may quote customer data.
    assert "starting up" not in str(logs)


@pytest.mark.django_db(transaction=True)
def test_the_next_attempt_waits_its_backoff(run_worker: Callable[..., None]) -> None:
    FAILURES_LEFT["lento"] = 1
    enqueue(flaky_with_backoff, "lento")
    before = timezone.now()

    run_worker()

    failed, waiting = rows()
    assert (failed.status, waiting.status) == ("FAILED", "READY")
    # Attempt 1 failed: the second waits 1-2 s (2 s, with jitter down to half).
    assert before + timedelta(seconds=1) <= waiting.run_after
    assert waiting.run_after <= timezone.now() + timedelta(seconds=2)
    assert CALLS == ["lento"]

    DBTaskResult.objects.filter(pk=waiting.pk).update(run_after=timezone.now())
    run_worker()

    waiting.refresh_from_db()
    assert (waiting.status, waiting.return_value) == ("SUCCESSFUL", "ok:lento")


def test_the_backoff_grows_exponentially_up_to_its_cap() -> None:
    policy = Retry(base_delay=2, max_delay=60)

    for attempt, ceiling in [(1, 2), (2, 4), (3, 8), (5, 32), (6, 60), (20, 60)]:
        delays = [policy.delay(attempt) for _ in range(50)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (attempt, delays)
    with pytest.raises(ValueError, match="max_attempts"):
        Retry(max_attempts=0)


@pytest.mark.django_db(transaction=True)
def test_a_bug_is_not_retried(run_worker: Callable[..., None]) -> None:
    enqueue(wrong, "campo inválido")

    run_worker()

    [failed] = rows()
    assert failed.status == "FAILED"
    assert failed.exception_class_path == "builtins.ValueError"
    assert CALLS == ["campo inválido"]


@pytest.mark.django_db(transaction=True)
@override_settings(TASKS=IMMEDIATE)
def test_the_immediate_backend_retries_at_once() -> None:
    FAILURES_LEFT["já"] = 2

    enqueue(flaky, "já")

    assert CALLS == ["já", "já", "já"]
    assert DBTaskResult.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_a_task_that_exits_is_recorded_as_failed_and_the_worker_goes_on(
    run_worker: Callable[..., None],
) -> None:
    enqueue(exits)
    enqueue(recoverable, "depois")

    run_worker()

    exited, after = rows()
    assert (exited.status, exited.exception_class_path) == ("FAILED", "builtins.SystemExit")
    assert after.status == "SUCCESSFUL"


# --- Admin: seeing failures and retrying them -------------------------------------------


@pytest.fixture
def helpdesk_admin(db: None) -> User:
    return accounts_services.user_create(
        username="ana.admin", password=PASSWORD, role=User.Role.ADMIN, name="Ana"
    )


@pytest.fixture
def admin_client(helpdesk_admin: User) -> Client:
    client = Client(headers={"Accept-Language": "en"})
    client.force_login(helpdesk_admin)
    return client


def failed_row(task_path: str = f"{HERE}.recoverable", *args: Any, **values: Any) -> DBTaskResult:
    """A row as the worker leaves a failed run."""
    now = timezone.now()
    fields: dict[str, Any] = {
        "task_path": task_path,
        "args_kwargs": {"args": list(args), "kwargs": {"request_id": "req-orig"}},
        "backend_name": "default",
        "status": "FAILED",
        "started_at": now,
        "finished_at": now,
        "worker_ids": ["w1"],
        "exception_class_path": "django.db.utils.OperationalError",
        "traceback": "Traceback (most recent call last):\nOperationalError: server closed\n",
    }
    return DBTaskResult.objects.create(**{**fields, **values})


def listed(response: Any) -> list[DBTaskResult]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def flashed(response: Any) -> list[tuple[str, str]]:
    return [(m.level_tag, str(m)) for m in response.context["messages"]]


def retry(client: Client, *results: DBTaskResult) -> Any:
    return client.post(
        LIST,
        {"action": "retry_failed", "_selected_action": [str(r.pk) for r in results]},
        follow=True,
    )


def test_a_failed_task_shows_its_error_escaped(admin_client: Client, db: None) -> None:
    hostile = "<script>alert(1)</script>"
    result = failed_row(
        f"{HERE}.wrong",
        hostile,
        exception_class_path="builtins.ValueError",
        traceback=f"Traceback (most recent call last):\nValueError: {hostile}\n",
    )

    page = admin_client.get(f"{LIST}{result.pk}/change/")
    listing = admin_client.get(LIST)

    html = page.content.decode()
    assert page.status_code == 200
    assert "<script>alert(1)" not in html
    assert "ValueError: &lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "builtins.ValueError" in html
    assert f"{HERE}.wrong" in html
    assert "Retry selected failed tasks" in listing.content.decode()
    [shown] = listed(listing)
    assert shown == result
    row = listing.content.decode()
    assert 'title="builtins.ValueError">ValueError</span>' in row
    assert "<script>alert(1)" not in row


def test_the_list_filters_by_status_task_and_retried(admin_client: Client, db: None) -> None:
    failed = failed_row()
    retried = failed_row()
    retry_row = DBTaskResult.objects.create(
        task_path=f"{HERE}.recoverable",
        args_kwargs={"args": [], "kwargs": {"retry_of": str(retried.pk)}},
        backend_name="default",
    )
    other = failed_row(f"{HERE}.wrong")
    # Not a link anybody wrote: ignored, never an error page.
    odd = failed_row(f"{HERE}.wrong", status="SUCCESSFUL")
    DBTaskResult.objects.filter(pk=odd.pk).update(
        args_kwargs={"args": [], "kwargs": {"retry_of": "not-a-uuid"}}
    )

    assert set(listed(admin_client.get(LIST, {"status__exact": "FAILED"}))) == {
        failed,
        retried,
        other,
    }
    assert listed(admin_client.get(LIST, {"status__exact": "READY"})) == [retry_row]
    assert set(listed(admin_client.get(LIST, {"status__exact": "FAILED", "retried": "no"}))) == {
        failed,
        other,
    }
    assert listed(admin_client.get(LIST, {"retried": "yes"})) == [retried]
    assert set(listed(admin_client.get(LIST, {"task_path": f"{HERE}.wrong"}))) == {other, odd}
    assert set(listed(admin_client.get(LIST, {"q": "wrong"}))) == {other, odd}
    assert set(listed(admin_client.get(LIST, {"q": str(retried.pk)}))) == {retried, retry_row}
    assert listed(admin_client.get(LIST, {"q": "zzz-nada-zzz"})) == []
    titles = [str(spec.title) for spec in admin_client.get(LIST).context["cl"].filter_specs]
    assert titles == ["status", "retried", "task path", "queue name"]


@pytest.mark.django_db(transaction=True)
def test_retry_enqueues_only_failed_tasks_and_keeps_history(
    admin_client: Client, helpdesk_admin: User, run_worker: Callable[..., None]
) -> None:
    FAILURES_LEFT["boleto"] = 1
    enqueue(recoverable, "boleto")
    enqueue(recoverable, "ok")
    run_worker()
    failed, done = rows()
    assert (failed.status, done.status) == ("FAILED", "SUCCESSFUL")
    before = DBTaskResult.objects.filter(pk=failed.pk).values().get()

    response = retry(admin_client, failed, done)

    assert flashed(response) == [
        ("success", "1 failed task enqueued again."),
        ("warning", "1 task skipped: only failed tasks are retried."),
    ]
    # The failed run is history: unchanged.
    assert DBTaskResult.objects.filter(pk=failed.pk).values().get() == before
    [new] = DBTaskResult.objects.filter(status="READY")
    assert new.task_path == failed.task_path
    assert new.args_kwargs == {
        "args": ["boleto"],
        "kwargs": {
            "request_id": failed.args_kwargs["kwargs"]["request_id"],
            "retry_of": str(failed.pk),
        },
    }
    [entry] = LogEntry.objects.filter(object_id=str(failed.pk))
    assert (entry.user, entry.action_flag) == (helpdesk_admin, CHANGE)
    assert entry.get_change_message() == f"Retried as task {new.pk}."
    # Both ways of the link are shown.
    old_page = admin_client.get(f"{LIST}{failed.pk}/change/").content.decode()
    new_page = admin_client.get(f"{LIST}{new.pk}/change/").content.decode()
    assert f'href="{LIST}{new.pk}/change/"' in old_page
    assert f'href="{LIST}{failed.pk}/change/"' in new_page

    run_worker()

    new.refresh_from_db()
    assert (new.status, new.return_value) == ("SUCCESSFUL", "ok:boleto")
    assert CALLS == ["boleto", "ok", "boleto"]


def test_a_task_is_retried_once(admin_client: Client, db: None) -> None:
    failed = failed_row(f"{HERE}.recoverable", "x")
    retry(admin_client, failed)

    again = retry(admin_client, failed)

    assert flashed(again) == [("warning", "1 task skipped: it was already retried.")]
    assert DBTaskResult.objects.filter(status="READY").count() == 1


def test_a_failure_retried_automatically_is_not_retried_again_by_hand(
    admin_client: Client, db: None
) -> None:
    failed = failed_row()
    DBTaskResult.objects.create(
        task_path=failed.task_path,
        args_kwargs={"args": [], "kwargs": {"retry_of": str(failed.pk), "task_attempt": 2}},
        backend_name="default",
    )

    response = retry(admin_client, failed)

    assert flashed(response) == [("warning", "1 task skipped: it was already retried.")]
    listing = admin_client.get(LIST, {"status__exact": "FAILED"})
    [shown] = listed(listing)
    assert shown.retried_as_id is not None


def test_a_task_that_can_no_longer_run_is_reported(admin_client: Client, db: None) -> None:
    gone = failed_row("ispsupport.removed_module.old_task")
    moved = failed_row(queue_name="removed-queue")

    response = retry(admin_client, gone, moved)

    assert flashed(response) == [
        ("error", "2 tasks not retried: their code, queue or backend no longer exists.")
    ]
    assert DBTaskResult.objects.count() == 2
    assert admin_client.get(LIST).status_code == 200
    assert admin_client.get(f"{LIST}{gone.pk}/change/").status_code == 200


def test_enqueue_returns_the_database_row(db: None) -> None:
    result = enqueue(recoverable, "x")

    assert result is not None
    [row] = DBTaskResult.objects.all()
    assert uuid.UUID(result.id) == row.pk
    assert row.status == "READY"


def test_the_list_stays_at_a_constant_number_of_queries(admin_client: Client, db: None) -> None:
    def grow(n: int) -> None:
        for _ in range(n):
            old = failed_row()
            DBTaskResult.objects.create(
                task_path=old.task_path,
                args_kwargs={"args": [], "kwargs": {"retry_of": str(old.pk)}},
                backend_name="default",
            )

    grow(2)
    admin_client.get(LIST)
    with CaptureQueriesContext(connection) as few:
        first = listed(admin_client.get(LIST))
    grow(20)

    with CaptureQueriesContext(connection) as many:
        second = listed(admin_client.get(LIST))

    assert len(second) > len(first)
    assert len(many.captured_queries) == len(few.captured_queries)


def test_results_are_read_only_even_for_admins(admin_client: Client, db: None) -> None:
    result = failed_row()

    assert admin_client.get(f"{LIST}add/").status_code == 403
    assert admin_client.post(f"{LIST}{result.pk}/delete/", {"post": "yes"}).status_code == 403
    edit = admin_client.post(f"{LIST}{result.pk}/change/", {"status": "SUCCESSFUL"})
    assert edit.status_code == 403
    result.refresh_from_db()
    assert result.status == "FAILED"
    actions = admin_client.get(LIST).context["action_form"].fields["action"].choices
    assert [name for name, _ in actions if name] == ["retry_failed"]


def test_console_users_cannot_see_or_retry_tasks(db: None) -> None:
    result = failed_row()
    agent = accounts_services.user_create(
        username="bruno.agente", password=PASSWORD, role=User.Role.AGENT
    )
    staff_only = User.objects.create_user(username="so.staff", password=None, is_staff=True)

    for user, expected in ((agent, 302), (staff_only, 403)):
        client = Client()
        client.force_login(user)
        assert client.get(LIST).status_code == expected
        assert client.get(f"{LIST}{result.pk}/change/").status_code == expected
        posted = client.post(LIST, {"action": "retry_failed", "_selected_action": [str(result.pk)]})
        assert posted.status_code == expected
    assert DBTaskResult.objects.count() == 1


# --- Tasks left RUNNING by a dead worker -------------------------------------------------


def running_row(*, minutes_ago: float, claims: int = 1) -> DBTaskResult:
    row = DBTaskResult.objects.create(
        task_path=f"{HERE}.recoverable",
        args_kwargs={"args": ["preso"], "kwargs": {"request_id": None}},
        backend_name="default",
        status="RUNNING",
        worker_ids=[f"dead-{n}" for n in range(claims)],
    )
    started = timezone.now() - timedelta(minutes=minutes_ago)
    DBTaskResult.objects.filter(pk=row.pk).update(started_at=started)
    row.refresh_from_db()
    return row


def test_requeue_stuck_tasks_reports_then_acts(
    db: None, capsys: pytest.CaptureFixture[str]
) -> None:
    stuck = running_row(minutes_ago=40)
    busy = running_row(minutes_ago=2)
    poison = running_row(minutes_ago=40, claims=MAX_CLAIMS)

    call_command("requeue_stuck_tasks", "--older-than", "30m")

    dry = capsys.readouterr().out
    assert f"to requeue: {stuck.pk} {HERE}.recoverable" in dry
    assert f"to mark failed: {poison.pk} {HERE}.recoverable ({MAX_CLAIMS} workers died" in dry
    assert dry.rstrip().endswith(
        "2 task(s) running for more than 30m: 1 to requeue, 1 to mark failed; "
        "add --commit to do it."
    )
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"RUNNING"}

    # The reason stored on the task is written in the site's language.
    with translation.override("en"):
        call_command("requeue_stuck_tasks", "--older-than", "30m", "--commit")

    done = capsys.readouterr().out
    assert done.rstrip().endswith(
        "Requeued 1 and marked 1 failed of 2 task(s) running for more than 30m."
    )
    for row in (stuck, busy, poison):
        row.refresh_from_db()
    assert (stuck.status, stuck.started_at, stuck.worker_ids) == ("READY", None, ["dead-0"])
    assert busy.status == "RUNNING"
    assert poison.status == "FAILED"
    assert poison.exception_class_path == "ispsupport.tasks.TaskAbandoned"
    assert f"{MAX_CLAIMS} times" in poison.traceback
    assert poison.finished_at is not None


def test_requeue_stuck_tasks_refuses_a_vague_age(db: None) -> None:
    with pytest.raises(CommandError, match="invalid duration '30'"):
        call_command("requeue_stuck_tasks", "--older-than", "30")


def test_a_task_that_finished_meanwhile_keeps_its_outcome(db: None) -> None:
    stuck = running_row(minutes_ago=40)
    report = tasks_requeue_stuck(older_than=timedelta(minutes=30), commit=False)
    # The slow worker records its outcome between the read and the write.
    DBTaskResult.objects.filter(pk=stuck.pk).update(status="SUCCESSFUL")

    tasks_requeue_stuck(older_than=timedelta(minutes=30))

    stuck.refresh_from_db()
    assert [r.pk for r in report.requeued] == [stuck.pk]
    assert stuck.status == "SUCCESSFUL"


@pytest.mark.django_db(transaction=True)
def test_the_worker_requeues_stuck_tasks_by_itself(run_worker: Callable[..., None]) -> None:
    stuck = running_row(minutes_ago=20)

    run_worker("--requeue-stuck-after", "15m")

    stuck.refresh_from_db()
    assert (stuck.status, stuck.return_value) == ("SUCCESSFUL", "ok:preso")
    assert len(stuck.worker_ids) == 2

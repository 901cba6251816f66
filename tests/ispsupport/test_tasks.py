from __future__ import annotations

import logging
import re
import signal
from collections.abc import Callable, Iterator

import pytest
import structlog
from django.core.management import call_command
from django.db import transaction
from django.test import override_settings
from django_tasks_db.models import DBTaskResult

from ispsupport.tasks import current_request_id, enqueue
from tests.ispsupport.sample_tasks import RAN, echo, fail, report_request_id

IMMEDIATE = {
    "default": {
        "BACKEND": "django_tasks.backends.immediate.ImmediateBackend",
        "QUEUES": ["default"],
    }
}
FRESH_ID = r"[0-9a-f]{32}"


class RolledBack(Exception):
    pass


@pytest.fixture(autouse=True)
def _clean_slate() -> Iterator[None]:
    RAN.clear()
    structlog.contextvars.clear_contextvars()
    yield
    RAN.clear()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def run_worker() -> Iterator[Callable[[], None]]:
    """Run ``db_worker --batch`` here: it runs every ready task, then exits.

    The command installs its own signal handlers and logger levels; put the
    test process's back afterwards.
    """
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    loggers = {name: logging.getLogger(name).level for name in ("django_tasks", "django_tasks_db")}

    def run() -> None:
        call_command("db_worker", "--batch", "--no-startup-delay", verbosity=0)

    yield run
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_enqueue_leaves_nothing_to_run(run_worker: Callable[[], None]) -> None:
    with pytest.raises(RolledBack), transaction.atomic():
        enqueue(echo, "plano alterado")
        # Written in the caller's transaction, so it shares its fate.
        assert DBTaskResult.objects.count() == 1
        raise RolledBack

    assert DBTaskResult.objects.count() == 0
    run_worker()
    assert RAN == []


@pytest.mark.django_db(transaction=True)
def test_a_committed_task_waits_in_the_database_for_a_worker(
    run_worker: Callable[[], None],
) -> None:
    with transaction.atomic():
        enqueue(echo, "plano alterado")

    [waiting] = DBTaskResult.objects.all()
    assert RAN == []
    assert waiting.status == "READY"
    assert waiting.task_path == "tests.ispsupport.sample_tasks.echo"
    assert waiting.queue_name == "default"
    assert waiting.args_kwargs == {"args": ["plano alterado"], "kwargs": {"request_id": None}}
    assert waiting.finished_at is None

    run_worker()

    waiting.refresh_from_db()
    assert waiting.status == "SUCCESSFUL"
    assert waiting.return_value == "plano alterado"
    assert waiting.started_at is not None
    assert waiting.finished_at >= waiting.started_at
    assert len(waiting.worker_ids) == 1
    assert RAN == ["plano alterado"]


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_each_task_once(run_worker: Callable[[], None]) -> None:
    for value in ("um", "dois", "três"):
        enqueue(echo, value)

    run_worker()
    run_worker()

    assert sorted(RAN) == ["dois", "três", "um"]
    assert set(DBTaskResult.objects.values_list("status", flat=True)) == {"SUCCESSFUL"}


@pytest.mark.django_db(transaction=True)
def test_a_failing_task_is_recorded_as_failed(run_worker: Callable[[], None]) -> None:
    enqueue(fail, "provedor fora do ar")

    run_worker()

    [failed] = DBTaskResult.objects.all()
    assert failed.status == "FAILED"
    assert failed.exception_class_path == "builtins.ValueError"
    assert failed.traceback.rstrip().endswith("ValueError: provedor fora do ar")
    assert failed.return_value is None


@pytest.mark.django_db(transaction=True)
def test_the_task_logs_with_the_request_id_that_enqueued_it(
    run_worker: Callable[[], None],
) -> None:
    with structlog.contextvars.bound_contextvars(request_id="req-4f2a"):
        enqueue(report_request_id)

    run_worker()

    [done] = DBTaskResult.objects.all()
    assert done.args_kwargs["kwargs"] == {"request_id": "req-4f2a"}
    assert done.return_value == "req-4f2a"
    # The task's id does not leak into whatever the worker does next.
    assert current_request_id() is None


@pytest.mark.django_db(transaction=True)
def test_a_task_enqueued_outside_a_request_gets_its_own_id(
    run_worker: Callable[[], None],
) -> None:
    enqueue(report_request_id)

    run_worker()

    [done] = DBTaskResult.objects.all()
    assert done.args_kwargs["kwargs"] == {"request_id": None}
    assert re.fullmatch(FRESH_ID, done.return_value)


@pytest.mark.django_db(transaction=True)
@override_settings(TASKS=IMMEDIATE)
def test_the_immediate_backend_waits_for_the_commit() -> None:
    with (
        structlog.contextvars.bound_contextvars(request_id="req-imm"),
        transaction.atomic(),
    ):
        enqueue(echo, "depois do commit")
        enqueue(report_request_id)
        assert RAN == []

    assert RAN == ["depois do commit", "request_id=req-imm"]
    assert DBTaskResult.objects.count() == 0


@pytest.mark.django_db(transaction=True)
@override_settings(TASKS=IMMEDIATE)
def test_the_immediate_backend_never_runs_a_rolled_back_task() -> None:
    with pytest.raises(RolledBack), transaction.atomic():
        enqueue(echo, "nunca")
        raise RolledBack

    assert RAN == []

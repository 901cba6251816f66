"""The task worker behind ``manage.py worker``: django-tasks-db's database
queue, run so that a stop never loses a task.

django-tasks-db's own ``db_worker`` (0.13) finishes its task on one SIGTERM,
but a second signal (Ctrl-C at a terminal reaches the worker and then
``scripts/serve`` sends SIGTERM) raises ``SystemExit`` inside the task, which
is recorded as the task's failure and never retried, and the worker still
exits 0. With ``--reload`` (its default when ``DEBUG``) a SIGTERM kills the
child outright. And a task whose worker was killed stays ``RUNNING`` forever.

Here:

- the first SIGTERM/SIGINT/SIGQUIT only asks the worker to stop: the task
  running finishes and is recorded, nothing new is claimed, and the worker
  exits 0 (at once when idle);
- a second one interrupts the task and puts it back in the queue (READY, for
  the next worker), and the worker exits 1; a third one kills the process;
- a signal the worker inherited as ignored (a shell's background job ignores
  SIGINT) stays ignored, so Ctrl-C at ``make run`` leaves the stop to the
  script's single SIGTERM;
- database errors while looking for work are logged and waited out, not fatal;
- every minute, tasks left ``RUNNING`` longer than ``requeue_stuck_after`` by a
  dead worker are put back in the queue (``ispsupport.tasks.tasks_requeue_stuck``).
"""

from __future__ import annotations

import contextlib
import random
import signal
import time
from datetime import timedelta
from types import FrameType

import structlog
from django.core.exceptions import SuspiciousOperation
from django.db import DatabaseError, close_old_connections
from django.db.utils import OperationalError
from django_tasks.base import TaskContext, TaskResultStatus
from django_tasks.signals import task_finished, task_started
from django_tasks_db.management.commands.db_worker import Worker as DBWorker
from django_tasks_db.models import DBTaskResult
from django_tasks_db.utils import exclusive_transaction, is_locked_database_exception

from ispsupport.tasks import tasks_requeue_stuck

logger = structlog.get_logger(__name__)

STOP_SIGNALS = tuple(
    sig for sig in (signal.SIGTERM, signal.SIGINT, getattr(signal, "SIGQUIT", None)) if sig
)
# Idle sleeps are cut in slices this long, so a stop while idle is prompt.
SLICE_SECONDS = 0.1
REQUEUE_EVERY_SECONDS = 60.0


class ForcedStop(BaseException):
    """Raised inside a running task by a second stop signal.

    A BaseException, so that the task's ``except Exception`` does not swallow
    it, while ``transaction.atomic`` still rolls back what the task had begun.
    """


class Worker(DBWorker):
    """django-tasks-db's worker with the stop rules above."""

    def __init__(self, *, requeue_stuck_after: timedelta | None = None, **kwargs: object) -> None:
        super().__init__(**kwargs)  # type: ignore[arg-type]
        self.requeue_stuck_after = requeue_stuck_after
        self.signals_received = 0
        self.forced = False
        self.released: list[str] = []
        self._in_task_body = False
        self._handled: list[int] = []
        self._next_requeue = 0.0

    # --- Signals -----------------------------------------------------------------------

    def configure_signals(self) -> None:
        self._handled = []
        for sig in STOP_SIGNALS:
            if signal.getsignal(sig) is signal.SIG_IGN:
                # Whoever started us wants this signal ignored (POSIX shells do
                # so for background jobs); catching it would break their plan.
                continue
            signal.signal(sig, self.shutdown)
            self._handled.append(sig)

    def reset_signals(self) -> None:
        for sig in self._handled:
            signal.signal(sig, signal.SIG_DFL)

    def shutdown(self, signum: int, frame: FrameType | None) -> None:
        self.signals_received += 1
        name = signal.Signals(signum).name
        self.running = False
        if self.signals_received == 1:
            self._log_from_handler("worker_stopping", signal=name, running_task=self.running_task)
            return
        # Second signal: stop now, without losing the task. A third one gets
        # the default action (the process ends), as a last resort.
        self.forced = True
        self.reset_signals()
        self._log_from_handler("worker_stopping_now", signal=name)
        if self._in_task_body:
            raise ForcedStop

    def _log_from_handler(self, event: str, **values: object) -> None:
        # The handler may interrupt a write to the same stream, which Python
        # refuses with RuntimeError; that must not fail the task being run.
        with contextlib.suppress(Exception):
            logger.warning(event, worker_id=self.worker_id, **values)

    # --- The loop ------------------------------------------------------------------------

    def run(self) -> None:
        logger.info(
            "worker_started",
            worker_id=self.worker_id,
            queues=",".join(self.queue_names),
            requeue_stuck_after_seconds=(
                self.requeue_stuck_after.total_seconds() if self.requeue_stuck_after else None
            ),
        )
        if self.startup_delay and self.interval:
            # A small random delay, so that workers started together do not
            # all poll at once.
            self._sleep(random.random())  # noqa: S311 - jitter, not a secret

        while self.running:
            close_old_connections()
            self._requeue_stuck()
            try:
                task_result, looked = self._claim_next()
            except DatabaseError as exc:
                # The database is restarting or unreachable: wait and look
                # again; nothing was claimed, so nothing can be lost.
                logger.warning(
                    "worker_database_error", worker_id=self.worker_id, error=type(exc).__name__
                )
                close_old_connections()
                self._sleep(max(self.interval, 1.0))
                continue

            if task_result is not None:
                self.run_task(task_result)

            if self.batch and looked and task_result is None:
                logger.info("worker_batch_done", worker_id=self.worker_id)
                break
            if self.max_tasks is not None and self._run_tasks >= self.max_tasks:
                logger.info("worker_max_tasks_done", worker_id=self.worker_id, ran=self._run_tasks)
                break
            close_old_connections()
            if task_result is None:
                self._sleep(self.interval)

        logger.info(
            "worker_stopped",
            worker_id=self.worker_id,
            ran=self._run_tasks,
            forced=self.forced,
            released=len(self.released),
        )

    def _sleep(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while self.running and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(SLICE_SECONDS, left))

    def _claim_next(self) -> tuple[DBTaskResult | None, bool]:
        tasks = DBTaskResult.objects.ready().filter(backend_name=self.backend_name)
        if not self.process_all_queues:
            tasks = tasks.filter(queue_name__in=self.queue_names)
        if self.excluded_queue_names:
            tasks = tasks.exclude(queue_name__in=self.excluded_queue_names)
        try:
            with exclusive_transaction(tasks.db):
                task_result = tasks.get_locked()
                if task_result is not None:
                    task_result.claim(self.worker_id)
        except OperationalError as exc:
            if is_locked_database_exception(exc):
                # SQLite busy with another writer: it unlocks soon.
                return None, False
            raise
        return task_result, True

    def _requeue_stuck(self) -> None:
        if self.requeue_stuck_after is None or time.monotonic() < self._next_requeue:
            return
        self._next_requeue = time.monotonic() + REQUEUE_EVERY_SECONDS
        try:
            tasks_requeue_stuck(older_than=self.requeue_stuck_after)
        except DatabaseError as exc:
            logger.warning(
                "worker_requeue_stuck_failed", worker_id=self.worker_id, error=type(exc).__name__
            )

    # --- One task ------------------------------------------------------------------------

    def run_task(self, db_task_result: DBTaskResult) -> None:
        """Run one claimed task and record how it ended (as db_worker does),
        except that a forced stop puts it back in the queue instead."""
        self.running_task = True
        try:
            if self.forced:
                self._release(db_task_result)
                return
            try:
                task = db_task_result.task
                task_result = db_task_result.task_result
                backend_type = task.get_backend()
                task_started.send(sender=backend_type, task_result=task_result)
                self._in_task_body = True
                try:
                    if self.forced:  # the second signal came before the body began
                        raise ForcedStop
                    if task.takes_context:
                        value = task.call(
                            TaskContext(task_result=task_result),
                            *task_result.args,
                            **task_result.kwargs,
                        )
                    else:
                        value = task.call(*task_result.args, **task_result.kwargs)
                finally:
                    self._in_task_body = False
                # Recorded inside the handler, so that a failure to record
                # (a value that is not JSON) is recorded as the task's failure.
                db_task_result.set_successful(value)
                task_finished.send(sender=backend_type, task_result=db_task_result.task_result)
            except ForcedStop:
                self._release(db_task_result)
            except BaseException as exc:
                # BaseException, as db_worker: a task calling sys.exit() is a
                # failed task, not a reason to leave its row RUNNING.
                self._record_failure(db_task_result, exc)
        except DatabaseError as exc:
            # The outcome could not be written: the row stays RUNNING and is
            # put back in the queue once it is older than requeue_stuck_after.
            logger.error(
                "worker_result_not_recorded",
                worker_id=self.worker_id,
                result_id=str(db_task_result.pk),
                error=type(exc).__name__,
            )
        finally:
            self.running_task = False
            self._run_tasks += 1

    def _record_failure(self, db_task_result: DBTaskResult, exc: BaseException) -> None:
        db_task_result.set_failed(exc)
        try:
            sender = type(db_task_result.task.get_backend())
            task_result = db_task_result.task_result
        except (ImportError, SuspiciousOperation):
            logger.exception("worker_task_not_importable", result_id=str(db_task_result.pk))
        else:
            task_finished.send(sender=sender, task_result=task_result)

    def _release(self, db_task_result: DBTaskResult) -> None:
        DBTaskResult.objects.filter(pk=db_task_result.pk, status=TaskResultStatus.RUNNING).update(
            status=TaskResultStatus.READY, started_at=None
        )
        self.released.append(str(db_task_result.pk))
        logger.warning(
            "worker_task_released",
            worker_id=self.worker_id,
            result_id=str(db_task_result.pk),
            task_path=db_task_result.task_path,
        )

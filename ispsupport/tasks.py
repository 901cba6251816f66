"""Background tasks on the Django tasks API (django-tasks, DEP 14).

``background_task`` declares a task that runs with the request id of the
request that enqueued it bound to its log lines; ``enqueue`` is how services
enqueue, so that a task never runs for a change that was rolled back and is
never lost for one that was committed.

Nothing is lost afterwards either:

- ``background_task(retry=Retry(...))`` runs a task again later, with backoff,
  when it fails for a passing reason (a database hiccup, an open breaker);
  ``retry_with(...)`` tells that retry what the failed run already did
  outside the database, so that it is not done twice;
- ``task_result_retry`` enqueues a failed task again by hand (the admin's
  "Retry" action), linking the new run to the old one;
- ``tasks_requeue_stuck`` puts back in the queue the tasks a killed worker left
  ``RUNNING`` (``manage.py requeue_stuck_tasks``, and ``manage.py worker`` on
  its own every minute).

A retried run carries two hidden keyword arguments, consumed by the wrapper
and never seen by the task: ``retry_of`` (the id of the result it retries) and
``task_attempt`` (2, 3, … for automatic retries). Both are stored in the
task row's ``args_kwargs``, which is how a result links to its retry without
changing the failed row.
"""

from __future__ import annotations

import contextvars
import functools
import random
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import pybreaker
import structlog
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import QuerySet, TextField, UUIDField, Value
from django.db.models.fields.json import KeyTextTransform, KeyTransform
from django.db.models.functions import Cast, Replace
from django.utils import timezone
from django.utils.module_loading import import_string
from django.utils.translation import gettext as _
from django_tasks import task
from django_tasks.base import Task, TaskResult, TaskResultStatus
from django_tasks.exceptions import InvalidTaskBackendError, InvalidTaskError
from django_tasks.signals import task_finished, task_started
from django_tasks_db import DatabaseBackend

from ispsupport.errors import ServiceError

if TYPE_CHECKING:
    from django_tasks_db.models import DBTaskResult

P = ParamSpec("P")
T = TypeVar("T")

logger = structlog.get_logger(__name__)

# Failures that usually pass on their own: the database restarting or
# refusing connections (psycopg's pool timeout arrives as OperationalError),
# a connection dropped mid-query, and a circuit breaker that is open for now.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    OperationalError,
    InterfaceError,
    pybreaker.CircuitBreakerError,
)

UUID_PATTERN = r"^[0-9a-fA-F]{8}-?([0-9a-fA-F]{4}-?){3}[0-9a-fA-F]{12}$"

# A task that was RUNNING when its worker died this many times is not put back
# again: it is probably what kills the worker (memory, a hung C call).
MAX_CLAIMS = 3


class TaskAbandoned(Exception):
    """Recorded on a task whose workers kept dying while running it."""


@dataclass(frozen=True)
class Retry:
    """How a task is run again after an exception of the types ``on``.

    Attempt ``n`` (1-based) that fails waits ``delay(n)`` seconds before the
    next one: exponential from ``base_delay``, capped at ``max_delay``, with
    jitter so that tasks that failed together do not all come back together.
    After ``max_attempts`` the failure stays recorded (visible in admin, with
    its traceback and a "Retry" action).
    """

    on: tuple[type[BaseException], ...] = field(default=TRANSIENT_ERRORS)
    max_attempts: int = 5
    base_delay: float = 2.0
    max_delay: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("Retry.max_attempts must be at least 1")
        if self.base_delay < 0 or self.max_delay < 0:
            raise ValueError("Retry delays cannot be negative")

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2 ** max(attempt - 1, 0))
        return random.uniform(ceiling / 2, ceiling)  # noqa: S311 - jitter, not a secret


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


# The id of the task result being run in this thread, set from the backends'
# task_started signal (both the database worker and the immediate backend send
# it right before calling the task).
_current_result_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "ispsupport_task_result_id", default=None
)


def current_task_result_id() -> str | None:
    """The id of the task result running now, or None outside a task."""
    return _current_result_id.get()


# Keyword arguments that this run's automatic retry must carry (``retry_with``).
_retry_overrides: contextvars.ContextVar[dict[str, Any] | None] = contextvars.ContextVar(
    "ispsupport_task_retry_overrides", default=None
)


def retry_with(**kwargs: Any) -> None:
    """Should this run end in an exception that ``Retry`` retries, run the
    retry with ``kwargs`` too (replacing arguments of the same name).

    For what happened outside the database before a database error struck
    and must not happen again: once Meta has accepted a message, the send
    task records its wamid here, so a retry stores it instead of sending
    the message a second time. Values must be JSON-serialisable. Outside a
    ``background_task`` run this does nothing.
    """
    overrides = _retry_overrides.get()
    if overrides is not None:
        overrides.update(kwargs)


def _on_task_started(sender: Any, task_result: TaskResult[Any], **kwargs: Any) -> None:
    _current_result_id.set(str(task_result.id))


def _on_task_finished(sender: Any, task_result: TaskResult[Any], **kwargs: Any) -> None:
    _current_result_id.set(None)


task_started.connect(_on_task_started, dispatch_uid="ispsupport-task-started")
task_finished.connect(_on_task_finished, dispatch_uid="ispsupport-task-finished")


def background_task(
    *, queue_name: str = "default", priority: int = 0, retry: Retry | None = None
) -> Callable[[Callable[P, T]], Task[P, T]]:
    """Declare a task; it accepts an extra ``request_id`` kwarg from ``enqueue``.

    With ``retry``, an exception of one of ``retry.on``'s types schedules the
    same call again (same arguments, same request id) after a backoff, up to
    ``retry.max_attempts`` runs; the failed run is still recorded as FAILED
    with its traceback. Only give ``retry`` to a task that is safe to run
    again after it raised: one that does its work in a transaction, or checks
    first whether it is already done.
    """

    def decorate(func: Callable[P, T]) -> Task[P, T]:
        declared: list[Task[P, T]] = []

        @functools.wraps(func)
        def run(
            *args: Any,
            request_id: str | None = None,
            retry_of: str | None = None,
            task_attempt: int = 1,
            **kwargs: Any,
        ) -> T:
            request_id = request_id or uuid.uuid4().hex
            context: dict[str, Any] = {"request_id": request_id, "task": func.__qualname__}
            if task_attempt > 1:
                context["task_attempt"] = task_attempt
            if retry_of:
                context["retry_of"] = retry_of
            overrides: dict[str, Any] = {}
            token = _retry_overrides.set(overrides)
            with structlog.contextvars.bound_contextvars(**context):
                try:
                    return func(*args, **kwargs)
                except BaseException as exc:
                    if retry is not None and isinstance(exc, retry.on):
                        _retry_later(
                            declared[0],
                            retry,
                            exc,
                            args,
                            {**kwargs, **overrides},
                            request_id,
                            task_attempt,
                        )
                    raise
                finally:
                    _retry_overrides.reset(token)

        run.is_background_task = True  # type: ignore[attr-defined]
        declared.append(task(queue_name=queue_name, priority=priority)(run))  # type: ignore[arg-type]
        return declared[0]

    return decorate


def _retry_later(
    task_obj: Task[Any, Any],
    policy: Retry,
    exc: BaseException,
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
    request_id: str,
    attempt: int,
) -> None:
    path = task_obj.module_path
    error = type(exc).__name__  # never the message: it may quote customer data
    if attempt >= policy.max_attempts:
        logger.error("task_gave_up", task_path=path, attempts=attempt, error=error)
        return
    delay = policy.delay(attempt)
    scheduled = task_obj
    if task_obj.get_backend().supports_defer and delay > 0:
        scheduled = task_obj.using(run_after=timezone.now() + timedelta(seconds=delay))
    else:
        delay = 0.0  # the immediate backend cannot wait: it retries at once
    hidden: dict[str, Any] = {"request_id": request_id, "task_attempt": attempt + 1}
    if (result_id := current_task_result_id()) is not None:
        hidden["retry_of"] = result_id
    try:
        if not connection.in_atomic_block:
            # The failure may have been the connection itself; a fresh one
            # gives the retry its best chance of being written.
            connection.close_if_unusable_or_obsolete()
        enqueue(scheduled, *args, **kwargs, **hidden)
    except DatabaseError as enqueue_error:
        # The failed run stays recorded (or RUNNING, if even that cannot be
        # written, until requeue_stuck_tasks puts it back): not lost, only
        # not retried automatically.
        logger.error(
            "task_retry_not_scheduled",
            task_path=path,
            attempt=attempt,
            error=error,
            enqueue_error=type(enqueue_error).__name__,
        )
        return
    logger.warning(
        "task_retry_scheduled",
        task_path=path,
        attempt=attempt,
        next_attempt=attempt + 1,
        delay_seconds=round(delay, 2),
        error=error,
    )


def enqueue(task_obj: Task[..., Any], /, *args: Any, **kwargs: Any) -> TaskResult[Any] | None:
    """Enqueue ``task_obj`` as part of the caller's transaction.

    Returns the task result on the database backend; None on other backends,
    which enqueue only once the caller's transaction commits.
    """
    kwargs.setdefault("request_id", current_request_id())
    if isinstance(task_obj.get_backend(), DatabaseBackend):
        # The task row is written in the caller's transaction: it commits or
        # rolls back with the data it is about, so neither can exist alone.
        return task_obj.enqueue(*args, **kwargs)
    # Backends outside the database (the immediate one in tests) must wait
    # for the commit, or they would act on data that may still roll back.
    transaction.on_commit(functools.partial(task_obj.enqueue, *args, **kwargs))
    return None


# --- Failed and stuck task results ------------------------------------------------------


def result_attempt(result: DBTaskResult) -> int:
    """Which attempt ``result`` is: the automatic retry's counter, or the
    task's own ``attempt`` argument (the WhatsApp send and media tasks count
    their retries themselves), else 1."""
    kwargs = (result.args_kwargs or {}).get("kwargs") or {}
    for key in ("task_attempt", "attempt"):
        value = kwargs.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return 1


def result_retry_of(result: DBTaskResult) -> str | None:
    """The id of the result ``result`` retries, if it is a retry."""
    kwargs = (result.args_kwargs or {}).get("kwargs") or {}
    value = kwargs.get("retry_of")
    return str(value) if value else None


def results_retried_as(result_ids: Iterable[Any]) -> dict[str, str]:
    """{old result id: id of its retry} for those of ``result_ids`` that were
    retried, automatically or by hand. One query."""
    from django_tasks_db.models import DBTaskResult

    ids = [str(uuid.UUID(str(pk))) for pk in result_ids]
    if not ids:
        return {}
    retries = DBTaskResult.objects.filter(args_kwargs__kwargs__retry_of__in=ids).order_by(
        "enqueued_at"
    )
    # The first retry answers; a second one only exists if an old row was
    # retried before this rule (or by a race the lock below prevents).
    linked: dict[str, str] = {}
    for retry_id, old_id in retries.values_list("id", "args_kwargs__kwargs__retry_of"):
        linked.setdefault(str(old_id), str(retry_id))
    return linked


def retried_results() -> QuerySet[Any]:
    """The ids of every result that has a retry, as a subquery for ``pk__in``
    (the admin's "retried" filter), however many there are."""
    from django_tasks_db.models import DBTaskResult

    retry_of: Any = KeyTextTransform("retry_of", KeyTransform("kwargs", "args_kwargs"))
    if connection.features.has_native_uuid_field:
        as_pk: Any = Cast(retry_of, output_field=UUIDField())
    else:
        # SQLite and MySQL keep a UUID as its 32 hex digits, without dashes.
        as_pk = Replace(retry_of, Value("-"), Value(""), output_field=TextField())
    # Only well-formed ids: PostgreSQL's cast would fail the whole page on one bad value.
    linked = DBTaskResult.objects.filter(args_kwargs__kwargs__retry_of__regex=UUID_PATTERN)
    return linked.values_list(as_pk, flat=True)


@transaction.atomic
def task_result_retry(*, result: DBTaskResult) -> DBTaskResult:
    """Enqueue failed ``result``'s task again with the same arguments.

    The failed row is left as it is; the new row carries ``retry_of`` = its
    id, which is how the admin shows the link and refuses a second retry.
    Automatic retry counting starts again at 1. Raises ``ServiceError`` when
    the result did not fail, was already retried, or its task no longer exists.
    """
    from django_tasks_db.models import DBTaskResult

    # The lock makes two admins retrying the same row at once enqueue it once.
    locked = DBTaskResult.objects.select_for_update().filter(pk=result.pk).first()
    if locked is None or locked.status != TaskResultStatus.FAILED:
        raise ServiceError(_("Only failed tasks can be retried."), code="not_failed")
    if results_retried_as([locked.pk]):
        raise ServiceError(_("This task was already retried."), code="already_retried")
    try:
        task_obj = import_string(locked.task_path)
    except ImportError as exc:
        raise ServiceError(_("This task no longer exists."), code="task_missing") from exc
    if not isinstance(task_obj, Task):
        raise ServiceError(_("This task no longer exists."), code="task_missing")
    try:
        task_obj = task_obj.using(
            priority=locked.priority, queue_name=locked.queue_name, backend=locked.backend_name
        )
    except (InvalidTaskError, InvalidTaskBackendError) as exc:
        # Its queue or backend was removed from settings since it failed.
        raise ServiceError(_("This task can no longer be run."), code="task_missing") from exc
    if not isinstance(task_obj.get_backend(), DatabaseBackend):
        raise ServiceError(_("Only tasks of the database queue can be retried."), code="backend")
    stored = locked.args_kwargs or {}
    args = list(stored.get("args") or [])
    kwargs = {k: v for k, v in (stored.get("kwargs") or {}).items() if k != "task_attempt"}
    if getattr(task_obj.func, "is_background_task", False):
        kwargs["retry_of"] = str(uuid.UUID(str(locked.pk)))
        # The original request id stays: the retry's log lines join its story.
        new = enqueue(task_obj, *args, **kwargs)
    else:
        new = task_obj.enqueue(*args, **kwargs)
    if new is None:  # the database backend, checked above, always returns it
        raise ServiceError(_("Only tasks of the database queue can be retried."), code="backend")
    logger.info(
        "task_retried_by_hand",
        task_path=locked.task_path,
        result_id=str(locked.pk),
        new_result_id=str(new.id),
    )
    return DBTaskResult.objects.get(pk=new.id)


@dataclass
class StuckReport:
    requeued: list[DBTaskResult]
    abandoned: list[DBTaskResult]


def tasks_requeue_stuck(
    *, older_than: timedelta, commit: bool = True, max_claims: int = MAX_CLAIMS
) -> StuckReport:
    """Tasks left RUNNING for longer than ``older_than`` by a worker that died
    (SIGKILL, out of memory, power loss): put them back in the queue, or, when
    ``max_claims`` workers already died running one, mark it FAILED with
    ``TaskAbandoned`` so an admin can look at it and retry it by hand.

    ``older_than`` must exceed the longest a task really runs: a task still
    running past it would be run a second time.
    """
    from django_tasks_db.models import DBTaskResult

    cutoff = timezone.now() - older_than
    stuck = list(
        DBTaskResult.objects.running().filter(started_at__lt=cutoff).order_by("started_at")
    )
    report = StuckReport(
        requeued=[r for r in stuck if len(r.worker_ids or []) < max_claims],
        abandoned=[r for r in stuck if len(r.worker_ids or []) >= max_claims],
    )
    if not commit:
        return report
    for result in report.requeued:
        # Conditional on the row still being the stuck run we read: a worker
        # that was only slow and has just finished keeps its outcome.
        updated = DBTaskResult.objects.filter(
            pk=result.pk, status=TaskResultStatus.RUNNING, started_at=result.started_at
        ).update(status=TaskResultStatus.READY, started_at=None)
        if updated:
            logger.warning(
                "task_requeued_after_worker_loss",
                task_path=result.task_path,
                result_id=str(result.pk),
                claims=len(result.worker_ids or []),
            )
    for result in report.abandoned:
        traceback = _(
            "%(path)s was running when its worker stopped without finishing it, %(n)d times; "
            "it was not put back in the queue again."
        ) % {"path": result.task_path, "n": len(result.worker_ids or [])}
        DBTaskResult.objects.filter(
            pk=result.pk, status=TaskResultStatus.RUNNING, started_at=result.started_at
        ).update(
            status=TaskResultStatus.FAILED,
            finished_at=timezone.now(),
            exception_class_path=f"{TaskAbandoned.__module__}.{TaskAbandoned.__qualname__}",
            traceback=f"{TaskAbandoned.__module__}.{TaskAbandoned.__qualname__}: {traceback}\n",
            return_value=None,
        )
        logger.error(
            "task_abandoned",
            task_path=result.task_path,
            result_id=str(result.pk),
            claims=len(result.worker_ids or []),
        )
    return report


# --- Privacy --------------------------------------------------------------------------

ERASED_TRACEBACK = "[erased: LGPD request]"


def task_results_scrub(
    tasks: Iterable[Task[..., Any]],
    ids: Iterable[int],
    *,
    kwargs: Iterable[str] = (),
    commit: bool = True,
) -> int:
    """Forget what the stored runs of ``tasks`` for ``ids`` (their first
    argument) say beyond those ids, for an LGPD erasure; returns how many rows
    changed (with ``commit=False``, would change, changing nothing).

    A failed run's traceback can quote the data it failed on (PostgreSQL's
    "Key (phone)=(…) already exists"), so it is replaced; its exception class
    stays for the admin's counts. The keyword arguments named in ``kwargs``
    are blanked (the WhatsApp send's ``sent_as`` is a wamid, which encodes
    the phone number). The rows themselves stay: they are the queue's history.
    """
    from django_tasks_db.models import DBTaskResult

    wanted = sorted({int(pk) for pk in ids})
    paths = [t.module_path for t in tasks]
    if not wanted or not paths:
        return 0
    blanked = tuple(kwargs)
    changed = 0
    rows = DBTaskResult.objects.filter(task_path__in=paths, args_kwargs__args__0__in=wanted)
    if commit:
        rows = rows.select_for_update()
    for row in rows.order_by("pk"):
        stored = row.args_kwargs or {}
        named = dict(stored.get("kwargs") or {})
        scrubbed = {k: ("" if k in blanked and v else v) for k, v in named.items()}
        traceback = ERASED_TRACEBACK if row.traceback else row.traceback
        if scrubbed == named and traceback == row.traceback:
            continue
        changed += 1
        if not commit:
            continue
        row.args_kwargs = {**stored, "kwargs": scrubbed}
        row.traceback = traceback
        row.save(update_fields=["args_kwargs", "traceback"])
    return changed

"""Background tasks on the Django tasks API (django-tasks, DEP 14).

``background_task`` declares a task that runs with the request id of the
request that enqueued it bound to its log lines; ``enqueue`` is how services
enqueue, so that a task never runs for a change that was rolled back and is
never lost for one that was committed.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

import structlog
from django.db import transaction
from django_tasks import task
from django_tasks.base import Task
from django_tasks_db import DatabaseBackend

P = ParamSpec("P")
T = TypeVar("T")


def current_request_id() -> str | None:
    value = structlog.contextvars.get_contextvars().get("request_id")
    return str(value) if value else None


def background_task(
    *, queue_name: str = "default", priority: int = 0
) -> Callable[[Callable[P, T]], Task[P, T]]:
    """Declare a task; it accepts an extra ``request_id`` kwarg from ``enqueue``."""

    def decorate(func: Callable[P, T]) -> Task[P, T]:
        @functools.wraps(func)
        def run(*args: Any, request_id: str | None = None, **kwargs: Any) -> T:
            with structlog.contextvars.bound_contextvars(
                request_id=request_id or uuid.uuid4().hex, task=func.__qualname__
            ):
                return func(*args, **kwargs)

        return task(queue_name=queue_name, priority=priority)(run)  # type: ignore[return-value]

    return decorate


def enqueue(task_obj: Task[..., Any], /, *args: Any, **kwargs: Any) -> None:
    """Enqueue ``task_obj`` as part of the caller's transaction."""
    kwargs.setdefault("request_id", current_request_id())
    if isinstance(task_obj.get_backend(), DatabaseBackend):
        # The task row is written in the caller's transaction: it commits or
        # rolls back with the data it is about, so neither can exist alone.
        task_obj.enqueue(*args, **kwargs)
    else:
        # Backends outside the database (the immediate one in tests) must wait
        # for the commit, or they would act on data that may still roll back.
        transaction.on_commit(functools.partial(task_obj.enqueue, *args, **kwargs))

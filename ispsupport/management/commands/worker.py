"""Run background tasks: django-tasks-db's database queue, stopped safely.

Use it instead of ``db_worker`` (scripts/serve and the systemd unit do): on
SIGTERM it finishes the task it is running and exits 0; a second signal puts
that task back in the queue and exits 1; tasks a killed worker left RUNNING
are put back in the queue after ``--requeue-stuck-after``. See
``ispsupport/worker.py``.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils.crypto import get_random_string
from django_tasks_db.compat import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands.db_worker import (
    valid_backend_name,
    valid_interval,
    valid_max_tasks,
    validate_worker_id,
)

from ispsupport.durations import parse_duration
from ispsupport.worker import Worker

# Longer than any task of the project really runs (a 100 MB media download
# is the longest), so that only a dead worker's task is ever put back.
DEFAULT_REQUEUE_STUCK_AFTER = "15m"


def stuck_after(text: str) -> timedelta | None:
    """argparse type: a duration such as ``15m``, or ``off``."""
    if text.strip().lower() in {"off", "0", "never"}:
        return None
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{exc}, or off") from None


class Command(BaseCommand):
    help = (
        "Run the background task worker. SIGTERM/SIGINT: finish the running task, then exit 0; "
        "a second signal puts that task back in the queue and exits 1. Tasks left RUNNING by "
        "a worker that died are put back in the queue after --requeue-stuck-after."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--queue-name",
            default=DEFAULT_TASK_QUEUE_NAME,
            help="Queues to process, comma-separated; '*' for all (default: %(default)s).",
        )
        parser.add_argument(
            "--exclude-queues",
            default="",
            help="Queues to skip, comma-separated (only with --queue-name='*').",
        )
        parser.add_argument(
            "--interval",
            default=1.0,
            type=valid_interval,
            help="Seconds to wait when the queue is empty (default: %(default)s).",
        )
        parser.add_argument("--batch", action="store_true", help="Run every ready task, then exit.")
        parser.add_argument(
            "--backend",
            default=DEFAULT_TASK_BACKEND_ALIAS,
            type=valid_backend_name,
            dest="backend_name",
            help="Task backend (default: %(default)s).",
        )
        parser.add_argument(
            "--no-startup-delay",
            action="store_false",
            dest="startup_delay",
            help="Do not wait a random moment (under 1 s) before the first poll.",
        )
        parser.add_argument(
            "--max-tasks",
            default=None,
            type=valid_max_tasks,
            help="Exit after running this many tasks.",
        )
        parser.add_argument(
            "--worker-id",
            type=validate_worker_id,
            default=None,
            help="Unique id of this worker (default: random).",
        )
        parser.add_argument(
            "--requeue-stuck-after",
            type=stuck_after,
            default=stuck_after(DEFAULT_REQUEUE_STUCK_AFTER),
            help=(
                "Put back in the queue tasks RUNNING for longer than this (their worker died); "
                "checked at start and every minute. Must exceed the longest task. "
                f"'off' disables (default: {DEFAULT_REQUEUE_STUCK_AFTER})."
            ),
        )

    def handle(self, *args: Any, **options: Any) -> None:
        queue_names = [name for name in options["queue_name"].split(",") if name]
        excluded = [name for name in options["exclude_queues"].split(",") if name]
        if not queue_names:
            raise CommandError("--queue-name needs at least one queue name (or '*').")
        if excluded and "*" not in queue_names:
            raise CommandError("--exclude-queues can only be used with --queue-name='*'.")
        worker = Worker(
            queue_names=queue_names,
            interval=options["interval"],
            batch=options["batch"],
            backend_name=options["backend_name"],
            startup_delay=options["startup_delay"],
            max_tasks=options["max_tasks"],
            worker_id=options["worker_id"] or get_random_string(32),
            excluded_queue_names=excluded,
            requeue_stuck_after=options["requeue_stuck_after"],
        )
        worker.configure_signals()
        try:
            worker.run()
        finally:
            worker.reset_signals()
        if worker.forced:
            raise CommandError(
                f"Stopped before its task finished: {len(worker.released)} task(s) put back "
                "in the queue for the next worker."
            )
        self.stdout.write(f"Worker stopped after running {worker._run_tasks} task(s).")

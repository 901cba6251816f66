"""Put back in the queue the tasks a dead worker left RUNNING.

A worker killed mid-task (SIGKILL, out of memory, a power cut) cannot record
how its task ended, and django-tasks-db never looks at a RUNNING row again.
``manage.py worker`` does this by itself every minute; this command is for
deployments that still run ``db_worker``, or to look before acting.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from ispsupport.durations import duration, format_duration
from ispsupport.tasks import MAX_CLAIMS, tasks_requeue_stuck

DEFAULT_OLDER_THAN = "15m"


class Command(BaseCommand):
    help = (
        "Put back in the queue tasks RUNNING for longer than --older-than (their worker died); "
        f"a task whose workers died {MAX_CLAIMS} times is marked failed instead, for an admin "
        "to look at. Reports only, unless --commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration,
            default=duration(DEFAULT_OLDER_THAN),
            help=(
                "Running for longer than this, e.g. 15m, 2h (default: "
                f"{DEFAULT_OLDER_THAN}). It must exceed the longest a task really runs, or a "
                "slow task would run twice."
            ),
        )
        parser.add_argument("--commit", action="store_true", help="Really requeue them.")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = options["older_than"]
        commit: bool = options["commit"]
        age = format_duration(older_than)
        try:
            report = tasks_requeue_stuck(older_than=older_than, commit=commit)
        except DatabaseError as exc:
            raise CommandError(f"Could not read the task queue ({type(exc).__name__}).") from exc
        verb = ("requeued", "marked failed") if commit else ("to requeue", "to mark failed")
        for result in report.requeued:
            self.stdout.write(
                f"{verb[0]}: {result.pk} {result.task_path} "
                f"(running since {result.started_at:%Y-%m-%d %H:%M:%S} UTC)"
            )
        for result in report.abandoned:
            self.stdout.write(
                f"{verb[1]}: {result.pk} {result.task_path} "
                f"({len(result.worker_ids or [])} workers died running it)"
            )
        total = len(report.requeued) + len(report.abandoned)
        if commit:
            self.stdout.write(
                f"Requeued {len(report.requeued)} and marked {len(report.abandoned)} failed of "
                f"{total} task(s) running for more than {age}."
            )
        else:
            self.stdout.write(
                f"{total} task(s) running for more than {age}: {len(report.requeued)} to requeue, "
                f"{len(report.abandoned)} to mark failed; add --commit to do it."
            )

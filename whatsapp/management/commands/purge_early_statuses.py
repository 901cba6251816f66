"""Drop statuses whose message never appeared (kept for a day, then useless)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandParser
from django.utils import timezone

from whatsapp.models import EarlyStatus
from whatsapp.services import early_statuses_purge


class Command(BaseCommand):
    help = "Delete early WhatsApp statuses older than --hours (only with --commit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--hours", type=int, default=24, help="Age to keep (default 24).")
        parser.add_argument("--commit", action="store_true", help="Really delete them.")

    def handle(self, *args: Any, **options: Any) -> None:
        older_than = timedelta(hours=max(options["hours"], 1))
        if not options["commit"]:
            count = EarlyStatus.objects.filter(received_at__lt=timezone.now() - older_than).count()
            self.stdout.write(f"Would delete {count} early statuses; add --commit to delete them.")
            return
        deleted = early_statuses_purge(older_than=older_than)
        self.stdout.write(f"Deleted {deleted} early statuses.")

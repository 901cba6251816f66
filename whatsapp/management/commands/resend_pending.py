"""Re-enqueue outbound WhatsApp messages stuck in ``pending``.

A send whose task row was lost stays ``pending`` with nothing scheduled.
Running ``send_message`` again is safe: it takes a per-message lock, skips
anything no longer pending, and a message Meta already accepted (its wamid
kept in the cache for 24 h when storing it failed) is only stored, not sent
twice. Run this from cron every few minutes.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from conversations.models import Message
from ispsupport.tasks import enqueue
from whatsapp.tasks import BACKOFF_CAP_SECONDS, send_message

# Older than the longest backoff, so a retry that is merely waiting its turn
# is not sent early.
DEFAULT_MINUTES = 15


class Command(BaseCommand):
    help = (
        "Re-enqueue WhatsApp messages pending for longer than --minutes "
        "(reports only, unless --commit)."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--minutes",
            type=int,
            default=DEFAULT_MINUTES,
            help=f"Pending for longer than this (default {DEFAULT_MINUTES}).",
        )
        parser.add_argument("--commit", action="store_true", help="Really enqueue them.")

    def handle(self, *args: Any, **options: Any) -> None:
        minutes: int = options["minutes"]
        if minutes * 60 < BACKOFF_CAP_SECONDS:
            raise CommandError(
                f"--minutes must be at least {int(BACKOFF_CAP_SECONDS // 60)} (the longest "
                "retry wait), or waiting retries would be sent early."
            )
        stuck = list(
            Message.objects.filter(
                direction=Message.Direction.OUT,
                status=Message.Status.PENDING,
                created_at__lt=timezone.now() - timedelta(minutes=minutes),
                conversation__inbox__whatsapp_account__isnull=False,
            )
            .order_by("created_at")
            .values_list("id", flat=True)
        )
        if not options["commit"]:
            self.stdout.write(
                f"{len(stuck)} WhatsApp messages pending for more than {minutes} min; "
                "add --commit to send them again."
            )
            return
        with transaction.atomic():
            for message_id in stuck:
                enqueue(send_message, message_id)
        self.stdout.write(
            f"Re-enqueued {len(stuck)} WhatsApp messages pending for more than {minutes} min."
        )

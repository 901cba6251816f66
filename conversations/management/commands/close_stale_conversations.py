"""Resolve conversations nobody wrote in for a while.

A customer who stopped answering leaves a conversation open (or queued, or
with the bot) for ever: it fills agents' inboxes and skews the waiting-time
figures. This resolves the ones with no message, either way, for longer than
``--idle``, each with an internal note saying why, without asking the
customer for a rating. Only reports until you add ``--commit``.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.db.models import Count
from django.utils import timezone

from conversations.models import Conversation
from conversations.services import (
    STALE_CLOSED,
    STALE_CLOSED_WITH_GOODBYE,
    STALE_GOODBYE_WINDOW_CLOSED,
    STALE_SKIPPED,
    conversation_close_stale,
    conversations_stale,
)
from ispsupport.durations import duration, format_duration
from ispsupport.errors import ServiceError

# Shorter than this is surely a typo (30m for 30d): a customer waiting half an
# hour in the queue is not "stale".
MIN_IDLE = timedelta(hours=1)
SERVICE_WINDOW = timedelta(hours=24)
# Dry runs list this many conversations (all of them with -v 2).
LISTED = 20
# Progress lines (one per 5%) only on runs longer than this.
PROGRESS_FROM = 100


class Command(BaseCommand):
    help = (
        "Resolve conversations (with the bot, queued, open or waiting) with no message "
        "for longer than --idle, each with an internal note saying why; the customer is "
        "not asked for a rating. With --goodbye the customer also gets a short goodbye "
        "in Portuguese, but WhatsApp only allows it within 24 hours of their last "
        "message: with --idle 24h or more it is always skipped (and counted). Only "
        "reports what it would do until you add --commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--idle",
            type=duration,
            required=True,
            metavar="DURATION",
            help="No message for longer than this, e.g. 48h, 3d, 12h30m (at least 1h).",
        )
        parser.add_argument(
            "--goodbye",
            action="store_true",
            help="Also send the customer a goodbye when the 24-hour window is still open.",
        )
        parser.add_argument(
            "--commit", action="store_true", help="Really resolve them (default: only report)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        idle: timedelta = options["idle"]
        if idle < MIN_IDLE:
            raise CommandError(
                f"--idle {format_duration(idle)} is too short: at least 1h "
                "(did you mean days, e.g. 2d?)."
            )
        try:
            if options["commit"]:
                self._close(idle, goodbye=options["goodbye"], verbosity=options["verbosity"])
            else:
                self._report(idle, goodbye=options["goodbye"], verbosity=options["verbosity"])
        except DatabaseError as exc:
            raise CommandError(f"Database error: {exc}".splitlines()[0]) from exc

    def _report(self, idle: timedelta, *, goodbye: bool, verbosity: int) -> None:
        now = timezone.now()
        rows = conversations_stale(idle=idle, now=now)
        total = rows.count()
        limit = format_duration(idle)
        if not total:
            self.stdout.write(f"No conversation has been idle for more than {limit}.")
            return
        by_state = dict(
            rows.order_by().values("state").annotate(n=Count("pk")).values_list("state", "n")
        )
        states = ", ".join(
            f"{state} {by_state[state]}" for state in _STATE_ORDER if state in by_state
        )
        self.stdout.write(
            f"Would resolve {total} conversations idle for more than {limit} ({states}):"
        )
        listed = rows.order_by("last_message_at", "pk").values_list(
            "protocol", "state", "last_message_at"
        )
        if verbosity < 2:
            listed = listed[:LISTED]
        for protocol, state, last in listed:
            self.stdout.write(
                f"  {protocol}  {state:<8} idle {format_duration(now - last, smallest='m')}"
            )
        if verbosity < 2 and total > LISTED:
            self.stdout.write(f"  … and {total - LISTED} more (-v 2 lists them all)")
        if goodbye:
            open_window = rows.filter(last_inbound_at__gt=now - SERVICE_WINDOW).count()
            self.stdout.write(
                f"A goodbye would go to {open_window}; {total - open_window} skipped "
                "(more than 24 hours since the customer's last message)."
            )
        self.stdout.write("Dry run: nothing changed. Add --commit to resolve them.")

    def _close(self, idle: timedelta, *, goodbye: bool, verbosity: int) -> None:
        ids = list(conversations_stale(idle=idle).order_by("pk").values_list("pk", flat=True))
        total = len(ids)
        limit = format_duration(idle)
        outcomes: Counter[str] = Counter()
        failed, shown = 0, 0
        for done, pk in enumerate(ids, start=1):
            try:
                outcomes[
                    conversation_close_stale(
                        conversation=Conversation(pk=pk), idle=idle, goodbye=goodbye
                    )
                ] += 1
            except Conversation.DoesNotExist:
                outcomes[STALE_SKIPPED] += 1
            except ServiceError as exc:
                failed += 1
                self.stderr.write(f"Conversation {pk}: not resolved: {exc.message}")
            step = done * 20 // total
            if verbosity >= 1 and total > PROGRESS_FROM and step > shown:
                self.stdout.write(f"resolved {done}/{total} conversations…")
                shown = step
        resolved = (
            outcomes[STALE_CLOSED]
            + outcomes[STALE_CLOSED_WITH_GOODBYE]
            + outcomes[STALE_GOODBYE_WINDOW_CLOSED]
        )
        summary = f"Resolved {resolved} conversations idle for more than {limit}"
        if goodbye:
            summary += (
                f"; goodbye sent to {outcomes[STALE_CLOSED_WITH_GOODBYE]}, skipped for "
                f"{outcomes[STALE_GOODBYE_WINDOW_CLOSED]} (more than 24 hours since the "
                "customer's last message)"
            )
        if outcomes[STALE_SKIPPED]:
            summary += f"; {outcomes[STALE_SKIPPED]} left alone (active again or already resolved)"
        self.stdout.write(summary + ".")
        if failed:
            raise CommandError(f"{failed} conversations could not be resolved (see above).")


_STATE_ORDER = [
    Conversation.State.BOT,
    Conversation.State.QUEUED,
    Conversation.State.OPEN,
    Conversation.State.PENDING,
]

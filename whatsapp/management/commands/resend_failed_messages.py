"""Send again WhatsApp messages that failed recently.

After an incident (Meta's rate limit 130429, an expired token now renewed,
an outage that outlasted the retries) the failed messages can go out again:
each is put back to ``pending`` and its send enqueued, through the same task
as any send. Messages of resolved conversations, and free text whose 24-hour
window has closed, are skipped and counted. Only reports until ``--commit``.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from conversations.models import Message
from conversations.services import (
    RESEND_NOT_FAILED,
    RESEND_QUEUED,
    RESEND_RESOLVED,
    RESEND_WINDOW_CLOSED,
    failed_messages,
    message_resend,
    message_resend_refusal,
)
from ispsupport.durations import duration, format_duration

# Older failures are history, not an incident to recover from: sending them
# now would surprise the customer (and a typo like 1w for 1h is caught).
MAX_SINCE = timedelta(days=3)
PROGRESS_EVERY = 200

REASONS = {
    RESEND_RESOLVED: "the conversation is resolved",
    RESEND_WINDOW_CLOSED: "more than 24 hours since the customer's last message "
    "(only a template may be sent)",
    RESEND_NOT_FAILED: "no longer failed (sent again meanwhile)",
}


class Command(BaseCommand):
    help = (
        "Send again the outbound WhatsApp messages that failed within --since (e.g. 1h, "
        "default 1h), optionally only those with error --code (e.g. 130429, Meta's rate "
        "limit). Each goes back to pending and through the normal send task, at most once "
        "per run. Skips (and counts) messages of resolved conversations and free text "
        "outside the 24-hour window. Beware: a send that failed by timeout may have reached "
        "Meta. Only reports until you add --commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--since",
            type=duration,
            default=timedelta(hours=1),
            metavar="DURATION",
            help="Failed within this long, e.g. 30m, 1h, 2d (default 1h, at most 3d).",
        )
        parser.add_argument(
            "--code", default="", help="Only messages that failed with this error code."
        )
        parser.add_argument(
            "--commit", action="store_true", help="Really send them again (default: only report)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        since: timedelta = options["since"]
        if since > MAX_SINCE:
            raise CommandError(
                f"--since {format_duration(since)} is too long: at most 3d (older failures "
                "would reach customers as news from the past)."
            )
        code = str(options["code"]).strip()
        try:
            self._run(since, code, commit=options["commit"])
        except DatabaseError as exc:
            raise CommandError(f"Database error: {exc}".splitlines()[0]) from exc

    def _run(self, since: timedelta, code: str, *, commit: bool) -> None:
        now = timezone.now()
        rows = failed_messages(since=now - since, code=code).filter(
            conversation__inbox__whatsapp_account__isnull=False
        )
        what = f"WhatsApp messages failed in the last {format_duration(since)}"
        if code:
            what += f" with error {code}"
        outcomes: Counter[str] = Counter()
        if not commit:
            for message in rows.select_related("conversation").order_by("pk").iterator(2000):
                refusal = message_resend_refusal(message, message.conversation, now=now)
                outcomes[refusal or RESEND_QUEUED] += 1
            self.stdout.write(f"{what}: {sum(outcomes.values())}.")
            self.stdout.write(f"Would send again: {outcomes[RESEND_QUEUED]}.")
            self._skipped(outcomes, verb="Would skip")
            self.stdout.write("Dry run: nothing changed. Add --commit to send them again.")
            return
        ids = list(rows.order_by("pk").values_list("pk", flat=True))
        for done, pk in enumerate(ids, start=1):
            outcomes[message_resend(message=Message(pk=pk), now=now)] += 1
            if len(ids) > PROGRESS_EVERY and done % PROGRESS_EVERY == 0:
                self.stdout.write(f"checked {done}/{len(ids)} messages…")
        self.stdout.write(f"{what}: {len(ids)}.")
        self.stdout.write(f"Sent again (queued): {outcomes[RESEND_QUEUED]}.")
        self._skipped(outcomes, verb="Skipped")

    def _skipped(self, outcomes: Counter[str], *, verb: str) -> None:
        for reason, text in REASONS.items():
            if outcomes[reason]:
                self.stdout.write(f"{verb} {outcomes[reason]}: {text}.")

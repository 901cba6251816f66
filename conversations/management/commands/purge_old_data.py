"""Delete what the retention policy no longer allows us to keep.

Messages (with their media files) and internal notes of conversations
resolved before ``--older-than`` are deleted; the conversation rows stay, so
protocols, times and ratings still count in reports. ``--media-older-than``
also deletes media files older than that from any conversation, keeping the
messages' text. Work goes in batches of ``--batch-size`` rows, each its own
short transaction, so the tables are never locked for long. Only reports
until you add ``--commit``; safe to repeat (run it daily from cron).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone

from conversations.services import (
    PurgeTally,
    data_purge_plan,
    media_purge,
    messages_purge,
    notes_purge,
)
from ispsupport.durations import duration, format_duration

# Below this a value is surely a typo (365m for 365d) that would wipe
# yesterday's conversations.
MIN_AGE = timedelta(days=1)
# Progress lines per kind of row at the default verbosity.
PROGRESS_STEPS = 20


def _size(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{int(size)} bytes" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TB"  # pragma: no cover - the loop returns at GB


def _default_age(name: str) -> timedelta | None:
    days = getattr(settings, name, None)
    return timedelta(days=int(days)) if days else None


class Command(BaseCommand):
    help = (
        "Delete messages, their media files and internal notes of conversations resolved "
        "more than --older-than ago (default: MESSAGE_RETENTION_DAYS), keeping the "
        "conversations themselves (protocol, times, rating) for reports. "
        "--media-older-than (default: MEDIA_RETENTION_DAYS) also deletes older media files "
        "of any conversation, keeping the messages' text. Works in batches; only reports "
        "what it would delete until you add --commit."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=duration,
            metavar="DURATION",
            help="Conversations resolved longer ago than this, e.g. 365d (at least 1d).",
        )
        parser.add_argument(
            "--media-older-than",
            type=duration,
            metavar="DURATION",
            help="Also delete media files older than this, e.g. 90d (at least 1d).",
        )
        parser.add_argument(
            "--batch-size",
            type=int,
            default=1000,
            help="Rows per batch (one short transaction each; default 1000).",
        )
        parser.add_argument(
            "--commit", action="store_true", help="Really delete (default: only report)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        older_than: timedelta | None = options["older_than"] or _default_age(
            "MESSAGE_RETENTION_DAYS"
        )
        if older_than is None:
            raise CommandError("Say how old: --older-than 365d (or set MESSAGE_RETENTION_DAYS).")
        media_older_than: timedelta | None = options["media_older_than"] or _default_age(
            "MEDIA_RETENTION_DAYS"
        )
        for flag, value in (("--older-than", older_than), ("--media-older-than", media_older_than)):
            if value is not None and value < MIN_AGE:
                raise CommandError(
                    f"{flag} {format_duration(value)} is too short: at least 1d "
                    "(did you mean days, e.g. 365d?)."
                )
        self.verbosity: int = options["verbosity"]
        batch_size: int = options["batch_size"]
        if not 1 <= batch_size <= 100_000:
            raise CommandError("--batch-size must be between 1 and 100000.")
        now = timezone.now()
        cutoff = now - older_than
        media_cutoff = now - media_older_than if media_older_than else None
        try:
            self._report(older_than, cutoff, media_older_than, media_cutoff)
            if not options["commit"]:
                self.stdout.write("Dry run: nothing deleted. Add --commit to delete.")
                return
            self._purge(cutoff, media_cutoff, batch_size)
        except DatabaseError as exc:
            raise CommandError(f"Database error: {exc}".splitlines()[0]) from exc
        except OSError as exc:
            raise CommandError(
                f"Could not delete a media file ({exc.strerror or exc}); nothing of that batch "
                "was deleted from the database, run it again once the storage is fixed."
            ) from exc

    def _report(
        self,
        older_than: timedelta,
        cutoff: datetime,
        media_older_than: timedelta | None,
        media_cutoff: datetime | None,
    ) -> None:
        full, media = data_purge_plan(resolved_before=cutoff, media_before=media_cutoff)
        self.stdout.write(
            f"Conversations resolved more than {format_duration(older_than)} ago (before "
            f"{cutoff:%Y-%m-%d %H:%M}): {full.conversations} with data to delete — "
            f"{full.messages} messages, {full.notes} notes, {full.media_files} media files "
            f"({_size(full.media_bytes)})."
        )
        if media is not None and media_older_than is not None and media_cutoff is not None:
            self.stdout.write(
                f"Media older than {format_duration(media_older_than)} (before "
                f"{media_cutoff:%Y-%m-%d %H:%M}) in other conversations: "
                f"{media.media_cleared} messages keep their text, {media.media_files} files "
                f"({_size(media.media_bytes)}) go."
            )
        missing = full.media_missing + (media.media_missing if media else 0)
        if missing:
            self.stdout.write(f"{missing} media files named in the database are already gone.")

    def _purge(self, cutoff: datetime, media_cutoff: datetime | None, batch_size: int) -> None:
        messages = self._follow(
            messages_purge(resolved_before=cutoff, batch_size=batch_size), "messages"
        )
        notes = self._follow(notes_purge(resolved_before=cutoff, batch_size=batch_size), "notes")
        media = None
        if media_cutoff is not None:
            media = self._follow(
                media_purge(
                    created_before=media_cutoff, resolved_before=cutoff, batch_size=batch_size
                ),
                "media files",
            )
        files = messages.media_files + (media.media_files if media else 0)
        freed = messages.media_bytes + (media.media_bytes if media else 0)
        summary = (
            f"Purged {messages.messages} messages and {notes.notes} notes; deleted {files} "
            f"media files, {_size(freed)} freed"
        )
        if media is not None:
            summary += f" ({media.media_cleared} older messages kept their text)"
        self.stdout.write(summary + ".")

    def _follow(self, batches: Iterator[PurgeTally], what: str) -> PurgeTally:
        """Run the batches; a progress line at every 5% (every batch with -v 2)."""
        tally, shown = PurgeTally(), -1
        for tally in batches:
            step = tally.done * PROGRESS_STEPS // max(tally.total, 1)
            if self.verbosity >= 2 or step > shown or tally.done >= tally.total:
                self.stdout.write(f"purged {tally.done}/{tally.total} {what}…")
                shown = step
        return tally

"""Re-encrypt every encrypted field with the newest key in FERNET_KEYS.

The rotation: put a new key in FRONT of FERNET_KEYS and restart every process
(the first key encrypts, all keys decrypt), run this with --commit, then drop
the old key and restart again. Without --commit it only counts the values not
yet on the newest key. Safe to interrupt and run again: it continues.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ispsupport.keyrotation import ColumnReport, rotate_all

HELP = """Re-encrypt every Fernet-encrypted field (contacts' and subscribers'
CPF/CNPJ, WhatsApp access tokens and app secrets, any *_encrypted field) with
the newest (first) key of FERNET_KEYS, in batches; after a --commit run with no
unreadable values the older keys can be dropped. CPF/CNPJ lookup hashes left
stale by a SECRET_KEY change are repaired on the way. Resumable: an interrupted
run continues where it stopped. Dry run by default: counts what is not yet on
the newest key; add --commit to write."""


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--commit", action="store_true", help="Write the changes (default: only count)."
        )
        parser.add_argument(
            "--batch-size", type=int, default=500, help="Rows per transaction (default 500)."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        commit: bool = options["commit"]
        if options["batch_size"] < 1:
            raise CommandError("--batch-size must be at least 1.")
        started = time.monotonic()
        verb = "re-encrypted" if commit else "to re-encrypt"

        def progress(report: ColumnReport) -> None:
            self.stdout.write(
                f"{report.label}: {report.checked}/{report.total} checked, "
                f"{report.rotated} {verb}, {len(report.unreadable)} unreadable"
            )

        reports = rotate_all(commit=commit, batch_size=options["batch_size"], progress=progress)

        total = sum(r.total for r in reports)
        rotated = sum(r.rotated for r in reports)
        current = sum(r.current for r in reports)
        rehashed = sum(r.rehashed for r in reports)
        unreadable = [r for r in reports if r.unreadable]
        count = sum(len(r.unreadable) for r in unreadable)
        summary = (
            f"{total} encrypted values in {len(reports)} columns "
            f"({time.monotonic() - started:.1f} s): {rotated} "
            f"{'re-encrypted with' if commit else 'not yet on'} the newest key, "
            f"{current} already on it, {count} unreadable"
        )
        if rehashed:
            summary += f"; {rehashed} CPF/CNPJ lookup hashes {'recomputed' if commit else 'stale'}"
        summary += "."
        if not commit:
            summary += " Dry run: nothing written; add --commit to re-encrypt."
        elif not unreadable:
            summary += " The older keys in FERNET_KEYS can now be removed."
        self.stdout.write(self.style.SUCCESS(summary))
        if unreadable:
            where = "; ".join(
                f"{r.label} rows {', '.join(map(str, r.unreadable[:20]))}"
                + (" ..." if len(r.unreadable) > 20 else "")
                for r in unreadable
            )
            raise CommandError(
                f"No key in FERNET_KEYS opens {count} value(s) ({where}). Do NOT drop any key "
                "yet: put the key they were encrypted with back in FERNET_KEYS (after the "
                "newest) and run again."
            )

"""Recompute every subscriber's CPF/CNPJ lookup hash and re-encrypt it with the
newest Fernet key (after rotating SECRET_KEY or FERNET_KEYS). ``rehash_documents``
runs it too. Only reports until you add --commit."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ispsupport.documents import RehashReport, rehash_documents
from subscribers.models import DOCUMENT_PURPOSE, Subscriber


class Command(BaseCommand):
    help = "Recompute subscribers' CPF/CNPJ lookup hashes and re-encrypt them (--commit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--commit", action="store_true", help="Write the changes (default: only report)."
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        commit: bool = options["commit"]

        def progress(report: RehashReport) -> None:
            self.stdout.write(
                f"Subscribers: {report.checked}/{report.total} checked, {report.rehashed} hashes "
                f"to recompute, {report.reencrypted} to re-encrypt"
            )

        report = rehash_documents(
            Subscriber,
            purpose=DOCUMENT_PURPOSE,
            commit=commit,
            batch_size=max(1, options["batch_size"]),
            progress=progress,
        )
        verb = "changed" if commit else "would change"
        summary = (
            f"{report.total} subscribers with a CPF/CNPJ in {time.monotonic() - started:.1f} s: "
            f"{report.rehashed} lookup hashes {verb}, {report.reencrypted} documents {verb} to "
            f"the newest key, {len(report.unreadable)} unreadable."
        )
        if not commit:
            summary += " Dry run: nothing written; add --commit to apply."
        self.stdout.write(self.style.SUCCESS(summary))
        if report.unreadable:
            self.stderr.write(
                f"No key in FERNET_KEYS opens the document of {len(report.unreadable)} "
                "subscriber(s): put the old key back in FERNET_KEYS (after the new one) and run "
                "again."
            )

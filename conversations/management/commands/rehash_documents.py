"""Recompute every contact's CPF/CNPJ lookup hash and re-encrypt the document
with the newest Fernet key.

Run it after rotating SECRET_KEY (the lookup hash is keyed with it: until it
is recomputed, searching by CPF finds nobody) and after putting a new key in
front of FERNET_KEYS (so the old key can be dropped). Only reports what it
would change until you add --commit.

Without FERNET_KEYS the encryption key is derived from SECRET_KEY: rotating
SECRET_KEY then makes every document unreadable, reported here as such.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser

from conversations.models import Contact
from ispsupport.documents import RehashReport, rehash_documents


class Command(BaseCommand):
    help = "Recompute CPF/CNPJ lookup hashes and re-encrypt with the newest key (--commit)."

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
                f"Contacts: {report.checked}/{report.total} checked, {report.rehashed} hashes "
                f"to recompute, {report.reencrypted} to re-encrypt"
            )

        report = rehash_documents(
            Contact,
            purpose="conversations.Contact.document",
            commit=commit,
            batch_size=max(1, options["batch_size"]),
            progress=progress,
        )
        verb = "changed" if commit else "would change"
        summary = (
            f"{report.total} contacts with a CPF/CNPJ in {time.monotonic() - started:.1f} s: "
            f"{report.rehashed} lookup hashes {verb}, {report.reencrypted} documents {verb} to "
            f"the newest key, {len(report.unreadable)} unreadable."
        )
        if not commit:
            summary += " Dry run: nothing written; add --commit to apply."
        self.stdout.write(self.style.SUCCESS(summary))
        if report.unreadable:
            shown = ", ".join(map(str, report.unreadable[:20])) + (
                " ..." if len(report.unreadable) > 20 else ""
            )
            self.stderr.write(
                f"No key in FERNET_KEYS opens the document of contacts {shown}: put the old key "
                "back in FERNET_KEYS (after the new one) and run again."
            )
        # Subscribers keep CPF/CNPJ too; called by name (conversations does not
        # import the subscribers app).
        if "rehash_subscriber_documents" in get_commands():
            call_command(
                "rehash_subscriber_documents",
                commit=commit,
                batch_size=options["batch_size"],
                stdout=self.stdout,
                stderr=self.stderr,
            )

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

from typing import Any

from django.core.management import call_command, get_commands
from django.core.management.base import BaseCommand, CommandParser

from conversations.models import Contact
from ispsupport.documents import run_rehash_command


class Command(BaseCommand):
    help = "Recompute CPF/CNPJ lookup hashes and re-encrypt with the newest key (--commit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--commit", action="store_true", help="Write the changes (default: only report)."
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        run_rehash_command(
            self,
            Contact,
            purpose="conversations.Contact.document",
            label="contacts",
            options=options,
        )
        commit: bool = options["commit"]
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

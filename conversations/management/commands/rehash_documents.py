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

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import transaction

from conversations.models import Contact
from ispsupport.crypto import DecryptionError, decrypt, rotate
from ispsupport.identity import document_hash


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
        size: int = max(1, options["batch_size"])
        newest = Fernet(settings.FERNET_KEYS[0])
        rows = Contact.objects.exclude(document_encrypted="")
        total = rows.count()
        checked = rehashed = reencrypted = 0
        unreadable: list[int] = []
        last_pk = 0
        while True:
            with transaction.atomic():
                batch = rows.filter(pk__gt=last_pk).order_by("pk")
                if commit:
                    # Locked, so a contact edited meanwhile is not written back stale.
                    batch = batch.select_for_update()
                batch = list(batch.only("pk", "document_encrypted", "document_hash")[:size])
                if not batch:
                    break
                last_pk = batch[-1].pk
                changed = []
                for contact in batch:
                    checked += 1
                    try:
                        document = decrypt(contact.document_encrypted)
                    except DecryptionError:
                        unreadable.append(contact.pk)
                        continue
                    fields = []
                    digest = document_hash(document)
                    if contact.document_hash != digest:
                        contact.document_hash = digest
                        fields.append("document_hash")
                        rehashed += 1
                    if not _readable_with(newest, contact.document_encrypted):
                        contact.document_encrypted = rotate(contact.document_encrypted)
                        fields.append("document_encrypted")
                        reencrypted += 1
                    if fields:
                        changed.append(contact)
                if commit and changed:
                    Contact.objects.bulk_update(changed, ["document_hash", "document_encrypted"])
            self.stdout.write(
                f"Contacts: {checked}/{total} checked, {rehashed} hashes to recompute, "
                f"{reencrypted} to re-encrypt"
            )
        verb = "changed" if commit else "would change"
        summary = (
            f"{total} contacts with a CPF/CNPJ in {time.monotonic() - started:.1f} s: "
            f"{rehashed} lookup hashes {verb}, {reencrypted} documents {verb} to the newest key, "
            f"{len(unreadable)} unreadable."
        )
        if not commit:
            summary += " Dry run: nothing written; add --commit to apply."
        self.stdout.write(self.style.SUCCESS(summary))
        if unreadable:
            shown = ", ".join(map(str, unreadable[:20])) + (" ..." if len(unreadable) > 20 else "")
            self.stderr.write(
                f"No key in FERNET_KEYS opens the document of contacts {shown}: put the old key "
                "back in FERNET_KEYS (after the new one) and run again."
            )


def _readable_with(fernet: Fernet, token: str) -> bool:
    try:
        fernet.decrypt(token.encode())
    except InvalidToken:
        return False
    return True

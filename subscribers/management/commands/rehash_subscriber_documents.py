"""Recompute every subscriber's CPF/CNPJ lookup hash and re-encrypt it with the
newest Fernet key (after rotating SECRET_KEY or FERNET_KEYS). ``rehash_documents``
runs it too. Only reports until you add --commit."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandParser

from ispsupport.documents import run_rehash_command
from subscribers.models import DOCUMENT_PURPOSE, Subscriber


class Command(BaseCommand):
    help = "Recompute subscribers' CPF/CNPJ lookup hashes and re-encrypt them (--commit)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--commit", action="store_true", help="Write the changes (default: only report)."
        )
        parser.add_argument("--batch-size", type=int, default=1000)

    def handle(self, *args: Any, **options: Any) -> None:
        run_rehash_command(
            self, Subscriber, purpose=DOCUMENT_PURPOSE, label="subscribers", options=options
        )

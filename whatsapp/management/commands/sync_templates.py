"""Sync approved message templates from Meta for every active number (or one)."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ispsupport.errors import ServiceError
from whatsapp.models import WhatsAppAccount
from whatsapp.templates import templates_sync


class Command(BaseCommand):
    help = "Sync WhatsApp message templates from the Graph API into the database."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account",
            metavar="PHONE_NUMBER_ID",
            help="Only this number (its Meta phone number id); default: every active number.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        accounts = WhatsAppAccount.objects.order_by("pk")
        if options["account"]:
            accounts = accounts.filter(phone_number_id=options["account"])
            if not accounts.exists():
                raise CommandError(f"No WhatsApp number with phone number id {options['account']}.")
        else:
            accounts = accounts.filter(is_active=True)
        created = updated = removed = synced = failed = 0
        for account in accounts:
            try:
                result = templates_sync(account=account)
            except ServiceError as exc:
                failed += 1
                self.stderr.write(f"{account}: skipped: {exc.message}")
                continue
            synced += 1
            created, updated = created + result.created, updated + result.updated
            removed += result.removed
            self.stdout.write(f"{account}: {result}")
        self.stdout.write(
            f"Templates: {created} created, {updated} updated, {removed} removed "
            f"on {synced} number(s); {failed} skipped."
        )
        if failed and not synced:
            raise CommandError("No number could be synced.")

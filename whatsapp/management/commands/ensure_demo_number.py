"""Give a machine with no WhatsApp number a sandbox one (what `make run` does),
so the customer simulator works on a fresh install."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from whatsapp.services import account_ensure_demo


class Command(BaseCommand):
    help = "Create a sandbox WhatsApp number when there is none (for demos and the simulator)."

    def handle(self, *args: Any, **options: Any) -> None:
        account = account_ensure_demo()
        if account is None:
            if options["verbosity"] > 1:
                self.stdout.write("A WhatsApp number exists already: nothing to do.")
            return
        self.stdout.write(
            self.style.SUCCESS(
                "Sandbox WhatsApp number created: try it as a customer at /simulator/ "
                "(choose its inbox's default team in admin → WhatsApp numbers)."
            )
        )

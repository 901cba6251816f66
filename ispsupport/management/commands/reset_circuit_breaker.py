"""Close a circuit breaker by hand, as POST /circuit-breakers/{name}/reset does.

An operator action, so it acts at once (there is no --commit): closing a
breaker only lets calls be tried again; if the service is still down the
breaker opens again after its usual failures.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ispsupport import breakers


class Command(BaseCommand):
    help = (
        "Close the named circuit breaker (or --all) and zero its failure count, for every "
        f"process sharing it. Breakers: {', '.join(breakers.SPECS)}. Acts at once (no dry "
        "run): it only lets calls be tried again, and a service still failing opens the "
        "breaker again."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("names", nargs="*", metavar="NAME", help="Breaker(s) to close.")
        parser.add_argument("--all", action="store_true", help="Close every breaker.")

    def handle(self, *args: Any, **options: Any) -> None:
        names: list[str] = options["names"]
        valid = ", ".join(breakers.SPECS)
        if options["all"] == bool(names):
            raise CommandError(f"Name a breaker or give --all (breakers: {valid}).")
        unknown = [name for name in names if name not in breakers.SPECS]
        if unknown:
            raise CommandError(f"Unknown breaker {', '.join(unknown)}; the breakers are: {valid}.")
        chosen = list(breakers.SPECS) if options["all"] else list(dict.fromkeys(names))
        for name in chosen:
            try:
                before = breakers.breaker_status(name)
                after = breakers.reset_breaker(name)
            except Exception as exc:
                # Shared state lives in Redis: an outage there is the likely cause.
                raise CommandError(
                    f"Could not reset the {name} breaker ({type(exc).__name__}: {exc})."
                ) from exc
            self.stdout.write(
                f"{name}: {before['state']} → {after['state']} "
                f"(failures {before['fail_counter']} → {after['fail_counter']}, "
                f"{after['storage']} storage)"
            )
        self.stdout.write(f"Closed {len(chosen)} breaker(s).")

"""Close a circuit breaker by hand, as POST /circuit-breakers/{name}/reset does.

An operator action, so it acts at once (there is no --commit): closing a
breaker only lets calls be tried again; if the service is still down the
breaker opens again after its usual failures. With Redis unreachable, a
breaker whose state lives there cannot be reset: the command says so and
exits 1 (the others named are still reset).
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
        "breaker again. Fails (exit 1) for a breaker whose shared state in Redis cannot be "
        "reached, rather than reporting a reset that did not happen."
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
        lines: dict[str, str] = {}
        failed: list[str] = []
        # The redis breaker first: the others' shared state is read and written
        # through it, so an open one would refuse them although Redis is back.
        if "redis" in chosen:
            self._reset("redis", breakers.breaker_status("redis"), lines, failed)
        others = [name for name in chosen if name != "redis"]
        if others:
            # One read for all (one round trip to Redis, not one per breaker).
            befores = {status["name"]: status for status in breakers.all_breaker_statuses()}
            for name in others:
                self._reset(name, befores[name], lines, failed)
        for name in chosen:
            if name in lines:
                self.stdout.write(lines[name])
        if failed:
            raise CommandError(" ".join(failed))
        self.stdout.write(f"Closed {len(chosen)} breaker(s).")

    def _reset(
        self, name: str, before: dict[str, Any], lines: dict[str, str], failed: list[str]
    ) -> None:
        try:
            if before["state"] == breakers.UNKNOWN:
                # Redis just failed to answer: do not wait on it a second time.
                raise breakers.BreakerStateUnavailableError(name, before["reason"])
            after = breakers.reset_breaker(name)
        except breakers.BreakerStateUnavailableError as exc:
            failed.append(exc.message)
            return
        except Exception as exc:
            # Shared state lives in Redis: an outage there is the likely cause.
            failed.append(f"Could not reset the {name} breaker ({type(exc).__name__}: {exc}).")
            return
        lines[name] = (
            f"{name}: {before['state']} → {after['state']} "
            f"(failures {before['fail_counter']} → {after['fail_counter']}, "
            f"{after['storage']} storage)"
        )

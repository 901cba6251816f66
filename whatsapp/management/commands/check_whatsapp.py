"""Ask Meta about every active WhatsApp number, for operators and monitoring.

The same check as admin → WhatsApp numbers → "Check connection" (same Graph
client, breaker, wording and bookkeeping: a refused token marks the number
unhealthy, a good answer marks it healthy again), with an exit code a cron
job or a monitoring agent can act on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.contrib import messages
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError
from django.utils import timezone
from django.utils.translation import gettext

from ispsupport.breakers import breaker_status
from ispsupport.durations import format_duration
from whatsapp import services, transport
from whatsapp.admin import _QUALITY_AT_RISK, _check_failed
from whatsapp.models import WhatsAppAccount

OK, WARNING, CRITICAL = 0, 1, 2
LABELS = {OK: "ok", WARNING: "warning", CRITICAL: "unhealthy"}


@dataclass
class Checked:
    account: WhatsAppAccount
    status: int
    line: str
    token: str
    quality: str


class Command(BaseCommand):
    help = (
        "Call the Graph API for each active WhatsApp number (or --account) and report its "
        "health, access token validity, quality rating and the whatsapp circuit breaker. "
        "Sandbox numbers (no access token) are reported as such and not called. Exit code: "
        "0 all good; 1 a warning (Meta could not be asked now, quality at risk, breaker "
        "open); 2 a number is unhealthy (token refused, Meta refused the check). Changes "
        "nothing but the number's healthy flag, as a send would."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--account",
            metavar="PHONE_NUMBER_ID",
            help="Only this number (its Meta phone number id), even if inactive.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            accounts = list(self._accounts(options["account"]))
        except DatabaseError as exc:
            raise CommandError(f"Database error: {exc}".splitlines()[0]) from exc
        results = [self._check(account) for account in accounts]
        for result in results:
            self.stdout.write(result.line)
            self.stdout.write(
                f"  status: {LABELS[result.status]}; token: {result.token}; "
                f"quality: {result.quality}; {_last_webhook(result.account)}"
            )
        breaker = breaker_status("whatsapp")
        worst = max([r.status for r in results], default=OK)
        breaker_line = (
            f"whatsapp breaker: {breaker['state']} "
            f"({breaker['fail_counter']}/{breaker['fail_max']} failures)"
        )
        if breaker["state"] == "unknown":
            # Its shared state lives in Redis, which cannot be read now.
            worst = max(worst, WARNING)
            reason = breaker.get("reason", "state unreadable")
            breaker_line = f"whatsapp breaker: unknown ({reason})"
        elif breaker["state"] != "closed":
            worst = max(worst, WARNING)
            breaker_line += (
                f"; calls to Meta are paused (retried after {breaker['reset_timeout_seconds']} s,"
                " or reset_circuit_breaker whatsapp)"
            )
        self.stdout.write(breaker_line)
        counts = {label: 0 for label in ("ok", "sandbox", "warning", "unhealthy")}
        for result in results:
            sandbox = result.account.is_sandbox
            counts["sandbox" if sandbox else LABELS[result.status]] += 1
        if results:
            self.stdout.write(
                f"{len(results)} number(s): {counts['ok']} ok, {counts['sandbox']} sandbox, "
                f"{counts['warning']} warning, {counts['unhealthy']} unhealthy."
            )
        else:
            self.stdout.write("No active WhatsApp number to check.")
        if worst == CRITICAL:
            names = ", ".join(str(r.account) for r in results if r.status == CRITICAL)
            raise CommandError(f"Unhealthy WhatsApp number(s): {names}.", returncode=CRITICAL)
        if worst == WARNING:
            raise CommandError("WhatsApp needs attention (see the warnings above).", returncode=1)

    def _accounts(self, phone_number_id: str | None) -> Any:
        accounts = WhatsAppAccount.objects.select_related("inbox").order_by("name", "pk")
        if phone_number_id:
            accounts = accounts.filter(phone_number_id=phone_number_id)
            if not accounts.exists():
                raise CommandError(f"No WhatsApp number with phone number id {phone_number_id}.")
            return accounts
        return accounts.filter(is_active=True)

    def _check(self, account: WhatsAppAccount) -> Checked:
        if account.is_sandbox:
            line = gettext("%(account)s: Sandbox number: nothing to check (no access token).") % {
                "account": account
            }
            return Checked(account, OK, line, "none (sandbox)", "—")
        try:
            info = transport.account_check(account)
        except transport.TransportError as exc:
            line, level = _check_failed(account, exc)
            status = CRITICAL if level == messages.ERROR else WARNING
            token = "refused (expired or revoked)" if exc.is_auth_error else "not checked"
            return Checked(account, status, line, token, "unknown")
        was_unhealthy = not account.is_healthy
        if was_unhealthy:
            services.account_mark_healthy(account=account)
        line = gettext("%(account)s: OK: %(name)s (%(number)s), quality %(quality)s") % {
            "account": account,
            "name": info.verified_name or "—",
            "number": info.display_phone_number or "—",
            "quality": info.quality_rating or "UNKNOWN",
        }
        status, notes = OK, []
        if info.quality_rating in _QUALITY_AT_RISK:
            status = WARNING
            notes.append(gettext("Meta may limit how many customers this number reaches"))
        verification = info.code_verification_status
        if verification and verification != "VERIFIED":
            status = WARNING
            notes.append(gettext("code verification: %(status)s") % {"status": verification})
        if was_unhealthy:
            notes.append(gettext("marked healthy again"))
        if notes:
            line += " — " + "; ".join(notes) + "."
        return Checked(account, status, line, "valid", info.quality_rating or "UNKNOWN")


def _last_webhook(account: WhatsAppAccount) -> str:
    if account.last_webhook_at is None:
        return "no webhook received yet"
    ago = max(timezone.now() - account.last_webhook_at, timedelta(0))
    return f"last webhook {format_duration(ago, smallest='m')} ago"

"""Erase one person's data (an LGPD erasure request): ``erase_contact PHONE|CPF``.

Only reports what it would erase until you add --commit (with --actor and
--reason, recorded in admin's history). See ``conversations.privacy.contact_erase``
for exactly what is replaced and what is kept, and
``subscribers.privacy.subscribers_erase`` for the ISP's records. It lives in the
chatbot app, like ``export_contact_data``: the one app allowed to read both.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction

from accounts.models import User
from chatbot.privacy import subscriber_identities
from conversations.models import Contact
from conversations.privacy import (
    ErasureCounts,
    ambiguous_matches,
    contact_erase,
    contact_erasure_preview,
    contacts_find,
)
from ispsupport.crypto import DecryptionError
from ispsupport.errors import ServiceError
from subscribers.models import Subscriber
from subscribers.privacy import (
    SubscriberErasureCounts,
    subscriber_erasure_preview,
    subscribers_erase,
    subscribers_of,
)

HELP = """Anonymise everything the helpdesk holds about one person (LGPD erasure
request), found by phone (any format: +55 11 98888-7777, 11988887777), WhatsApp
id, WhatsApp user id (BSUID) or CPF/CNPJ. Their contact's name, phone, WhatsApp
ids, CPF/CNPJ, customer code, notes and tags; the text, captions, payloads and
media files (deleted from storage) of every message of their conversations,
internal notes included; the text admin's history quotes; and the error text
of the background tasks' stored runs about them, are replaced.
Conversations and messages stay as rows, with their times, protocol numbers and
ratings, so reports and metrics stay right; active conversations are resolved
and unsent messages fail. The ISP's subscriber records stored here (found by
customer code or CPF/CNPJ, or by a phone no one else has) are deleted with
their contracts and invoices: they are a copy, the ERP keeps its own under the
ISP's legal bases. --keep-subscriber keeps them (e.g. an active contract the
bot must still recognise). Dry run by default: add --commit, with --actor (an
active admin) and --reason (kept in admin's history: write a ticket number, not
the person's data)."""


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "person",
            metavar="PHONE|CPF",
            help="Phone, WhatsApp id, BSUID or CPF/CNPJ (with or without punctuation).",
        )
        parser.add_argument("--commit", action="store_true", help="Erase (default: only report).")
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help="The admin carrying out the request (required with --commit).",
        )
        parser.add_argument(
            "--reason",
            metavar="TEXT",
            help="Why, e.g. the request's ticket number (required with --commit).",
        )
        parser.add_argument(
            "--keep-subscriber",
            action="store_true",
            help="Keep the ISP's subscriber records stored here (default: delete them).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        commit: bool = options["commit"]
        actor = self._actor(options["actor"], required=commit)
        reason = (options["reason"] or "").strip()
        if commit and not reason:
            raise CommandError("--reason is required with --commit (e.g. the ticket number).")

        query: str = options["person"]
        matches = contacts_find(query=query)
        if ambiguous_matches(matches):
            raise CommandError(
                "Ambiguous: read as a CPF/CNPJ it names one contact and read as a phone "
                "another. Write the CPF/CNPJ with its punctuation (529.982.247-25) or the "
                "phone with + and its country code (+55 11 98888-7777)."
            )
        contacts = [m.contact for m in matches]
        subscribers = (
            Subscriber.objects.none()
            if options["keep_subscriber"]
            else self._subscribers(query, contacts)
        )
        if not contacts and not subscribers.exists():
            raise CommandError(
                "No contact or subscriber matches that phone, WhatsApp id or CPF/CNPJ."
            )
        for match in matches:
            self.stdout.write(
                f"Contact #{match.contact.pk} (matched by {', '.join(match.matched_by)})"
            )
        if len(matches) > 1:
            self.stdout.write(f"{len(matches)} contacts match: all of them are erased.")

        if not commit:
            self._describe(contact_erasure_preview(contacts=contacts), verb="would be")
            self._describe_subscribers(
                subscriber_erasure_preview(subscribers), verb="would be", kept=options
            )
            self.stdout.write(
                self.style.SUCCESS(
                    "Dry run: nothing changed; add --commit --actor USERNAME --reason TEXT "
                    "to erase."
                )
            )
            return
        if actor is None:  # _actor() already refused a missing one under --commit
            raise CommandError("--actor is required with --commit.")
        try:
            # One transaction: never a contact erased and their subscriber kept.
            with transaction.atomic():
                counts = (
                    contact_erase(contacts=contacts, actor=actor, reason=reason)
                    if contacts
                    else ErasureCounts()
                )
                erased = subscribers_erase(subscribers, actor=actor, reason=reason)
        except ServiceError as exc:
            raise CommandError(exc.message) from None
        self._describe(counts, verb="were")
        self._describe_subscribers(erased, verb="were", kept=options)
        self.stdout.write(
            self.style.SUCCESS(
                f"Erased {counts.contacts} contact(s) and {erased.subscribers} subscriber "
                f"record(s); recorded in admin's history as done by {actor.username}."
            )
        )

    def _subscribers(self, query: str, contacts: list[Contact]) -> Any:
        try:
            return subscribers_of(**subscriber_identities(query, contacts))
        except DecryptionError:
            raise CommandError(
                "A stored CPF/CNPJ cannot be decrypted with FERNET_KEYS: put the key it was "
                "encrypted with back in FERNET_KEYS and run again (the person's subscriber "
                "records are found by it)."
            ) from None

    def _actor(self, username: str | None, *, required: bool) -> User | None:
        if not username:
            if required:
                raise CommandError("--actor is required with --commit (an admin's username).")
            return None
        actor = User.objects.filter(username=username).first()
        if actor is None or not actor.is_active:
            raise CommandError(f"No active user named {username!r}.")
        if not actor.is_admin:
            raise CommandError(f"{username!r} is not an admin: only admins may erase contacts.")
        return actor

    def _describe(self, counts: ErasureCounts, *, verb: str) -> None:
        lines = [
            f"{counts.contacts} contact(s) {verb} anonymised: name, phone, WhatsApp ids, "
            f"CPF/CNPJ, customer code, notes and {counts.contact_tags} tag(s).",
            f"{counts.conversations} conversation(s) kept as rows (times, protocol, rating); "
            f"{counts.active_conversations} active one(s) {verb} resolved.",
            f"{counts.messages} message(s) kept as rows; {counts.messages_with_content} with "
            f"text, payload or media {verb} cleared, {counts.media_files} media file(s) "
            f"{verb} deleted, {counts.pending_outbound} unsent {verb} failed.",
            f"{counts.notes} internal note(s) {verb} blanked; {counts.admin_history} admin "
            f"history entr(ies) and {counts.task_runs} background task run(s) {verb} "
            "scrubbed.",
        ]
        if not counts.contacts:
            lines = ["No helpdesk contact matches: only subscriber records are erased."]
        for line in lines:
            self.stdout.write(line)

    def _describe_subscribers(
        self, counts: SubscriberErasureCounts, *, verb: str, kept: dict[str, Any]
    ) -> None:
        if kept["keep_subscriber"]:
            self.stdout.write("The ISP's subscriber records are kept (--keep-subscriber).")
            return
        self.stdout.write(
            f"{counts.subscribers} subscriber record(s) {verb} deleted with "
            f"{counts.contracts} contract(s) and {counts.invoices} invoice(s); "
            f"{counts.admin_history} admin history entr(ies) {verb} scrubbed."
        )

"""Everything held about one person, as one JSON document (an LGPD access
request): ``export_contact_data PHONE|CPF [--output FILE]``.

It lives in the chatbot app because the export joins the helpdesk's contacts
(conversations) with the ISP's subscriber records (subscribers), and chatbot is
the one app the import rules (ARCHITECTURE.md) let read both.
"""

from __future__ import annotations

import json
from typing import Any

import structlog
from django.conf import settings
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from accounts.models import User
from chatbot.privacy import subscriber_identities
from conversations.models import Contact
from conversations.privacy import (
    contact_data_export,
    contacts_find,
    query_phone,
    write_private_file,
)
from ispsupport.crypto import DecryptionError
from subscribers.privacy import shared_phone_records, subscriber_records

logger = structlog.get_logger(__name__)

FORMAT = "ispsupport.personal-data-export/1"
BUILTIN_DIRECTORY = "subscribers.builtin.DatabaseDirectory"

HELP = """Export everything this system holds about one person as one JSON
document, for an LGPD access request. The person is found by phone (any
format: +55 11 98888-7777, 11988887777), WhatsApp id, WhatsApp user id (BSUID)
or CPF/CNPJ; every matching contact is exported. Included: the contact (name,
phone, WhatsApp ids, the CPF/CNPJ decrypted, customer code, staff notes, tags);
every conversation (protocol, dates, state, team, rating, tags) with all its
messages (direction, time, kind, text, payload, media file names) and its
INTERNAL NOTES: staff notes are data about the person, and an access request
covers them; and the ISP's subscriber records linked to them (by customer code
or CPF/CNPJ, or by phone when only one subscriber has it): plan, contracts,
invoices. The output is personal data: hand it only to the person; --output
files are created readable by their owner only."""


class Command(BaseCommand):
    help = HELP

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "person",
            metavar="PHONE|CPF",
            help="Phone, WhatsApp id, BSUID or CPF/CNPJ (with or without punctuation).",
        )
        parser.add_argument(
            "--output",
            metavar="FILE",
            help="Write the JSON here (mode 0600) instead of printing it.",
        )
        parser.add_argument(
            "--actor",
            metavar="USERNAME",
            help="Optional: the staff member answering the request, recorded in admin's history.",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        query: str = options["person"]
        actor = None
        if options["actor"]:
            actor = User.objects.filter(username=options["actor"], is_active=True).first()
            if actor is None:
                raise CommandError(f"No active user named {options['actor']!r}.")

        matches = contacts_find(query=query)
        contacts = [m.contact for m in matches]
        try:
            exported = contact_data_export(contacts=contacts)
            subscribers = subscriber_records(**subscriber_identities(query, contacts))
        except DecryptionError:
            raise CommandError(
                "A stored CPF/CNPJ cannot be decrypted with FERNET_KEYS: put the key it was "
                "encrypted with back in FERNET_KEYS and run again (an access request must "
                "not be answered with an incomplete export)."
            ) from None
        shared = shared_phone_records(
            phones=[c.phone or "" for c in contacts] + [query_phone(query) or ""],
            exported={s["code"] for s in subscribers},
        )
        if not exported and not subscribers:
            if shared:
                raise CommandError(
                    f"{shared} subscriber records share that phone, so it does not tell whose "
                    "data to export: export by the person's CPF/CNPJ."
                )
            raise CommandError(
                "Nobody found: no contact or subscriber has that phone, WhatsApp id or CPF/CNPJ."
            )

        document = {
            "format": FORMAT,
            "generated_at": timezone.now().isoformat(),
            "about": (
                "Everything this helpdesk holds about the person: their contact records, "
                "every conversation with its messages and the staff's internal notes, and "
                "the ISP's subscriber records (plan, contracts, invoices)."
            ),
            "contacts": exported,
            "subscribers": subscribers,
        }
        if settings.SUBSCRIBER_DIRECTORY != BUILTIN_DIRECTORY:
            document["subscriber_directory_note"] = (
                "Subscriber records are kept in the ISP's own ERP; only the copies stored "
                "in this system are included here."
            )
        text = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=False) + "\n"

        # The JSON alone goes to stdout (so it can be piped); remarks go to stderr.
        if shared:
            self.stderr.write(
                f"{shared} other subscriber records share this phone and are not included: "
                "they may be someone else's (a family's shared number). Export by CPF/CNPJ "
                "to include the person's own."
            )
        if len(exported) > 1:
            self.stderr.write(
                f"{len(exported)} contacts match (ids "
                f"{', '.join(str(c['id']) for c in exported)}): all are exported."
            )
        if options["output"]:
            write_private_file(options["output"], text)
        else:
            self.stdout.write(text, ending="")
        self._audit(actor, contacts)
        messages = sum(len(c["messages"]) for x in exported for c in x["conversations"])
        conversations = sum(len(x["conversations"]) for x in exported)
        summary = (
            f"Exported {len(exported)} contact(s) ({conversations} conversations, "
            f"{messages} messages) and {len(subscribers)} subscriber record(s)"
        )
        if options["output"]:
            self.stdout.write(self.style.SUCCESS(f"{summary} to {options['output']}."))
        else:
            self.stderr.write(f"{summary}.")
        logger.info(
            "contact_data_exported",
            contact_ids=[c.pk for c in contacts],
            subscribers=len(subscribers),
            actor_id=actor.pk if actor else None,
        )

    def _audit(self, actor: User | None, contacts: list[Contact]) -> None:
        if actor is None:
            return
        content_type = ContentType.objects.get_for_model(Contact)
        for contact in contacts:
            LogEntry.objects.create(
                user=actor,
                content_type=content_type,
                object_id=str(contact.pk),
                object_repr=f"#{contact.pk}",
                # LogEntry has no "viewed" flag; the message says what happened.
                action_flag=CHANGE,
                change_message=(
                    "LGPD access request: data exported (manage.py export_contact_data)."
                ),
            )

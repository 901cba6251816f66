"""Rows the WhatsApp tests and those of the apps built on it need often."""

from __future__ import annotations

from typing import Any

from django.utils import timezone

from conversations.models import Inbox
from whatsapp.models import MessageTemplate, WhatsAppAccount


def account_of(inbox: Inbox, phone_number_id: str = "1099") -> WhatsAppAccount:
    """The WhatsApp number behind ``inbox``, created the first time."""
    account, _created = WhatsAppAccount.objects.get_or_create(
        inbox=inbox, defaults={"name": inbox.name or "Suporte", "phone_number_id": phone_number_id}
    )
    return account


def approved_template(
    account: WhatsAppAccount,
    name: str,
    components: list[dict[str, Any]],
    *,
    language: str = "pt_BR",
    **fields: Any,
) -> MessageTemplate:
    """A template as ``sync_templates`` stores an approved one."""
    values: dict[str, Any] = {"status": "APPROVED", "synced_at": timezone.now(), **fields}
    return MessageTemplate.objects.create(
        account=account, name=name, language=language, components=components, **values
    )

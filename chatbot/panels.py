"""The subscriber panel of the console's conversation view: who the customer
is in the ISP's systems (plan, contract status, open invoices, outages in
their region), found the way the bot finds them.

Registered in ``ChatbotConfig.ready()`` through ``conversations.panels``, so
the core shows it without importing the bot or the subscriber directory.
Reading only: linking the contact to the subscriber found stays the bot's job.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import structlog
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET

from conversations.models import Contact
from conversations.selectors import conversation_get_for
from ispsupport.identity import canonical_phone
from subscribers.directory import (
    ContractInfo,
    DirectoryError,
    InvoiceInfo,
    OutageInfo,
    SubscriberDirectory,
    SubscriberInfo,
    get_directory,
)
from subscribers.models import Contract

logger = structlog.get_logger(__name__)


@dataclass
class Found:
    subscriber: SubscriberInfo | None = None
    # How many subscribers share the contact's phone when it alone cannot tell.
    ambiguous: int = 0
    invoices: list[InvoiceInfo] = field(default_factory=list)
    outages: list[OutageInfo] = field(default_factory=list)


def identify(contact: Contact, directory: SubscriberDirectory) -> Found:
    """The subscriber behind ``contact``, as ``chatbot.engine`` identifies them:
    the customer code the bot linked, else the CPF/CNPJ they gave, else their
    phone when exactly one subscriber has it. Raises ``DirectoryError``."""
    subscriber = directory.get(contact.customer_code) if contact.customer_code else None
    if subscriber is None and contact.document_encrypted:
        subscriber = directory.find_by_document(contact.document)
    if subscriber is None:
        phone = contact.phone or canonical_phone(contact.wa_id or "")
        found = directory.find_by_phone(phone) if phone else []
        if len(found) == 1:
            subscriber = found[0]
        elif len(found) > 1:
            return Found(ambiguous=len(found))
    if subscriber is None:
        return Found()
    return Found(
        subscriber=subscriber,
        invoices=directory.open_invoices(subscriber.code),
        outages=directory.open_outages(subscriber.region) if subscriber.region else [],
    )


def _status_label(contract: ContractInfo) -> str:
    try:
        return str(Contract.Status(contract.status).label)
    except ValueError:
        return contract.status


def _reason_label(contract: ContractInfo) -> str:
    if not contract.suspension_reason:
        return ""
    try:
        return str(Contract.SuspensionReason(contract.suspension_reason).label)
    except ValueError:
        return contract.suspension_reason


@never_cache
@require_GET
@login_required
def subscriber_panel(request: HttpRequest, pk: int) -> HttpResponse:
    """GET /console/panels/subscriber/<conversation pk>/: an HTML fragment; 404
    for a conversation the user may not see, like every console endpoint."""
    conversation = conversation_get_for(request.user, pk)  # type: ignore[arg-type]
    try:
        found = identify(conversation.contact, get_directory())
    except DirectoryError as exc:
        # An ERP that is down must not break the conversation page.
        logger.warning("subscriber_panel_directory_failed", conversation_id=pk, error=str(exc))
        return render(request, "chatbot/subscriber_panel.html", {"unavailable": True})
    contracts = [
        {
            "info": contract,
            "status_label": _status_label(contract),
            "reason_label": _reason_label(contract),
        }
        for contract in (found.subscriber.contracts if found.subscriber else ())
    ]
    return render(
        request,
        "chatbot/subscriber_panel.html",
        {
            "unavailable": False,
            "subscriber": found.subscriber,
            "ambiguous": found.ambiguous,
            "contracts": contracts,
            "invoices": found.invoices,
            "outages": found.outages,
        },
    )

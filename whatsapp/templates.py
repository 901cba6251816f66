"""Message templates: synced from Meta, with the variables each one expects.

A template is the only way to write to a customer outside the 24-hour window,
so agents and the bot need to know which variables to fill: ``template_variables``
reads them from the components Meta returned.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import structlog
from django.db import transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from ispsupport.errors import ServiceError
from whatsapp import transport
from whatsapp.models import MessageTemplate, WhatsAppAccount

logger = structlog.get_logger(__name__)

# {{1}} positional or {{first_name}} named (parameter_format NAMED).
_VARIABLE = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")


class TemplateSyncError(ServiceError):
    """The templates of this number cannot be synced (sandbox, no WABA id, Meta refused)."""


@dataclass(frozen=True)
class SyncResult:
    created: int
    updated: int
    removed: int

    def __str__(self) -> str:
        return _("%(created)d created, %(updated)d updated, %(removed)d removed") % {
            "created": self.created,
            "updated": self.updated,
            "removed": self.removed,
        }


def templates_sync(*, account: WhatsAppAccount) -> SyncResult:
    """Make this number's MessageTemplate rows match what Meta has, all pages.

    Nothing is written unless every page arrived: a half-read list would
    delete the templates that were on the pages not read.
    """
    if account.is_sandbox:
        raise TemplateSyncError(
            _("%(account)s has no access token (sandbox mode): there are no templates to sync.")
            % {"account": account},
            code="sandbox",
        )
    if not account.business_account_id:
        raise TemplateSyncError(
            _("%(account)s has no WhatsApp business account id: templates cannot be synced.")
            % {"account": account},
            code="no_business_account",
        )
    try:
        remote = transport.list_templates(account)
    except transport.TransportError as exc:
        raise TemplateSyncError(
            _("Meta refused the template list for %(account)s: %(error)s")
            % {"account": account, "error": exc},
            code="graph_error",
            status=502,
        ) from exc
    result = _store(account, remote)
    logger.info(
        "whatsapp_templates_synced",
        account_id=account.pk,
        created=result.created,
        updated=result.updated,
        removed=result.removed,
    )
    return result


@transaction.atomic
def _store(account: WhatsAppAccount, remote: list[dict[str, Any]]) -> SyncResult:
    now = timezone.now()
    existing = {
        (t.name, t.language): t
        for t in MessageTemplate.objects.select_for_update().filter(account=account)
    }
    seen: set[tuple[str, str]] = set()
    created = updated = 0
    for item in remote:
        name, language = str(item.get("name") or ""), str(item.get("language") or "")
        if not name or not language or (name, language) in seen:
            continue
        seen.add((name, language))
        values = {
            "category": str(item.get("category") or "")[:32],
            "status": str(item.get("status") or "")[:32],
            "components": item.get("components") or [],
            "external_id": str(item.get("id") or "")[:64],
        }
        row = existing.get((name, language))
        if row is None:
            MessageTemplate.objects.create(
                account=account, name=name, language=language, synced_at=now, **values
            )
            created += 1
            continue
        if any(getattr(row, field) != value for field, value in values.items()):
            updated += 1
        for field, value in values.items():
            setattr(row, field, value)
        row.synced_at = now
        row.save(update_fields=[*values, "synced_at"])
    gone = [row.pk for key, row in existing.items() if key not in seen]
    if gone:
        MessageTemplate.objects.filter(pk__in=gone).delete()
    return SyncResult(created=created, updated=updated, removed=len(gone))


def _names(text: str) -> list[str]:
    found: list[str] = []
    for match in _VARIABLE.finditer(text or ""):
        if match.group(1) not in found:
            found.append(match.group(1))
    return found


def template_variables(template: MessageTemplate) -> dict[str, Any]:
    """What a sender must fill, per component, in the order Meta numbers them.

    ``{"header": {"format": "text"|"image"|"video"|"document"|"location"|None,
    "variables": [...]}, "body": {"variables": [...]}, "buttons": [{"index": 0,
    "type": "url", "variables": [...]}]}``. A media header needs a media
    parameter (``format``), not text variables.
    """
    header: dict[str, Any] = {"format": None, "variables": []}
    body: dict[str, Any] = {"variables": []}
    buttons: list[dict[str, Any]] = []
    for component in template.components or []:
        if not isinstance(component, dict):
            continue
        kind = str(component.get("type", "")).upper()
        if kind == "HEADER":
            header["format"] = str(component.get("format") or "TEXT").lower()
            header["variables"] = _names(component.get("text", ""))
        elif kind == "BODY":
            body["variables"] = _names(component.get("text", ""))
        elif kind == "BUTTONS":
            for index, button in enumerate(component.get("buttons") or []):
                if not isinstance(button, dict):
                    continue
                variables = _names(button.get("url", ""))
                if str(button.get("type", "")).upper() == "COPY_CODE":
                    variables = variables or ["coupon_code"]
                if variables:
                    buttons.append(
                        {
                            "index": index,
                            "type": str(button.get("type", "")).lower(),
                            "variables": variables,
                        }
                    )
    return {"header": header, "body": body, "buttons": buttons}

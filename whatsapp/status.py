"""GET /api/v1/whatsapp/status: is WhatsApp working, per number, for staff.

Three queries whatever the number of numbers: the accounts, the last hour's
outbound messages by status, and the pending sends.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.db.models import Count
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from conversations.models import Message
from ispsupport.breakers import breaker_status
from whatsapp.models import WhatsAppAccount

_ACCOUNT = "conversation__inbox__whatsapp_account"


class IsActiveStaff(BasePermission):
    message = gettext_lazy("Only staff may see the WhatsApp status.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        user = request.user
        return bool(user and user.is_authenticated and user.is_active)


def _iso(value: Any) -> str | None:
    return value.isoformat() if value else None


def whatsapp_status() -> dict[str, Any]:
    since = timezone.now() - timedelta(hours=1)
    accounts = list(WhatsAppAccount.objects.order_by("name", "pk"))
    outbound = Message.objects.filter(
        direction=Message.Direction.OUT, **{f"{_ACCOUNT}__isnull": False}
    )
    by_status: dict[int, dict[str, int]] = {}
    for row in (
        outbound.filter(created_at__gte=since)
        .values(_ACCOUNT, "status")
        .annotate(n=Count("id"))
        .order_by()
    ):
        by_status.setdefault(row[_ACCOUNT], {})[row["status"]] = row["n"]
    pending = dict(
        outbound.filter(status=Message.Status.PENDING)
        .values_list(_ACCOUNT)
        .annotate(n=Count("id"))
        .order_by()
    )
    breaker = breaker_status("whatsapp")
    statuses = [s for s in Message.Status.values if s != Message.Status.RECEIVED]
    numbers = []
    for account in accounts:
        counts = by_status.get(account.pk, {})
        numbers.append(
            {
                "id": account.pk,
                "name": account.name,
                "display_phone": account.display_phone,
                "phone_number_id": account.phone_number_id,
                "active": account.is_active,
                "mode": "sandbox" if account.is_sandbox else "live",
                "healthy": account.is_healthy,
                "last_webhook_at": _iso(account.last_webhook_at),
                "breaker_state": breaker["state"],
                "messages_last_hour": {status: counts.get(status, 0) for status in statuses},
                "pending_sends": pending.get(account.pk, 0),
                "last_error": account.last_error or None,
                "last_error_at": _iso(account.last_error_at),
            }
        )
    in_sandbox = [n for n in numbers if n["active"] and n["mode"] == "sandbox"]
    if not numbers:
        message = _("No WhatsApp number is configured: customers cannot write yet.")
    elif in_sandbox:
        message = _(
            "Sandbox mode is active for %(names)s: outbound messages are recorded here and "
            "never sent to WhatsApp. Set an access token to go live."
        ) % {"names": ", ".join(n["name"] for n in in_sandbox)}
    else:
        message = _("Live: messages are sent through the WhatsApp Cloud API.")
    return {
        "sandbox": bool(in_sandbox),
        "message": message,
        "breaker": {
            "state": breaker["state"],
            "fail_counter": breaker["fail_counter"],
            "opened_at": breaker["opened_at"],
        },
        "numbers": numbers,
    }


class StatusView(APIView):
    """Per WhatsApp number: sandbox or live, health, last webhook, breaker,
    outbound messages by status in the last hour, pending sends, last error."""

    permission_classes = [IsActiveStaff]

    @extend_schema(responses={200: OpenApiTypes.OBJECT})
    def get(self, request: Request) -> Response:
        return Response(whatsapp_status())

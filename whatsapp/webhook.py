"""Meta's webhook: the verification handshake (GET) and deliveries (POST).

The signature is this view's permission, checked over the raw body before
anything is parsed: a forged request never reaches the parser. Then the
envelope is parsed and stored in one transaction; the bot and every send run
later in tasks, so the answer comes back in milliseconds.
"""

from __future__ import annotations

import time
from typing import Any

import structlog
from django.db import InterfaceError, OperationalError
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from whatsapp.payloads import EnvelopeError, parse_envelope
from whatsapp.services import signature_valid, verify_token_valid, webhook_ingest

logger = structlog.get_logger(__name__)

SIGNATURE_HEADER = "HTTP_X_HUB_SIGNATURE_256"


class HasValidSignature(BasePermission):
    """POST bodies must carry Meta's ``X-Hub-Signature-256`` over the exact raw
    bytes received (Meta escapes non-ASCII as \\uXXXX: re-serialising would
    change them). GET is the handshake, checked by its verify token."""

    message = "Invalid or missing X-Hub-Signature-256."

    def has_permission(self, request: Request, view: APIView) -> bool:
        if request.method != "POST":
            return True
        raw = request._request  # the Django request: its body, unparsed
        valid = signature_valid(body=raw.body, header=raw.META.get(SIGNATURE_HEADER, ""))
        if not valid:
            logger.warning("whatsapp_webhook_bad_signature", size=len(raw.body))
        return valid


class WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes = [HasValidSignature]
    throttle_classes: list[Any] = []
    # Nothing is parsed by DRF: the body is read raw, after the signature check.
    parser_classes: list[Any] = []

    @extend_schema(exclude=True)
    def get(self, request: Request) -> HttpResponse:
        params = request.query_params
        mode = params.get("hub.mode", "")
        token = params.get("hub.verify_token", "")
        if mode == "subscribe" and verify_token_valid(token):
            logger.info("whatsapp_webhook_verified")
            return HttpResponse(
                params.get("hub.challenge", ""), content_type="text/plain; charset=utf-8"
            )
        logger.warning("whatsapp_webhook_verification_refused", mode=mode)
        return Response(
            {"detail": _("Webhook verification failed."), "code": "verification_failed"},
            status=403,
        )

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        received_at = time.perf_counter()
        try:
            envelope = parse_envelope(request._request.body)
        except EnvelopeError as exc:
            logger.warning("whatsapp_webhook_malformed", reason=str(exc))
            return Response(
                {"detail": _("Not a WhatsApp webhook: %(reason)s.") % {"reason": exc},
                 "code": "invalid_envelope"},
                status=400,
            )  # fmt: skip
        result = webhook_ingest(envelope=envelope, received_at=received_at)
        return Response({"status": "ok", **result.as_dict()})

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, OperationalError | InterfaceError):
            # Meta retries a 5xx for days: better than losing the delivery,
            # and better than holding its connection while the database is away.
            logger.error("whatsapp_webhook_database_unavailable", error=type(exc).__name__)
            return Response(
                {
                    "detail": _("The database is unavailable; try again later."),
                    "code": "unavailable",
                },
                status=503,
                headers={"Retry-After": "30"},
            )
        return super().handle_exception(exc)

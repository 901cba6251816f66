"""Meta's webhook: the verification handshake (GET) and deliveries (POST).

The signature is this view's permission, checked over the raw body before
anything is parsed: a forged request never reaches the parser. Then the
envelope is parsed and stored in one transaction; the bot and every send run
later in tasks, so the answer comes back in milliseconds.

When PostgreSQL is away, Meta gets a quick 503 it retries, never a hang: the
storing goes through the ``database`` breaker (once open, deliveries are
refused without touching the pool) and under a deadline that cuts a
connection the server stopped answering on.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import psycopg
import pybreaker
import structlog
from django.conf import settings
from django.db import InterfaceError, OperationalError, connection
from django.http import HttpResponse
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ispsupport.breakers import get_breaker
from whatsapp.payloads import EnvelopeError, parse_envelope
from whatsapp.services import signature_valid, verify_token_valid, webhook_ingest

logger = structlog.get_logger(__name__)

SIGNATURE_HEADER = "HTTP_X_HUB_SIGNATURE_256"
BREAKER = "database"
# Meta retries a 5xx for days; asking for 30 s spares a database on its way back.
RETRY_AFTER = "30"


@contextlib.contextmanager
def database_deadline(seconds: float) -> Iterator[None]:
    """Cut this thread's PostgreSQL connection if the block is still running
    after ``seconds``.

    A server that is alive but stuck, or a network that swallows packets,
    would hold the request for ever: statement_timeout is the server's own
    clock, and a cancel request would be stuck the same way. Shutting the
    socket down wakes the waiting read at once with an OperationalError;
    the transaction was not committed, or Meta's retry finds it a duplicate.
    """
    if connection.vendor != "postgresql":
        yield
        return
    connection.ensure_connection()  # the pool's wait is bounded by its own timeout
    pg = connection.connection
    lock = threading.Lock()
    finished = False

    def cut() -> None:
        with lock:
            if finished or pg.closed:
                return
            logger.error("whatsapp_webhook_database_deadline", seconds=seconds)
            _shut_down(pg)

    timer = threading.Timer(seconds, cut)
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        with lock:
            finished = True
        timer.cancel()


def _shut_down(pg: psycopg.Connection[Any]) -> None:
    """shutdown() acts on the socket, not on one descriptor of it: a dup will do,
    and the connection's own descriptor stays for psycopg to close."""
    try:
        fd = pg.pgconn.socket
    except psycopg.Error:
        return  # already lost: nothing left to wait on
    with contextlib.suppress(OSError), socket.socket(fileno=os.dup(fd)) as sock:
        sock.shutdown(socket.SHUT_RDWR)


def _unavailable() -> Response:
    return Response(
        {"detail": _("The database is unavailable; try again later."), "code": "unavailable"},
        status=503,
        headers={"Retry-After": RETRY_AFTER},
    )


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
        try:
            # Only outages count towards opening it (ispsupport/breakers.py).
            # calling(), not call(): call() holds the breaker's lock for the
            # whole call, one delivery at a time per process. So, half-open,
            # deliveries arriving during the trial are let through as well;
            # each is bounded by the pool timeout and the deadline.
            with (
                get_breaker(BREAKER).calling(),
                database_deadline(settings.DATABASE_WEBHOOK_TIMEOUT),
            ):
                result = webhook_ingest(envelope=envelope, received_at=received_at)
        except pybreaker.CircuitBreakerError:
            logger.warning("whatsapp_webhook_database_breaker_open")
            return _unavailable()
        return Response({"status": "ok", **result.as_dict()})

    def handle_exception(self, exc: Exception) -> Response:
        if isinstance(exc, OperationalError | InterfaceError):
            # Meta retries a 5xx for days: better than losing the delivery,
            # and better than holding its connection while the database is away.
            logger.error("whatsapp_webhook_database_unavailable", error=type(exc).__name__)
            return _unavailable()
        return super().handle_exception(exc)

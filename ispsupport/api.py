"""API pieces shared by every app: the error format and the ops endpoints that
need authentication (circuit breakers)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils.translation import gettext as _
from django.views.defaults import page_not_found
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView
from rest_framework.views import exception_handler as drf_exception_handler

from ispsupport.breakers import UnknownBreakerError, all_breaker_statuses, reset_breaker
from ispsupport.errors import ServiceError
from ispsupport.permissions import IsAdminRole


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body carrying ``detail`` and a ``code``."""
    if isinstance(exc, ServiceError):
        return Response({"detail": exc.message, "code": exc.code}, status=exc.status)
    if isinstance(exc, DjangoValidationError):
        # A service's input check: field errors when it names fields.
        if hasattr(exc, "error_dict"):
            exc = serializers.ValidationError(exc.message_dict)
        else:
            code = getattr(exc, "code", None) or "invalid"
            return Response({"detail": " ".join(exc.messages), "code": code}, status=400)
    response = drf_exception_handler(exc, context)
    if response is None:
        return None
    data = response.data
    if isinstance(data, dict) and "detail" in data:
        detail = data["detail"]
        data = {
            "detail": str(detail),
            "code": getattr(detail, "code", "error"),
            **{k: v for k, v in data.items() if k != "detail"},
        }
    elif isinstance(data, dict | list):
        data = {"detail": "Invalid input.", "code": "invalid", "errors": data}
    response.data = data
    return response


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """``handler404``: under /api/ a client gets the API's JSON error, not an
    HTML page (``/api/v1/conversations/abc/`` matches no route); elsewhere
    Django's page."""
    if request.path.startswith("/api/"):
        return JsonResponse(
            {"detail": _("Not found."), "code": "not_found"},
            status=404,
            json_dumps_params={"ensure_ascii": False},
        )
    return page_not_found(request, exception)  # type: ignore[arg-type]


class ApiRootView(APIView):
    permission_classes = [AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        return Response(
            {
                "version": "v1",
                "docs": reverse("api-docs", request=request),
                "schema": reverse("api-schema", request=request),
                "circuit_breakers": reverse("circuit-breakers", request=request),
                "login": reverse("auth-login", request=request),
                "me": reverse("auth-me", request=request),
                "users": reverse("user-list", request=request),
                "teams": reverse("team-list", request=request),
                "conversations": reverse("conversation-list", request=request),
                "contacts": reverse("contact-list", request=request),
                "canned_replies": reverse("canned-reply-list", request=request),
            }
        )


class CircuitBreakerSerializer(serializers.Serializer):
    name = serializers.CharField()
    description = serializers.CharField()
    # unknown: its shared state in Redis could not be read (then fail_counter
    # is null and ``reason`` says why).
    state = serializers.ChoiceField(["closed", "open", "half-open", "unknown"])
    fail_counter = serializers.IntegerField(allow_null=True)
    fail_max = serializers.IntegerField()
    reset_timeout_seconds = serializers.IntegerField()
    opened_at = serializers.DateTimeField(allow_null=True)
    storage = serializers.ChoiceField(["memory", "redis"])
    reason = serializers.CharField(required=False, help_text="Only when the state is unknown.")


class CircuitBreakerListSerializer(serializers.Serializer):
    breakers = CircuitBreakerSerializer(many=True)


class CircuitBreakerListView(APIView):
    """State of every named circuit breaker. Read-only, open to monitoring."""

    permission_classes = [AllowAny]

    @extend_schema(responses=CircuitBreakerListSerializer)
    def get(self, request: Request) -> Response:
        return Response({"breakers": all_breaker_statuses()})


class CircuitBreakerResetView(APIView):
    """Close a breaker by hand (admins only), e.g. after fixing a token. 503
    when its shared state in Redis cannot be reached (nothing was reset)."""

    permission_classes = [IsAdminRole]

    @extend_schema(request=None, responses=CircuitBreakerSerializer)
    def post(self, request: Request, name: str) -> Response:
        try:
            return Response(reset_breaker(name), status=status.HTTP_200_OK)
        except UnknownBreakerError:
            raise Http404(_("No circuit breaker named %(name)r.") % {"name": name}) from None

"""Subscribers API v1 (/api/v1/subscribers/…).

Staff read: the list searches the synced tables; the detail asks the
configured directory (the ERP when an adapter is set), so it shows what the
bot would tell the customer. Admins write: the ERP's nightly sync posts
batches of up to 1000 items to the ``…/bulk`` endpoints, which go through
``subscribers.services``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from django.http import Http404
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import generics, serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from ispsupport.crypto import DecryptionError
from ispsupport.errors import ServiceError
from ispsupport.openapi import CONFLICT, UNAVAILABLE
from ispsupport.permissions import IsAdminRole
from subscribers import selectors, services
from subscribers.directory import DirectoryError, get_directory
from subscribers.items import (
    ContractItemSerializer,
    InvoiceItemSerializer,
    OutageItemSerializer,
    PlanItemSerializer,
    SubscriberItemSerializer,
    bulk_request,
)
from subscribers.models import Outage, Subscriber

# --- Output -----------------------------------------------------------------------
# Plain serializers: they read this app's rows and the directory's dataclasses alike.


class PlanSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    download_mbps = serializers.IntegerField()
    upload_mbps = serializers.IntegerField()
    price = serializers.DecimalField(max_digits=10, decimal_places=2)


class ContractSerializer(serializers.Serializer):
    code = serializers.CharField()
    plan = PlanSerializer()
    status = serializers.CharField(help_text=_("active, suspended or cancelled."))
    suspension_reason = serializers.CharField(
        help_text=_('non_payment, request, other, or "" when not suspended.')
    )
    address = serializers.CharField()
    trust_unlocked_until = serializers.SerializerMethodField(
        help_text=_("Until when a trust unlock keeps the connection on; null when none is.")
    )

    @extend_schema_field(serializers.DateTimeField(allow_null=True))
    def get_trust_unlocked_until(self, contract: Any) -> str | None:
        until: datetime | None = contract.trust_unlocked_until
        if until is None or until <= timezone.now():
            return None
        return serializers.DateTimeField().to_representation(until)


def _masked(subscriber: Subscriber | None) -> str:
    if subscriber is None:
        return ""
    try:
        return subscriber.document_masked
    except DecryptionError:
        # A key dropped from FERNET_KEYS too early: the list must still load.
        return ""


class SubscriberSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    phone = serializers.CharField()
    region = serializers.CharField()
    document_masked = serializers.SerializerMethodField(
        help_text=_("***.456.789-** style; the CPF/CNPJ itself is never returned.")
    )
    contracts = ContractSerializer(many=True, source="contracts.all")

    @extend_schema_field(OpenApiTypes.STR)
    def get_document_masked(self, subscriber: Subscriber) -> str:
        return _masked(subscriber)


class InvoiceSerializer(serializers.Serializer):
    code = serializers.CharField()
    contract = serializers.CharField(source="contract_code")
    amount = serializers.DecimalField(max_digits=10, decimal_places=2)
    due_date = serializers.DateField()
    digitable_line = serializers.CharField()
    pix_code = serializers.CharField()
    overdue = serializers.BooleanField()


class OutageSerializer(serializers.Serializer):
    code = serializers.CharField()
    region = serializers.CharField()
    title = serializers.CharField()
    description = serializers.CharField()
    started_at = serializers.DateTimeField(allow_null=True)
    forecast_at = serializers.DateTimeField(allow_null=True)


class SubscriberDetailSerializer(serializers.Serializer):
    code = serializers.CharField()
    name = serializers.CharField()
    phone = serializers.CharField()
    region = serializers.CharField()
    document_masked = serializers.CharField()
    contracts = ContractSerializer(many=True)
    open_invoices = InvoiceSerializer(many=True, help_text=_("Unpaid, oldest due first."))
    outages = OutageSerializer(many=True, help_text=_("Open outages in the subscriber's region."))


class BulkResultSerializer(serializers.Serializer):
    created = serializers.IntegerField()
    updated = serializers.IntegerField()


class SearchSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


# --- Reads ------------------------------------------------------------------------


class SubscriberListView(generics.ListAPIView):
    """Subscribers with their contracts. Any signed-in staff member."""

    serializer_class = SubscriberSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Subscriber.objects.none()
        # ``?q=`` checked like any input: a NUL byte or a novel is a 400.
        search = SearchSerializer(data={"q": self.request.query_params.get("q", "")})
        search.is_valid(raise_exception=True)
        return selectors.subscriber_search(search.validated_data["q"])

    @extend_schema(
        operation_id="subscribers_list",
        parameters=[
            OpenApiParameter(
                "q",
                OpenApiTypes.STR,
                description=str(_("Name (contains), code (exact), phone digits or CPF/CNPJ.")),
            )
        ],
    )
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class SubscriberDetailView(APIView):
    """One subscriber as the directory sees them: contracts, open invoices and
    the open outages of their region. 503 when the directory (an ERP) fails."""

    @extend_schema(
        operation_id="subscribers_retrieve",
        responses={200: SubscriberDetailSerializer, 503: UNAVAILABLE},
    )
    def get(self, request: Request, code: str) -> Response:
        directory = get_directory()
        try:
            info = directory.get(code)
            if info is None:
                raise Http404(_("No such subscriber."))
            invoices = directory.open_invoices(info.code)
            outages = directory.open_outages(info.region) if info.region else []
        except DirectoryError:
            raise ServiceError(
                str(_("The subscriber directory is not answering; try again in a moment.")),
                code="directory_unavailable",
                status=503,
            ) from None
        local = Subscriber.objects.filter(code=info.code).only("document_encrypted").first()
        data = {
            "code": info.code,
            "name": info.name,
            "phone": info.phone,
            "region": info.region,
            "document_masked": _masked(local),
            "contracts": info.contracts,
            "open_invoices": invoices,
            "outages": outages,
        }
        return Response(SubscriberDetailSerializer(data).data)


class OutageListView(generics.ListAPIView):
    """Outages not resolved yet, the newest first. Any signed-in staff member."""

    serializer_class = OutageSerializer
    filter_backends: list[Any] = []

    def get_queryset(self) -> Any:
        if getattr(self, "swagger_fake_view", False):
            return Outage.objects.none()
        return selectors.outages_open()

    @extend_schema(operation_id="subscribers_outages_list")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


# --- Writes -----------------------------------------------------------------------


_BULK_INVALID = OpenApiResponse(
    description=str(
        _(
            'Nothing written. Item errors by index: {"detail": "Invalid input.", "code": '
            '"invalid", "errors": {"items": {"3": {"phone": ["…"]}}}}.'
        )
    )
)


class _BulkView(APIView):
    permission_classes = [IsAdminRole]
    upsert: Callable[..., dict[str, int]]

    def post(self, request: Request) -> Response:
        body = request.data
        if not isinstance(body, Mapping) or "items" not in body:
            raise serializers.ValidationError(
                {"items": [_('This field is required: send {"items": [...]}.')]}, code="required"
            )
        return Response(type(self).upsert(items=body["items"]))


def _bulk_view(
    name: str,
    item: type[serializers.Serializer],
    upsert: Callable[..., dict[str, int]],
    what: str,
) -> type[APIView]:
    """The view of one bulk endpoint, documented with its item shape."""

    operation = "subscribers_bulk" if name == "subscribers" else f"subscribers_{name}_bulk"

    class View(_BulkView):
        @extend_schema(
            operation_id=operation,
            request=bulk_request(item, f"{item.__name__.removesuffix('ItemSerializer')}Bulk"),
            # 409: a concurrent call wrote the same codes; nothing of this one was.
            responses={200: BulkResultSerializer, 400: _BULK_INVALID, 409: CONFLICT},
            description=what,
        )
        def post(self, request: Request) -> Response:
            return super().post(request)

    View.upsert = staticmethod(upsert)  # type: ignore[assignment]
    View.__name__ = View.__qualname__ = f"{name.title()}BulkView"
    return View


PlanBulkView = _bulk_view(
    "plans",
    PlanItemSerializer,
    services.plans_upsert,
    "Create or update plans by code. Admins only.",
)
SubscriberBulkView = _bulk_view(
    "subscribers",
    SubscriberItemSerializer,
    services.subscribers_upsert,
    "Create or update subscribers by code; the CPF/CNPJ is stored encrypted. Admins only.",
)
ContractBulkView = _bulk_view(
    "contracts",
    ContractItemSerializer,
    services.contracts_upsert,
    "Create or update contracts by code; subscriber and plan are codes of existing rows. "
    "Admins only.",
)
InvoiceBulkView = _bulk_view(
    "invoices",
    InvoiceItemSerializer,
    services.invoices_upsert,
    "Create or update invoices by code; contract is the code of an existing contract. Admins only.",
)
OutageBulkView = _bulk_view(
    "outages",
    OutageItemSerializer,
    services.outages_upsert,
    "Create or update outages by code; resolved_at closes one. Admins only.",
)

"""The shape of one item of each bulk upsert (``subscribers.services.*_upsert``).

The services check every item with these before writing anything; the API
shows them in its schema. Only ``code`` is always required: an item whose
code is new must also carry what a new row needs (its name, price…), an item
whose code exists changes only the fields it names.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ispsupport.identity import canonical_phone, clean_document
from subscribers.models import Contract, Invoice

# PositiveIntegerField is a 32-bit column on PostgreSQL.
_MAX_INT = 2_147_483_647


def _pattern(values: list[str]) -> dict[str, str]:
    return {"type": "string", "pattern": "^(" + "|".join(values) + ")$"}


# Contracts, invoices and messages each have a "status" with its own values:
# as enums they would collide in the schema's component names, so these two
# are documented as patterns.
@extend_schema_field(_pattern(list(Contract.Status.values)))
class ContractStatusField(serializers.ChoiceField):
    pass


@extend_schema_field(_pattern(list(Invoice.Status.values)))
class InvoiceStatusField(serializers.ChoiceField):
    pass


class _ItemSerializer(serializers.Serializer):
    code = serializers.CharField(max_length=40, help_text=_("The ERP's own code: the upsert key."))

    def validate_code(self, value: str) -> str:
        if "/" in value:
            # The detail URL takes the code as one path segment.
            raise serializers.ValidationError(_("A code cannot contain '/'."))
        return value


class PlanItemSerializer(_ItemSerializer):
    name = serializers.CharField(max_length=120, required=False)
    download_mbps = serializers.IntegerField(min_value=0, max_value=_MAX_INT, required=False)
    upload_mbps = serializers.IntegerField(min_value=0, max_value=_MAX_INT, required=False)
    price = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text=_('Monthly price in R$, e.g. "99.90".'),
    )
    active = serializers.BooleanField(required=False, help_text=_("Still offered."))


class SubscriberItemSerializer(_ItemSerializer):
    name = serializers.CharField(max_length=150, required=False)
    document = serializers.CharField(
        max_length=32,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("CPF or CNPJ, punctuation allowed; empty removes it, absent keeps it."),
    )
    phone = serializers.CharField(
        max_length=30,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("Any usual format; stored as E.164 with the ninth digit."),
    )
    email = serializers.EmailField(max_length=254, required=False, allow_blank=True)
    region = serializers.CharField(max_length=80, required=False, allow_blank=True)
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_document(self, value: str | None) -> str:
        if not value or not value.strip():
            return ""
        try:
            return clean_document(value)
        except DjangoValidationError:
            raise serializers.ValidationError(
                _("Enter a valid CPF or CNPJ."), code="invalid_document"
            ) from None

    def validate_phone(self, value: str | None) -> str:
        if not value or not value.strip():
            return ""
        phone = canonical_phone(value, typed=True)
        if phone is None:
            raise serializers.ValidationError(
                _("Enter a valid phone number, e.g. +55 11 98888-7777."), code="invalid_phone"
            )
        return phone


class ContractItemSerializer(_ItemSerializer):
    subscriber = serializers.CharField(
        max_length=40, required=False, help_text=_("The subscriber's code.")
    )
    plan = serializers.CharField(max_length=40, required=False, help_text=_("The plan's code."))
    status = ContractStatusField(Contract.Status.choices, required=False)
    suspension_reason = serializers.ChoiceField(
        Contract.SuspensionReason.choices,
        required=False,
        allow_blank=True,
        allow_null=True,
        help_text=_("Only with status suspended."),
    )
    address = serializers.CharField(max_length=255, required=False, allow_blank=True)

    def validate_suspension_reason(self, value: str | None) -> str:
        return value or ""


class InvoiceItemSerializer(_ItemSerializer):
    contract = serializers.CharField(
        max_length=40, required=False, help_text=_("The contract's code.")
    )
    amount = serializers.DecimalField(
        max_digits=10,
        decimal_places=2,
        min_value=0,
        required=False,
        help_text=_('In R$, e.g. "99.90".'),
    )
    due_date = serializers.DateField(required=False, help_text=_("YYYY-MM-DD."))
    status = InvoiceStatusField(Invoice.Status.choices, required=False)
    digitable_line = serializers.CharField(max_length=64, required=False, allow_blank=True)
    pix_code = serializers.CharField(max_length=1000, required=False, allow_blank=True)
    paid_at = serializers.DateTimeField(
        required=False,
        allow_null=True,
        help_text=_("Only for a paid invoice; now when it becomes paid without one."),
    )


class OutageItemSerializer(_ItemSerializer):
    region = serializers.CharField(max_length=80, required=False)
    title = serializers.CharField(max_length=150, required=False)
    description = serializers.CharField(max_length=5000, required=False, allow_blank=True)
    started_at = serializers.DateTimeField(required=False, help_text=_("Now when left out."))
    forecast_at = serializers.DateTimeField(required=False, allow_null=True)
    resolved_at = serializers.DateTimeField(
        required=False, allow_null=True, help_text=_("Closes the outage; null reopens it.")
    )


def bulk_request(item: type[serializers.Serializer], name: str) -> type[serializers.Serializer]:
    """``{"items": [item, ...]}`` for the schema of one bulk endpoint."""
    attrs: dict[str, Any] = {
        "items": item(many=True, help_text=_("At most 1000 items; all valid or none written."))
    }
    return type(name, (serializers.Serializer,), attrs)

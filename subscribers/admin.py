"""Django admin for the ISP's customer records.

Most ISPs sync these from their ERP through the API; admin is for looking
things up and fixing a row by hand. The CPF/CNPJ is never shown in clear: a
masked value is displayed, and a new one is typed into a write-only field
that ``subscriber_set_document`` validates and encrypts.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import HelpdeskAdmin, HelpdeskTabularInline
from ispsupport.crypto import DecryptionError
from ispsupport.identity import canonical_phone, clean_document, document_hash
from subscribers import services
from subscribers.models import DOCUMENT_PURPOSE, Contract, Invoice, Outage, Plan, Subscriber

# --- Plans --------------------------------------------------------------------------


@admin.register(Plan)
class PlanAdmin(HelpdeskAdmin):
    list_display = ("code", "name", "speeds", "price", "active")
    list_filter = ("active",)
    search_fields = ("code", "name")
    ordering = ("price", "name")

    @admin.display(description=_("speeds (down/up)"))
    def speeds(self, plan: Plan) -> str:
        return f"{plan.download_mbps}/{plan.upload_mbps} Mbps"


# --- Contracts ----------------------------------------------------------------------


class ContractForm(forms.ModelForm):
    class Meta:
        model = Contract
        fields = ("code", "subscriber", "plan", "status", "suspension_reason", "address")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("suspension_reason") and cleaned.get("status") != Contract.Status.SUSPENDED:
            self.add_error(
                "suspension_reason",
                _("A suspension reason is only allowed with the status suspended."),
            )
        return cleaned


# Set by the trust-unlock flow, shown for reference.
TRUST_FIELDS = ("trust_unlocked_until", "last_trust_unlock_at")


class ContractInline(HelpdeskTabularInline):
    model = Contract
    form = ContractForm
    fields = ("code", "plan", "status", "suspension_reason", "address", *TRUST_FIELDS)
    readonly_fields = TRUST_FIELDS
    extra = 0
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Contract]:
        return super().get_queryset(request).select_related("plan")


@admin.register(Contract)
class ContractAdmin(HelpdeskAdmin):
    form = ContractForm
    list_display = ("code", "subscriber", "plan", "status", "suspension_reason", *TRUST_FIELDS)
    list_filter = ("status", "suspension_reason", "plan")
    search_fields = ("code", "subscriber__name", "subscriber__code")
    list_select_related = ("subscriber", "plan")
    autocomplete_fields = ("subscriber",)
    fieldsets = (
        (None, {"fields": ("code", "subscriber", "plan", "address")}),
        (_("Status"), {"fields": ("status", "suspension_reason")}),
        (_("Trust unlock"), {"fields": TRUST_FIELDS}),
        (_("Dates"), {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = (*TRUST_FIELDS, "created_at", "updated_at")


# --- Subscribers --------------------------------------------------------------------


class SubscriberAdminForm(forms.ModelForm):
    document = forms.CharField(
        label=_("CPF/CNPJ"),
        required=False,
        max_length=32,
        help_text=_(
            "Type a new CPF or CNPJ to replace the stored one; leave empty to keep it. "
            "It is stored encrypted and only shown masked."
        ),
    )
    clear_document = forms.BooleanField(label=_("Remove the CPF/CNPJ"), required=False)

    class Meta:
        model = Subscriber
        fields = ("code", "name", "phone", "email", "region", "address")

    def clean_phone(self) -> str:
        raw = (self.cleaned_data.get("phone") or "").strip()
        if not raw:
            return ""
        phone = canonical_phone(raw, typed=True)
        if phone is None:
            raise ValidationError(
                _("Enter a valid phone number, e.g. +55 11 98888-7777."), code="invalid_phone"
            )
        return phone

    def clean_document(self) -> str:
        return services.subscriber_document_clean(
            self.cleaned_data.get("document", ""), subscriber=self.instance
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("clear_document") and cleaned.get("document"):
            self.add_error("document", _("Type a new CPF/CNPJ or tick 'remove', not both."))
        return cleaned


@admin.register(Subscriber)
class SubscriberAdmin(HelpdeskAdmin):
    form = SubscriberAdminForm
    list_display = ("code", "name", "phone", "email", "region", "document_masked")
    search_fields = ("name", "code", "phone", "email", "region")
    ordering = ("name", "id")
    show_full_result_count = False
    list_per_page = 50
    inlines = (ContractInline,)
    fieldsets = (
        (None, {"fields": ("code", "name", "phone", "email", "region", "address")}),
        (_("CPF/CNPJ"), {"fields": ("document_masked", "document", "clear_document")}),
        (_("Dates"), {"fields": ("created_at", "updated_at")}),
    )
    readonly_fields = ("document_masked", "created_at", "updated_at")

    @admin.display(description=_("CPF/CNPJ"))
    def document_masked(self, subscriber: Subscriber) -> str:
        try:
            return subscriber.document_masked or "—"
        except DecryptionError:
            return str(_("(unreadable: its key is no longer in FERNET_KEYS)"))

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Subscriber], search_term: str
    ) -> tuple[QuerySet[Subscriber], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return results, may_have_duplicates
        extra = Q()
        with contextlib.suppress(ValidationError):
            # The document is stored encrypted: match its keyed hash exactly.
            extra |= Q(document_hash=document_hash(clean_document(term), purpose=DOCUMENT_PURPOSE))
        if sum(c.isdigit() for c in term) >= 10 and (phone := canonical_phone(term, typed=True)):
            extra |= Q(phone=phone)  # typed as the customer says it: (11) 98888-7777
        if extra:
            results = results | queryset.filter(extra)
        return results, may_have_duplicates

    def save_model(
        self, request: HttpRequest, obj: Subscriber, form: forms.ModelForm, change: bool
    ) -> None:
        super().save_model(request, obj, form, change)
        data = form.cleaned_data
        if data.get("document"):
            services.subscriber_set_document(subscriber=obj, raw=data["document"])
        elif data.get("clear_document"):
            services.subscriber_set_document(subscriber=obj, raw="")


# --- Invoices -----------------------------------------------------------------------


class InvoiceAdminForm(forms.ModelForm):
    class Meta:
        model = Invoice
        fields = (
            "code",
            "contract",
            "amount",
            "due_date",
            "status",
            "paid_at",
            "digitable_line",
            "pix_code",
        )

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        # The same rule as the sync: paid now unless told when; unpaid has no date.
        if cleaned.get("status") == Invoice.Status.PAID:
            cleaned["paid_at"] = cleaned.get("paid_at") or timezone.now()
        elif cleaned.get("paid_at"):
            self.add_error("paid_at", _("Only a paid invoice has a payment date."))
        return cleaned


@admin.register(Invoice)
class InvoiceAdmin(HelpdeskAdmin):
    form = InvoiceAdminForm
    list_display = ("code", "contract", "subscriber", "amount", "due_date", "status", "paid_at")
    list_filter = ("status", "due_date")
    search_fields = ("code", "contract__code", "contract__subscriber__name")
    list_select_related = ("contract__subscriber", "contract__plan")
    autocomplete_fields = ("contract",)
    date_hierarchy = "due_date"
    # The latest invoices are the ones asked about.
    ordering = ("-due_date", "-id")
    readonly_fields = ("created_at", "updated_at")

    @admin.display(description=_("subscriber"), ordering="contract__subscriber__name")
    def subscriber(self, invoice: Invoice) -> str:
        return invoice.contract.subscriber.name


# --- Outages ------------------------------------------------------------------------


class OpenFilter(admin.SimpleListFilter):
    title = _("state")
    parameter_name = "state"

    def lookups(self, request: HttpRequest, model_admin: admin.ModelAdmin) -> list[tuple[str, Any]]:
        return [("open", _("open")), ("resolved", _("resolved"))]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Outage]) -> QuerySet[Outage]:
        if self.value() == "open":
            return queryset.filter(resolved_at__isnull=True)
        if self.value() == "resolved":
            return queryset.filter(resolved_at__isnull=False)
        return queryset


@admin.register(Outage)
class OutageAdmin(HelpdeskAdmin):
    list_display = ("region", "title", "started_at", "forecast_at", "is_open", "resolved_at")
    list_filter = (OpenFilter, "region")
    search_fields = ("code", "region", "title", "description")
    date_hierarchy = "started_at"
    ordering = ("-started_at", "-id")
    actions = ("resolve",)

    @admin.display(description=_("open"), boolean=True)
    def is_open(self, outage: Outage) -> bool:
        return outage.is_open

    @admin.action(description=_("Mark as resolved"))
    def resolve(self, request: HttpRequest, queryset: QuerySet[Outage]) -> None:
        done = skipped = 0
        for outage in queryset.order_by("pk"):
            if not outage.is_open:
                skipped += 1
                continue
            try:
                services.outage_resolve(outage=outage)
            except ValidationError as exc:
                # A planned outage that has not started yet.
                self.message_user(request, f"{outage}: {' '.join(exc.messages)}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(count)d outage resolved.", "%(count)d outages resolved.", done)
                % {"count": done},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d outage was already resolved.",
                    "%(count)d outages were already resolved.",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )

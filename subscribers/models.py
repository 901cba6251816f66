"""The ISP's own customer records, as the built-in directory keeps them.

An ISP with an ERP (IXC Soft, SGP, MK-Auth…) either plugs an adapter in
``SUBSCRIBER_DIRECTORY`` or syncs these tables nightly through the API
(upsert by the ERP's own ``code``). Nothing here knows of conversations.
"""

from __future__ import annotations

from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from ispsupport import crypto

# Salts the CPF/CNPJ lookup hash of subscribers (ispsupport.identity.document_hash),
# so the same document hashes differently here and in contacts.
DOCUMENT_PURPOSE = "subscribers.Subscriber.document"


class Plan(models.Model):
    code = models.CharField(_("ERP code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=120)
    download_mbps = models.PositiveIntegerField(_("download (Mbps)"), default=0)
    upload_mbps = models.PositiveIntegerField(_("upload (Mbps)"), default=0)
    price = models.DecimalField(_("monthly price (R$)"), max_digits=10, decimal_places=2)
    active = models.BooleanField(_("offered"), default=True)

    class Meta:
        ordering = ["price", "name"]
        verbose_name = _("plan")
        verbose_name_plural = _("plans")

    def __str__(self) -> str:
        return self.name


class Subscriber(models.Model):
    """A customer of the ISP. The CPF/CNPJ is stored encrypted; lookups use a
    keyed hash of it, never the plaintext."""

    code = models.CharField(_("ERP code"), max_length=40, unique=True)
    name = models.CharField(_("name"), max_length=150)
    document_encrypted = models.TextField(_("CPF/CNPJ (encrypted)"), blank=True, editable=False)
    document_hash = models.CharField(  # noqa: DJ001 - NULLs may repeat under the unique constraint
        _("CPF/CNPJ lookup hash"), max_length=64, null=True, blank=True, editable=False
    )
    phone = models.CharField(
        _("phone (E.164)"),
        max_length=20,
        blank=True,
        db_index=True,
        help_text=_("Brazilian mobiles always with the ninth digit, e.g. +5511988887777."),
    )
    email = models.EmailField(_("e-mail"), blank=True)
    region = models.CharField(
        _("region"),
        max_length=80,
        blank=True,
        db_index=True,
        help_text=_("Neighbourhood, city or network segment; outages are announced per region."),
    )
    address = models.CharField(_("address"), max_length=255, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("subscriber")
        verbose_name_plural = _("subscribers")
        constraints = [
            models.UniqueConstraint(
                fields=["document_hash"],
                condition=Q(document_hash__isnull=False),
                name="subscriber_document_unique",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.code})"

    @property
    def document(self) -> str:
        return crypto.decrypt(self.document_encrypted) if self.document_encrypted else ""

    @property
    def document_masked(self) -> str:
        """***.456.789-** style: enough for staff to recognise, not to copy."""
        value = self.document
        if not value:
            return ""
        if len(value) == 11:
            return f"***.{value[3:6]}.{value[6:9]}-**"
        return f"**.{value[2:5]}.{value[5:8]}/{value[8:12]}-**"


class Contract(models.Model):
    class Status(models.TextChoices):
        ACTIVE = "active", _("active")
        SUSPENDED = "suspended", _("suspended")
        CANCELLED = "cancelled", _("cancelled")

    class SuspensionReason(models.TextChoices):
        NONE = "", _("—")
        NON_PAYMENT = "non_payment", _("non-payment")
        REQUEST = "request", _("at the customer's request")
        OTHER = "other", _("other")

    code = models.CharField(_("ERP code"), max_length=40, unique=True)
    subscriber = models.ForeignKey(
        Subscriber,
        on_delete=models.CASCADE,
        related_name="contracts",
        verbose_name=_("subscriber"),
    )
    plan = models.ForeignKey(
        Plan, on_delete=models.PROTECT, related_name="contracts", verbose_name=_("plan")
    )
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.ACTIVE
    )
    suspension_reason = models.CharField(
        _("suspension reason"),
        max_length=16,
        choices=SuspensionReason.choices,
        blank=True,
        default=SuspensionReason.NONE,
    )
    address = models.CharField(_("installation address"), max_length=255, blank=True)
    trust_unlocked_until = models.DateTimeField(_("trust unlock until"), null=True, blank=True)
    last_trust_unlock_at = models.DateTimeField(_("last trust unlock"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["subscriber", "code"]
        verbose_name = _("contract")
        verbose_name_plural = _("contracts")

    def __str__(self) -> str:
        return f"{self.code} — {self.plan}"

    @property
    def trust_unlocked(self) -> bool:
        return bool(self.trust_unlocked_until and self.trust_unlocked_until > timezone.now())


class Invoice(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", _("open")
        PAID = "paid", _("paid")
        CANCELLED = "cancelled", _("cancelled")

    code = models.CharField(_("ERP code"), max_length=40, unique=True)
    contract = models.ForeignKey(
        Contract, on_delete=models.CASCADE, related_name="invoices", verbose_name=_("contract")
    )
    amount = models.DecimalField(_("amount (R$)"), max_digits=10, decimal_places=2)
    due_date = models.DateField(_("due date"))
    status = models.CharField(
        _("status"), max_length=16, choices=Status.choices, default=Status.OPEN
    )
    digitable_line = models.CharField(_("boleto digitable line"), max_length=64, blank=True)
    pix_code = models.TextField(_("PIX copy-and-paste code"), blank=True)
    paid_at = models.DateTimeField(_("paid at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["due_date", "id"]
        verbose_name = _("invoice")
        verbose_name_plural = _("invoices")
        indexes = [models.Index(fields=["contract", "status"], name="invoice_contract_status_idx")]

    def __str__(self) -> str:
        return f"{self.code} — R$ {self.amount} ({self.due_date:%d/%m/%Y})"


class Outage(models.Model):
    """A known network problem in a region: the bot tells affected customers
    before walking them through restarting their router."""

    code = models.CharField(_("code"), max_length=40, unique=True)
    region = models.CharField(_("region"), max_length=80, db_index=True)
    title = models.CharField(_("title"), max_length=150)
    description = models.TextField(_("description"), blank=True)
    started_at = models.DateTimeField(_("started at"), default=timezone.now)
    forecast_at = models.DateTimeField(_("expected back at"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        verbose_name = _("outage")
        verbose_name_plural = _("outages")

    def __str__(self) -> str:
        return f"{self.region}: {self.title}"

    @property
    def is_open(self) -> bool:
        return self.resolved_at is None

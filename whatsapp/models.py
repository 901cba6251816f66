"""WhatsApp Cloud API numbers, their approved templates, and statuses that
arrived before the message they are about."""

from __future__ import annotations

from django.db import models
from django.utils.translation import gettext_lazy as _

from conversations.models import Inbox
from ispsupport.crypto import decrypt, encrypt


class WhatsAppAccount(models.Model):
    """One WhatsApp business number. Its conversations live in its inbox, so
    the core never needs to know about WhatsApp."""

    inbox = models.OneToOneField(
        Inbox, on_delete=models.PROTECT, related_name="whatsapp_account", verbose_name=_("inbox")
    )
    name = models.CharField(_("name"), max_length=80)
    phone_number_id = models.CharField(_("phone number id"), max_length=64, unique=True)
    display_phone = models.CharField(_("display number"), max_length=32, blank=True)
    business_account_id = models.CharField(
        _("WhatsApp business account id"), max_length=64, blank=True
    )
    access_token_encrypted = models.TextField(_("access token (encrypted)"), blank=True)
    app_secret_encrypted = models.TextField(_("app secret (encrypted)"), blank=True)
    verify_token = models.CharField(
        _("webhook verify token"),
        max_length=128,
        blank=True,
        help_text=_("The token you typed in Meta's webhook settings."),
    )
    is_active = models.BooleanField(_("active"), default=True)
    is_healthy = models.BooleanField(
        _("healthy"),
        default=True,
        help_text=_("Off when Meta refused the access token (expired or revoked)."),
    )
    last_error = models.CharField(_("last error"), max_length=255, blank=True)
    last_error_at = models.DateTimeField(_("last error at"), null=True, blank=True)
    last_webhook_at = models.DateTimeField(_("last webhook received at"), null=True, blank=True)
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("WhatsApp number")
        verbose_name_plural = _("WhatsApp numbers")

    def __str__(self) -> str:
        return f"{self.name} ({self.display_phone or self.phone_number_id})"

    @property
    def access_token(self) -> str:
        return decrypt(self.access_token_encrypted) if self.access_token_encrypted else ""

    @access_token.setter
    def access_token(self, value: str) -> None:
        self.access_token_encrypted = encrypt(value) if value else ""

    @property
    def app_secret(self) -> str:
        return decrypt(self.app_secret_encrypted) if self.app_secret_encrypted else ""

    @app_secret.setter
    def app_secret(self, value: str) -> None:
        self.app_secret_encrypted = encrypt(value) if value else ""

    @property
    def is_sandbox(self) -> bool:
        """Without an access token nothing leaves this machine: the sandbox
        transport records outbound messages instead."""
        return not self.access_token_encrypted


class MessageTemplate(models.Model):
    """An approved (or pending/rejected) message template, synced from Meta:
    the only way to write to a customer outside the 24-hour window."""

    account = models.ForeignKey(
        WhatsAppAccount,
        on_delete=models.CASCADE,
        related_name="templates",
        verbose_name=_("WhatsApp number"),
    )
    name = models.CharField(_("name"), max_length=512)
    language = models.CharField(_("language"), max_length=16)
    category = models.CharField(_("category"), max_length=32, blank=True)
    status = models.CharField(_("status"), max_length=32)
    components = models.JSONField(_("components"), default=list)
    external_id = models.CharField(_("Meta template id"), max_length=64, blank=True)
    synced_at = models.DateTimeField(_("synced at"))

    class Meta:
        ordering = ["name", "language"]
        verbose_name = _("message template")
        verbose_name_plural = _("message templates")
        constraints = [
            models.UniqueConstraint(
                fields=["account", "name", "language"], name="template_unique_per_account"
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.language})"


class EarlyStatus(models.Model):
    """A status Meta delivered before we knew its message's id (the send call
    had not returned yet). Applied when the id appears; dropped after a while."""

    external_id = models.CharField(_("provider message id"), max_length=128, db_index=True)
    status = models.CharField(_("status"), max_length=16)
    at = models.DateTimeField(_("at"))
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_title = models.CharField(_("error"), max_length=255, blank=True)
    error_detail = models.TextField(_("error details"), blank=True)
    received_at = models.DateTimeField(_("received at"), auto_now_add=True)

    class Meta:
        verbose_name = _("early status")
        verbose_name_plural = _("early statuses")

    def __str__(self) -> str:
        return f"{self.external_id}: {self.status}"

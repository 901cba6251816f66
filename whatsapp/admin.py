"""Django admin for WhatsApp numbers, their synced templates and early statuses.

The access token and app secret are never shown, not even encrypted: each has
a write-only field ("leave empty to keep") saved through the model's
encrypting setters. Adding a number creates its inbox.

"Check connection" (a list action, and a button on the number's page) asks
Meta about the number through the same Graph client, breaker and error typing
as sends, and says what it found per number.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from accounts.admin import HelpdeskAdmin
from accounts.models import Team
from conversations.admin import ReadOnlyAdmin
from conversations.models import Inbox
from ispsupport.errors import ServiceError
from whatsapp import services, transport
from whatsapp.models import EarlyStatus, MessageTemplate, WhatsAppAccount
from whatsapp.templates import template_variables, templates_sync

_SECRET_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"})


class WhatsAppAccountAdminForm(forms.ModelForm):
    new_access_token = forms.CharField(
        label=_("access token"),
        required=False,
        strip=True,
        widget=_SECRET_WIDGET,
        help_text=_(
            "Type a new token to replace the stored one; leave empty to keep it. "
            "Without a token the number runs in sandbox mode (nothing is sent)."
        ),
    )
    clear_access_token = forms.BooleanField(
        label=_("Remove the access token (sandbox mode)"), required=False
    )
    new_app_secret = forms.CharField(
        label=_("app secret"),
        required=False,
        strip=True,
        widget=_SECRET_WIDGET,
        help_text=_(
            "Type a new app secret to replace the stored one; leave empty to keep it. "
            "Webhook signatures are checked with it."
        ),
    )
    default_team = forms.ModelChoiceField(
        label=_("default team"),
        queryset=Team.objects.all(),
        required=False,
        help_text=_("New conversations on this number go to this team's queue."),
    )

    class Meta:
        model = WhatsAppAccount
        fields = (
            "name",
            "phone_number_id",
            "display_phone",
            "business_account_id",
            "verify_token",
            "is_active",
            "is_healthy",
        )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.fields["default_team"].initial = self.instance.inbox.default_team_id

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("clear_access_token") and cleaned.get("new_access_token"):
            self.add_error("new_access_token", _("Type a new token or tick 'remove', not both."))
        return cleaned


# Meta's quality ratings that put the number's sending at risk.
_QUALITY_AT_RISK = {"YELLOW", "RED"}


def check_connection(account: WhatsAppAccount) -> tuple[str, int]:
    """Ask Meta about ``account``: a message for the admin and its level.

    Bookkeeping follows the send path: a refused token (190) marks the number
    unhealthy, a good answer marks it healthy again.
    """
    if account.is_sandbox:
        return (
            gettext("%(account)s: Sandbox number: nothing to check (no access token).")
            % {"account": account},
            messages.WARNING,
        )
    try:
        info = transport.account_check(account)
    except transport.TransportError as exc:
        return _check_failed(account, exc)
    if not account.is_healthy:
        # As a send that Meta accepts does: the token works again.
        services.account_mark_healthy(account=account)
    text = gettext("%(account)s: OK: %(name)s (%(number)s), quality %(quality)s") % {
        "account": account,
        "name": info.verified_name or "—",
        "number": info.display_phone_number or "—",
        "quality": info.quality_rating or "UNKNOWN",
    }
    level, notes = messages.SUCCESS, []
    if info.quality_rating in _QUALITY_AT_RISK:
        level = messages.WARNING
        notes.append(gettext("Meta may limit how many customers this number reaches"))
    status = info.code_verification_status
    if status and status != "VERIFIED":
        level = messages.WARNING
        notes.append(gettext("code verification: %(status)s") % {"status": status})
    if not account.is_healthy:
        notes.append(gettext("marked healthy again"))
    if notes:
        text += " — " + "; ".join(notes) + "."
    return text, level


def _check_failed(account: WhatsAppAccount, exc: transport.TransportError) -> tuple[str, int]:
    values = {
        "account": account,
        "code": exc.code,
        "title": exc.title,
        "status": exc.http_status,
        "seconds": settings.WHATSAPP_API_TIMEOUT,
    }
    if exc.is_auth_error:
        # The very bookkeeping of a send refused with 190.
        services.account_mark_unhealthy(account=account, code=exc.code, title=exc.title)
        return (
            gettext(
                "%(account)s: Meta refused the access token (error 190: %(title)s). It is "
                "invalid or expired: the number is marked unhealthy until you type a new token."
            )
            % values,
            messages.ERROR,
        )
    if exc.code == "timeout":
        reason = gettext("Meta did not answer within %(seconds)s s") % values
    elif exc.code == "connection":
        reason = gettext("the Graph API could not be reached (%(title)s)") % values
    elif exc.code == "breaker_open":
        reason = gettext(
            "calls to Meta are paused after repeated failures (the whatsapp circuit breaker "
            "is open)"
        )
    elif exc.retryable:
        reason = gettext("Meta answered with an error (HTTP %(status)s, %(code)s: %(title)s)") % (
            values
        )
    else:
        return (
            gettext("%(account)s: Meta refused the check (error %(code)s: %(title)s).") % values,
            messages.ERROR,
        )
    return (
        gettext("%(account)s: could not check now: %(reason)s. Try again in a moment.")
        % {"account": account, "reason": reason},
        messages.WARNING,
    )


@admin.register(WhatsAppAccount)
class WhatsAppAccountAdmin(HelpdeskAdmin):
    form = WhatsAppAccountAdminForm
    list_display = (
        "name",
        "display_phone",
        "phone_number_id",
        "is_active",
        "is_healthy",
        "sandbox",
        "last_webhook_at",
        "last_error",
        "inbox_link",
    )
    list_filter = ("is_active", "is_healthy")
    search_fields = ("name", "display_phone", "phone_number_id")
    list_select_related = ("inbox",)
    ordering = ("name",)
    actions = ("check_connection", "sync_templates")
    readonly_fields = (
        "inbox_link",
        "token_state",
        "secret_state",
        "last_webhook_at",
        "last_error",
        "last_error_at",
        "created_at",
        "updated_at",
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        main = ["name", "display_phone", "phone_number_id", "business_account_id"]
        main += ["inbox_link", "default_team"] if obj else ["default_team"]
        credentials = ["verify_token"]
        if obj:
            credentials += ["token_state", "new_access_token", "clear_access_token"]
            credentials += ["secret_state", "new_app_secret"]
        else:
            credentials += ["new_access_token", "new_app_secret"]
        fieldsets: list[tuple[Any, dict[str, Any]]] = [
            (None, {"fields": main}),
            (_("Credentials"), {"fields": credentials}),
            (_("State"), {"fields": ["is_active", "is_healthy"]}),
        ]
        if obj:
            fieldsets.append(
                (
                    _("History"),
                    {
                        "fields": [
                            "last_webhook_at",
                            "last_error",
                            "last_error_at",
                            "created_at",
                            "updated_at",
                        ]
                    },
                )
            )
        return fieldsets

    @admin.display(description=_("sandbox"), boolean=True)
    def sandbox(self, account: WhatsAppAccount) -> bool:
        return account.is_sandbox

    @admin.display(description=_("inbox"))
    def inbox_link(self, account: WhatsAppAccount) -> str:
        if not account.inbox_id:
            return "—"
        url = reverse("admin:conversations_inbox_change", args=[account.inbox_id])
        return format_html('<a href="{}">{}</a>', url, account.inbox)

    @admin.display(description=_("access token"))
    def token_state(self, account: WhatsAppAccount) -> str:
        return str(_("Stored (hidden)") if account.access_token_encrypted else _("Not set"))

    @admin.display(description=_("app secret"))
    def secret_state(self, account: WhatsAppAccount) -> str:
        return str(_("Stored (hidden)") if account.app_secret_encrypted else _("Not set"))

    @transaction.atomic
    def save_model(
        self, request: HttpRequest, obj: WhatsAppAccount, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        if data.get("new_access_token"):
            obj.access_token = data["new_access_token"]
        elif data.get("clear_access_token"):
            obj.access_token = ""
        if data.get("new_app_secret"):
            obj.app_secret = data["new_app_secret"]
        team = data.get("default_team")
        if not change:
            obj.inbox = Inbox.objects.create(
                name=obj.name, channel="whatsapp", address=obj.display_phone, default_team=team
            )
        elif "default_team" in form.changed_data:
            obj.inbox.default_team = team
            obj.inbox.save(update_fields=["default_team"])
        obj.save()

    def response_change(self, request: HttpRequest, obj: WhatsAppAccount) -> HttpResponse:
        # "Save and check connection": saved like "Save and continue", then checked
        # with the credentials just typed.
        if "_check_connection" in request.POST:
            self.message_user(request, *check_connection(obj))
            return HttpResponseRedirect(request.path)
        return super().response_change(request, obj)

    def render_change_form(
        self,
        request: HttpRequest,
        context: dict[str, Any],
        add: bool = False,
        change: bool = False,
        form_url: str = "",
        obj: Any = None,
    ) -> HttpResponse:
        context["show_check_connection"] = bool(
            obj is not None and self.has_change_permission(request, obj)
        )
        return super().render_change_form(request, context, add, change, form_url, obj)

    @admin.action(description=_("Check connection with Meta"))
    def check_connection(self, request: HttpRequest, queryset: QuerySet[WhatsAppAccount]) -> None:
        for account in queryset.order_by("pk"):
            self.message_user(request, *check_connection(account))

    @admin.action(description=_("Sync message templates"))
    def sync_templates(self, request: HttpRequest, queryset: QuerySet[WhatsAppAccount]) -> None:
        for account in queryset.order_by("pk"):
            try:
                result = templates_sync(account=account)
            except ServiceError as exc:
                self.message_user(request, exc.message, messages.WARNING)
            else:
                self.message_user(request, f"{account}: {result}", messages.SUCCESS)


@admin.register(MessageTemplate)
class MessageTemplateAdmin(ReadOnlyAdmin):
    list_display = ("name", "language", "category", "status", "account", "synced_at")
    list_filter = ("status", "category", "language", "account")
    search_fields = ("name",)
    list_select_related = ("account",)
    ordering = ("name", "language")
    fields = (
        "account",
        "name",
        "language",
        "category",
        "status",
        "external_id",
        "variables",
        "components",
        "synced_at",
    )
    readonly_fields = fields

    @admin.display(description=_("variables"))
    def variables(self, template: MessageTemplate) -> Any:
        return template_variables(template)


@admin.register(EarlyStatus)
class EarlyStatusAdmin(ReadOnlyAdmin):
    """Statuses Meta sent before their send returned; applied or purged by
    ``purge_early_statuses``, never edited."""

    list_display = ("external_id", "status", "at", "error_code", "received_at")
    list_filter = ("status",)
    search_fields = ("external_id",)
    ordering = ("-id",)
    fields = (
        "external_id",
        "status",
        "at",
        "error_code",
        "error_title",
        "error_detail",
        "received_at",
    )

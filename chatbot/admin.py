"""Django admin for the bot: its settings (one row), menu, holidays and
knowledge base.

Every save or delete here drops the cached bot configuration (the signals in
``chatbot.config``), so the next customer message already sees the change.
"""

from __future__ import annotations

import json
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin
from django.core.exceptions import PermissionDenied, ValidationError
from django.forms.fields import InvalidJSONInput
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from accounts.admin import HelpdeskAdmin
from chatbot import texts
from chatbot.csat import rating_template
from chatbot.models import BotSettings, Holiday, KnowledgeArticle, MenuOption
from conversations.models import Inbox

# A WhatsApp list message holds at most 10 rows: the menu is sent as one.
MAX_ACTIVE_OPTIONS = 10


def _too_many_active(count: int) -> ValidationError:
    return ValidationError(
        _(
            "WhatsApp lists hold at most %(max)d rows: at most %(max)d menu options may be "
            "active (this would make %(count)d). Deactivate another option first."
        ),
        params={"max": MAX_ACTIVE_OPTIONS, "count": count},
        code="too_many_active_options",
    )


# --- Bot settings -------------------------------------------------------------------


class BusinessHoursField(forms.JSONField):
    """The weekly schedule as JSON, one weekday per line so it reads as a table."""

    widget = forms.Textarea(attrs={"rows": 9, "cols": 60, "class": "vLargeTextField"})

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, InvalidJSONInput) or not isinstance(value, dict) or not value:
            return super().prepare_value(value)
        lines = [
            f"  {json.dumps(str(day))}: {json.dumps(intervals, ensure_ascii=False)}"
            for day, intervals in value.items()
        ]
        return "{\n" + ",\n".join(lines) + "\n}"


class BotSettingsAdminForm(forms.ModelForm):
    class Meta:
        model = BotSettings
        fields = (
            "enabled",
            "company_name",
            "use_gemini",
            "fallback_team",
            "greeting",
            "menu_prompt",
            "not_understood",
            "handoff_message",
            "out_of_hours_message",
            "goodbye",
            "business_hours",
            "csat_enabled",
            "csat_question",
            "csat_thanks",
            "csat_template",
        )
        field_classes = {"business_hours": BusinessHoursField}


@admin.register(BotSettings)
class BotSettingsAdmin(HelpdeskAdmin):
    """A single row (pk 1): the list goes straight to it; never added twice or deleted."""

    form = BotSettingsAdminForm
    fieldsets = (
        (
            _("General"),
            {"fields": ("enabled", "company_name", "use_gemini", "gemini_status", "fallback_team")},
        ),
        (
            _("Texts"),
            {
                "fields": (
                    "greeting",
                    "menu_prompt",
                    "menu_preview",
                    "not_understood",
                    "handoff_message",
                    "out_of_hours_message",
                    "goodbye",
                )
            },
        ),
        (_("Hours"), {"fields": ("business_hours",)}),
        (
            _("Rating"),
            {
                "fields": (
                    "csat_enabled",
                    "csat_question",
                    "csat_thanks",
                    "csat_template",
                    "csat_template_status",
                )
            },
        ),
        (None, {"fields": ("updated_at",)}),
    )
    readonly_fields = ("gemini_status", "menu_preview", "csat_template_status", "updated_at")

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        if not self.has_view_or_change_permission(request):
            raise PermissionDenied
        bot_settings, _created = BotSettings.objects.get_or_create(pk=1)
        return HttpResponseRedirect(
            reverse(f"{self.admin_site.name}:chatbot_botsettings_change", args=[bot_settings.pk])
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and not BotSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description=_("Gemini API key"))
    def gemini_status(self, obj: BotSettings) -> str:
        if settings.GEMINI_API_KEY:
            return str(
                _("GEMINI_API_KEY is configured: Gemini reads what the rules do not understand.")
            )
        return str(
            _(
                "GEMINI_API_KEY is not configured: the rules alone answer, "
                "whatever this switch says."
            )
        )

    @admin.display(description=_("rating template on each number"))
    def csat_template_status(self, obj: BotSettings) -> SafeString | str:
        if not obj.csat_template:
            return str(_("No template: after 24 hours no rating is asked."))
        why = {
            "template_missing": _(
                "not approved or not synced: it is not sent (sync the templates in "
                "WhatsApp numbers)"
            ),
            "template_unusable": _("it takes values or a file the bot does not have: not sent"),
        }
        rows = []
        for inbox in Inbox.objects.order_by("name"):
            found = rating_template(inbox, obj.csat_template)
            state = (
                why[found]
                if isinstance(found, str)
                else _("ready (%(language)s)") % {"language": found["language"]}
            )
            rows.append((inbox.name, state))
        if not rows:
            return str(_("No number yet."))
        return format_html("<ul>{}</ul>", format_html_join("", "<li>{}: {}</li>", rows))

    @admin.display(description=_("menu as the customer sees it"))
    def menu_preview(self, obj: BotSettings) -> SafeString:
        options = list(MenuOption.objects.filter(active=True).order_by("position"))
        menu_url = reverse(f"{self.admin_site.name}:chatbot_menuoption_changelist")
        if not options:
            return format_html(
                '{}<br><a href="{}">{}</a>',
                _("No active menu option: the bot sends the prompt alone."),
                menu_url,
                _("Edit the menu"),
            )
        body = format_html_join(
            "",
            "<br><strong>{}</strong> - {}",
            ((option.position, option.label) for option in options),
        )
        rows = format_html_join(
            "",
            "<li><strong>{}</strong>{}</li>",
            (
                (option.label, f" — {option.description}" if option.description else "")
                for option in options[:MAX_ACTIVE_OPTIONS]
            ),
        )
        return format_html(
            '{}{}<br><br>{}<ul>{}</ul><a href="{}">{}</a>',
            obj.menu_prompt,
            body,
            _('Under the message, the button "%(button)s" opens this list:')
            % {"button": texts.MENU_BUTTON},
            rows,
            menu_url,
            _("Edit the menu"),
        )


# --- Menu ---------------------------------------------------------------------------


class MenuOptionAdminForm(forms.ModelForm):
    class Meta:
        model = MenuOption
        fields = ("position", "label", "description", "intent", "team", "active")

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("active"):
            others = MenuOption.objects.filter(active=True).exclude(pk=self.instance.pk).count()
            if others + 1 > MAX_ACTIVE_OPTIONS:
                self.add_error("active", _too_many_active(others + 1))
        return cleaned


class MenuOptionChangelistFormSet(forms.BaseModelFormSet):
    """The list page may switch several options on at once: count them together."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        edited = {
            form.instance.pk: bool(form.cleaned_data.get("active"))
            for form in self.forms
            if form.cleaned_data
        }
        active = MenuOption.objects.filter(active=True).exclude(pk__in=edited).count()
        active += sum(edited.values())
        if active > MAX_ACTIVE_OPTIONS:
            raise _too_many_active(active)


@admin.register(MenuOption)
class MenuOptionAdmin(HelpdeskAdmin):
    form = MenuOptionAdminForm
    list_display = ("position", "label", "description", "intent", "team", "active")
    list_editable = ("team", "active")
    list_filter = ("active", "intent", "team")
    search_fields = ("label", "description")
    list_select_related = ("team",)
    ordering = ("position",)

    def get_changelist_formset(self, request: HttpRequest, **kwargs: Any) -> Any:
        kwargs.setdefault("formset", MenuOptionChangelistFormSet)
        return super().get_changelist_formset(request, **kwargs)


# --- Holidays and knowledge base --------------------------------------------------


@admin.register(Holiday)
class HolidayAdmin(HelpdeskAdmin):
    list_display = ("date", "name")
    date_hierarchy = "date"
    search_fields = ("name",)
    ordering = ("date",)


@admin.register(KnowledgeArticle)
class KnowledgeArticleAdmin(HelpdeskAdmin):
    list_display = ("question", "keywords", "active", "updated_at")
    list_filter = ("active",)
    search_fields = ("question", "answer", "keywords")
    ordering = ("question",)
    readonly_fields = ("updated_at",)
    fields = ("question", "answer", "keywords", "active", "updated_at")

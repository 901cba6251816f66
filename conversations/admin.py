"""Django admin for the helpdesk data.

Conversations, messages and notes are history: admin shows them but changes
only what a supervisor may change in the console (priority, tags), and state
changes go through the services (the "resolve" action). Contacts' CPF/CNPJ is
never shown in clear: a masked value is displayed, and a new one is typed into
a write-only field that the contact service validates and encrypts.
"""

from __future__ import annotations

import contextlib
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from conversations import services
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Note,
    Tag,
    TeamQueue,
)
from conversations.sla import parse_schedule
from ispsupport.errors import ServiceError
from ispsupport.identity import canonical_phone, clean_document, document_hash

# --- Read-only building blocks ------------------------------------------------------


class ReadOnlyInline(admin.TabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(admin.ModelAdmin):
    """History: listed and shown, never added, edited or deleted here."""

    show_full_result_count = False

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


def _short(text: str, length: int = 80) -> str:
    return text if len(text) <= length else text[: length - 1] + "…"


# --- Conversations ------------------------------------------------------------------


class MessageInline(ReadOnlyInline):
    model = Message
    fields = ("created_at", "direction", "sender_type", "sender_user", "kind", "text", "status")
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = _("messages")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).select_related("sender_user")


class NoteInline(ReadOnlyInline):
    model = Note
    fields = ("created_at", "author", "text")
    readonly_fields = fields
    ordering = ("created_at", "id")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Note]:
        return super().get_queryset(request).select_related("author")


# When the conversation happened; shown, never edited.
TIMES = (
    "created_at",
    "last_message_at",
    "last_inbound_at",
    "unread_count",
    "queued_at",
    "first_response_at",
    "first_response_due_at",
    "resolution_due_at",
    "resolved_at",
    "resolved_by",
)


@admin.register(Conversation)
class ConversationAdmin(admin.ModelAdmin):
    list_display = (
        "protocol",
        "contact",
        "state",
        "team",
        "assignee",
        "priority",
        "last_message_at",
        "unread_count",
    )
    list_filter = ("state", "team", "assignee", "priority", "inbox")
    search_fields = ("protocol", "contact__name", "contact__profile_name", "contact__phone")
    list_select_related = ("contact", "team", "assignee")
    # Counting every row of a big table again for "N total" costs a second scan.
    show_full_result_count = False
    list_per_page = 50
    autocomplete_fields = ("tags",)
    inlines = (MessageInline, NoteInline)
    actions = ("resolve",)
    fieldsets = (
        (None, {"fields": ("protocol", "contact", "inbox", "team", "assignee", "state")}),
        (_("Triage"), {"fields": ("priority", "tags")}),
        (_("Times"), {"fields": TIMES}),
    )
    # Contact and assignee are read-only (shown as links, no <select> of every
    # contact or user); assignment and state changes go through the services.
    readonly_fields = ("protocol", "contact", "inbox", "team", "assignee", "state", *TIMES)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start when a customer writes

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(
        self, request: HttpRequest, obj: Conversation, form: forms.ModelForm, change: bool
    ) -> None:
        if change and "priority" in form.changed_data:
            services.conversation_set_priority(
                conversation=obj,
                priority=form.cleaned_data["priority"],
                actor=request.user,  # type: ignore[arg-type]
            )

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        # Tags are set by the service, not by form.save_m2m(); the inlines are
        # read-only, so saving their formsets writes nothing.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)
        if "tags" in form.changed_data:
            services.conversation_set_tags(
                conversation=form.instance,
                names=[tag.name for tag in form.cleaned_data["tags"]],
                actor=request.user,  # type: ignore[arg-type]
            )

    @admin.action(description=_("Resolve selected conversations"))
    def resolve(self, request: HttpRequest, queryset: QuerySet[Conversation]) -> None:
        done = skipped = 0
        for conversation in queryset.order_by("pk"):
            if conversation.state == Conversation.State.RESOLVED:
                skipped += 1
                continue
            try:
                services.conversation_resolve(
                    conversation=conversation,
                    actor=request.user,  # type: ignore[arg-type]
                )
            except (ServiceError, PermissionDenied) as exc:
                skipped += 1
                self.message_user(request, f"{conversation}: {exc}", messages.WARNING)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext(
                    "%(count)d conversation resolved.", "%(count)d conversations resolved.", done
                )
                % {"count": done},
                messages.SUCCESS,
            )
        if skipped:
            self.message_user(
                request,
                ngettext(
                    "%(count)d conversation skipped (already resolved or not allowed).",
                    "%(count)d conversations skipped (already resolved or not allowed).",
                    skipped,
                )
                % {"count": skipped},
                messages.WARNING,
            )


# --- Contacts -----------------------------------------------------------------------


class ContactAdminForm(forms.ModelForm):
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
        model = Contact
        fields = ("name", "phone", "customer_code", "notes", "tags")

    def clean_phone(self) -> str | None:
        raw = (self.cleaned_data.get("phone") or "").strip()
        if not raw:
            return None
        phone = canonical_phone(raw, typed=True)
        if phone is None:
            raise ValidationError(
                _("Enter a valid phone number, e.g. +55 11 98888-7777."), code="invalid_phone"
            )
        return phone

    def clean_document(self) -> str:
        raw = self.cleaned_data.get("document", "").strip()
        if not raw:
            return ""
        document = clean_document(raw)
        others = Contact.objects.filter(document_hash=document_hash(document))
        if others.exclude(pk=self.instance.pk).exists():
            raise ValidationError(
                _("Another contact already has this CPF/CNPJ."), code="duplicate_document"
            )
        return document

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean()
        if cleaned.get("clear_document") and cleaned.get("document"):
            self.add_error("document", _("Type a new CPF/CNPJ or tick 'remove', not both."))
        return cleaned


@admin.register(Contact)
class ContactAdmin(admin.ModelAdmin):
    form = ContactAdminForm
    list_display = ("display_name", "phone", "customer_code", "document_masked", "last_seen_at")
    search_fields = ("name", "profile_name", "phone", "customer_code", "username", "bsuid", "wa_id")
    show_full_result_count = False
    list_per_page = 50
    autocomplete_fields = ("tags",)
    fieldsets = (
        (None, {"fields": ("name", "profile_name", "phone", "customer_code", "notes", "tags")}),
        (_("CPF/CNPJ"), {"fields": ("document_masked", "document", "clear_document")}),
        (_("WhatsApp"), {"fields": ("bsuid", "wa_id", "username")}),
        (_("Dates"), {"fields": ("created_at", "updated_at", "last_seen_at")}),
    )
    readonly_fields = (
        "profile_name",
        "document_masked",
        "bsuid",
        "wa_id",
        "username",
        "created_at",
        "updated_at",
        "last_seen_at",
    )

    @admin.display(description=_("name"), ordering="name")
    def display_name(self, contact: Contact) -> str:
        return contact.display_name

    @admin.display(description=_("CPF/CNPJ"))
    def document_masked(self, contact: Contact) -> str:
        return contact.document_masked or "—"

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # contacts are created when a customer writes

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Contact], search_term: str
    ) -> tuple[QuerySet[Contact], bool]:
        results, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if not term:
            return results, may_have_duplicates
        extra = Q()
        with contextlib.suppress(ValidationError):
            # The document is stored encrypted: match its keyed hash exactly.
            extra |= Q(document_hash=document_hash(clean_document(term)))
        if sum(c.isdigit() for c in term) >= 10 and (phone := canonical_phone(term, typed=True)):
            extra |= Q(phone=phone)  # typed as the customer says it: (11) 98888-7777
        if extra:
            results = results | queryset.filter(extra)
        return results, may_have_duplicates

    def save_model(
        self, request: HttpRequest, obj: Contact, form: forms.ModelForm, change: bool
    ) -> None:
        data = form.cleaned_data
        changes: dict[str, Any] = {
            field: data[field] or ""
            for field in ("name", "phone", "customer_code", "notes")
            if field in form.changed_data
        }
        if "tags" in form.changed_data:
            changes["tags"] = [tag.name for tag in data["tags"]]
        if data.get("document"):
            changes["document"] = data["document"]
        elif data.get("clear_document"):
            changes["document"] = ""
        services.contact_update(contact=obj, actor=request.user, **changes)  # type: ignore[arg-type]

    def save_related(
        self, request: HttpRequest, form: forms.ModelForm, formsets: Any, change: bool
    ) -> None:
        pass  # tags were set by contact_update


# --- Configuration ------------------------------------------------------------------


@admin.register(Inbox)
class InboxAdmin(admin.ModelAdmin):
    list_display = ("name", "channel", "address", "default_team", "created_at")
    list_filter = ("channel", "default_team")
    search_fields = ("name", "address")
    list_select_related = ("default_team",)


@admin.register(Tag)
class TagAdmin(admin.ModelAdmin):
    list_display = ("name", "color")
    search_fields = ("name",)


class CannedReplyAdminForm(forms.ModelForm):
    class Meta:
        model = CannedReply
        fields = ("shortcut", "title", "text", "team")

    def clean_text(self) -> str:
        text = self.cleaned_data["text"]
        unknown = sorted(
            {m.group(1) for m in services.PLACEHOLDER.finditer(text)} - set(services.PLACEHOLDERS)
        )
        if unknown:
            raise ValidationError(
                _("Unknown placeholder %(names)s; use %(allowed)s.")
                % {
                    "names": ", ".join(f"{{{{{name}}}}}" for name in unknown),
                    "allowed": ", ".join(f"{{{{{name}}}}}" for name in services.PLACEHOLDERS),
                },
                code="unknown_placeholder",
            )
        return text


@admin.register(CannedReply)
class CannedReplyAdmin(admin.ModelAdmin):
    form = CannedReplyAdminForm
    list_display = ("shortcut", "title", "team", "updated_at")
    list_filter = ("team",)
    search_fields = ("shortcut", "title", "text")
    list_select_related = ("team",)

    def save_model(
        self, request: HttpRequest, obj: CannedReply, form: forms.ModelForm, change: bool
    ) -> None:
        fields = {name: form.cleaned_data[name] for name in ("shortcut", "title", "text", "team")}
        actor = request.user
        if change:
            services.canned_reply_update(reply=obj, actor=actor, **fields)  # type: ignore[arg-type]
            return
        created = services.canned_reply_create(actor=actor, **fields)  # type: ignore[arg-type]
        obj.pk, obj.created_by, obj.created_at = created.pk, created.created_by, created.created_at


class TeamQueueAdminForm(forms.ModelForm):
    class Meta:
        model = TeamQueue
        fields = (
            "team",
            "first_response_minutes",
            "resolution_minutes",
            "business_hours",
            "auto_assign",
            "max_active_per_agent",
        )

    def clean_business_hours(self) -> Any:
        value = self.cleaned_data["business_hours"]
        try:
            if not isinstance(value, dict):
                raise ValueError("not an object")
            parse_schedule(value)
        except (ValueError, TypeError) as exc:
            raise ValidationError(
                _(
                    'Business hours must look like {"0": [["08:00", "18:00"]]} '
                    "(weekday 0 = Monday to 6 = Sunday, opening before closing): %(error)s"
                )
                % {"error": exc},
                code="invalid_schedule",
            ) from None
        return value


@admin.register(TeamQueue)
class TeamQueueAdmin(admin.ModelAdmin):
    form = TeamQueueAdminForm
    list_display = (
        "team",
        "first_response_minutes",
        "resolution_minutes",
        "auto_assign",
        "max_active_per_agent",
    )
    list_filter = ("auto_assign",)
    search_fields = ("team__name",)
    list_select_related = ("team",)


# --- History ------------------------------------------------------------------------


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "conversation",
        "direction",
        "sender_type",
        "kind",
        "short_text",
        "status",
    )
    list_filter = ("direction", "status", "kind", "sender_type")
    search_fields = ("text", "external_id")
    list_select_related = ("conversation",)
    # Newest first by primary key: the same order as created_at, and indexed.
    ordering = ("-id",)
    list_per_page = 50
    exclude = ("payload",)

    @admin.display(description=_("text"))
    def short_text(self, message: Message) -> str:
        return _short(message.text) or message.get_kind_display()


@admin.register(Note)
class NoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "conversation", "author", "short_text")
    search_fields = ("text", "conversation__protocol")
    list_select_related = ("conversation", "author")
    ordering = ("-id",)

    @admin.display(description=_("text"))
    def short_text(self, note: Note) -> str:
        return _short(note.text)

"""Django admin for the helpdesk data.

Conversations, messages and notes are history: admin shows them but changes
only what a supervisor may change in the console (priority, tags), and state
changes go through the services (the "resolve" action). Nobody deletes them
here, superusers included: the protocol, the thread, the SLA times and the
rating are the record of what the ISP told its customer (reports and
consumer-protection claims rely on them); removing a customer's data is a
deliberate operation for a command, not a click in a list.

Customer-supplied text (names, messages, captions, file names, notes, the
bot's state) is only ever shown through Django's escaping: ``format_html``
arguments, readonly fields and list columns, never ``mark_safe``.

Contacts' CPF/CNPJ is never shown in clear: a masked value is displayed, and a
new one is typed into a write-only field that the contact service validates
and encrypts.
"""

from __future__ import annotations

import contextlib
import json
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Q, QuerySet
from django.http import HttpRequest
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts.admin import HelpdeskAdmin, HelpdeskTabularInline
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


class ReadOnlyInline(HelpdeskTabularInline):
    extra = 0
    can_delete = False
    show_change_link = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyAdmin(HelpdeskAdmin):
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


def pretty_json(value: Any) -> SafeString | str:
    """A JSON value (a payload, the bot's state) indented in a <pre>; every
    character of it escaped, since customers write much of it."""
    if value in (None, "", {}, []):
        return "—"
    text = json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True, default=str)
    return format_html("<pre>{}</pre>", text)


def media_file_name(message: Message) -> str:
    """The file name the customer (or agent) gave a document, if any."""
    payload = message.payload if isinstance(message.payload, dict) else {}
    inner = payload.get(message.kind)
    name = payload.get("filename") or (inner.get("filename") if isinstance(inner, dict) else "")
    return str(name or "")


# --- Conversations ------------------------------------------------------------------


class MessageInline(ReadOnlyInline):
    model = Message
    fields = (
        "created_at",
        "direction",
        "sender_type",
        "sender_user",
        "kind",
        "text",
        "file_name",
        "status",
    )
    readonly_fields = fields
    ordering = ("created_at", "id")
    verbose_name_plural = _("messages")
    # Opens the message's own page: its payload, ids and status times.
    show_change_link = True

    def get_queryset(self, request: HttpRequest) -> QuerySet[Message]:
        return super().get_queryset(request).select_related("sender_user")

    @admin.display(description=_("file name"))
    def file_name(self, message: Message) -> str:
        return media_file_name(message) or "—"


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
# The customer's answer to the rating question: theirs, never edited.
RATING = ("csat_requested_at", "csat_score", "csat_answered_at")


@admin.register(Conversation)
class ConversationAdmin(HelpdeskAdmin):
    list_display = (
        "protocol",
        "contact",
        "state",
        "team",
        "assignee",
        "priority",
        "last_message_at",
        "unread_count",
        "csat_score",
    )
    list_filter = ("state", "team", "assignee", "priority", "inbox")
    search_fields = ("protocol", "contact__name", "contact__profile_name", "contact__phone")
    list_select_related = ("contact", "team", "assignee")
    date_hierarchy = "created_at"
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
        (_("Rating"), {"fields": RATING}),
        (_("Bot"), {"fields": ("bot_memory",), "classes": ("collapse",)}),
    )
    # Contact and assignee are read-only (shown as links, no <select> of every
    # contact or user); assignment and state changes go through the services.
    readonly_fields = (
        "protocol",
        "contact",
        "inbox",
        "team",
        "assignee",
        "state",
        *TIMES,
        *RATING,
        "bot_memory",
    )

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # conversations start when a customer writes

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # history: see the module docstring

    @admin.display(description=_("bot state"))
    def bot_memory(self, conversation: Conversation) -> SafeString | str:
        return pretty_json(conversation.bot_state)

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


class ContactConversationInline(ReadOnlyInline):
    """The customer's conversations, newest first, each a link to its page."""

    model = Conversation
    fields = ("protocol", "state", "team", "assignee", "created_at", "resolved_at", "csat_score")
    readonly_fields = fields
    ordering = ("-created_at", "-id")
    show_change_link = True
    verbose_name_plural = _("conversations")

    def get_queryset(self, request: HttpRequest) -> QuerySet[Conversation]:
        return super().get_queryset(request).select_related("team", "assignee")


@admin.register(Contact)
class ContactAdmin(HelpdeskAdmin):
    form = ContactAdminForm
    list_display = (
        "display_name",
        "phone",
        "username",
        "customer_code",
        "document_masked",
        "last_seen_at",
    )
    list_filter = ("tags",)
    search_fields = ("name", "profile_name", "phone", "customer_code", "username", "bsuid", "wa_id")
    show_full_result_count = False
    list_per_page = 50
    autocomplete_fields = ("tags",)
    inlines = (ContactConversationInline,)
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
        # Tags were set by contact_update, not form.save_m2m(); the inline of
        # conversations is read-only, so saving its formset writes nothing.
        for formset in formsets:
            self.save_formset(request, form, formset, change=change)


# --- Configuration ------------------------------------------------------------------


@admin.register(Inbox)
class InboxAdmin(HelpdeskAdmin):
    list_display = ("name", "channel", "address", "default_team", "created_at")
    list_filter = ("channel", "default_team")
    search_fields = ("name", "address")
    list_select_related = ("default_team",)
    ordering = ("name",)
    fields = ("name", "channel", "address", "default_team", "created_at")
    readonly_fields = ("created_at",)


_HEX_COLOUR = re.compile(r"#[0-9a-fA-F]{6}")


class TagAdminForm(forms.ModelForm):
    class Meta:
        model = Tag
        fields = ("name", "color")

    def clean_color(self) -> str:
        colour = self.cleaned_data["color"].strip()
        if not _HEX_COLOUR.fullmatch(colour):
            raise ValidationError(
                _("Enter a colour as # and six hex digits, e.g. #0ea5e9."), code="invalid_colour"
            )
        return colour.lower()


@admin.register(Tag)
class TagAdmin(HelpdeskAdmin):
    form = TagAdminForm
    list_display = ("name", "swatch")
    search_fields = ("name",)
    ordering = ("name",)

    @admin.display(description=_("colour"), ordering="color")
    def swatch(self, tag: Tag) -> SafeString | str:
        # An SVG fill, not a style attribute: the CSP forbids inline styles.
        if not _HEX_COLOUR.fullmatch(tag.color or ""):
            return tag.color or "—"
        return format_html(
            '<svg width="14" height="14" aria-hidden="true"><rect width="14" height="14" '
            'rx="3" fill="{}"/></svg> {}',
            tag.color,
            tag.color,
        )


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
class CannedReplyAdmin(HelpdeskAdmin):
    form = CannedReplyAdminForm
    list_display = ("shortcut", "title", "team", "created_by", "updated_at")
    list_filter = ("team",)
    search_fields = ("shortcut", "title", "text")
    list_select_related = ("team", "created_by")
    ordering = ("shortcut", "id")
    fieldsets = (
        (None, {"fields": ("shortcut", "title", "text", "team")}),
        (_("History"), {"fields": ("created_by", "created_at", "updated_at")}),
    )
    readonly_fields = ("created_by", "created_at", "updated_at")

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

    def delete_model(self, request: HttpRequest, obj: CannedReply) -> None:
        services.canned_reply_delete(reply=obj, actor=request.user)  # type: ignore[arg-type]

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[CannedReply]) -> None:
        for reply in queryset:
            self.delete_model(request, reply)


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
class TeamQueueAdmin(HelpdeskAdmin):
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
    ordering = ("team__name",)


# --- History ------------------------------------------------------------------------


@admin.register(Message)
class MessageAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "conversation",
        "contact",
        "direction",
        "sender_type",
        "kind",
        "short_text",
        "status",
    )
    list_filter = ("direction", "status", "kind", "sender_type")
    search_fields = ("text", "external_id", "conversation__protocol")
    list_select_related = ("conversation__contact",)
    # Newest first by primary key: the same order as created_at, and indexed.
    ordering = ("-id",)
    list_per_page = 50
    fieldsets = (
        (
            None,
            {
                "fields": (
                    "conversation",
                    "direction",
                    "sender_type",
                    "sender_user",
                    "kind",
                    "text",
                    "file_name",
                    "reply_to",
                    "reactions",
                )
            },
        ),
        (
            _("Delivery"),
            {
                "fields": (
                    "status",
                    "error_code",
                    "error_title",
                    "error_detail",
                    "created_at",
                    "sent_at",
                    "delivered_at",
                    "read_at",
                    "failed_at",
                )
            },
        ),
        (
            _("Provider"),
            {
                "fields": (
                    "external_id",
                    "client_key",
                    "media_id",
                    "media_mime_type",
                    "media_file",
                    "received_payload",
                ),
                "classes": ("collapse",),
            },
        ),
    )

    @admin.display(description=_("contact"))
    def contact(self, message: Message) -> Contact:
        return message.conversation.contact

    @admin.display(description=_("text"))
    def short_text(self, message: Message) -> str:
        return _short(message.text) or message.get_kind_display()

    @admin.display(description=_("file name"))
    def file_name(self, message: Message) -> str:
        return media_file_name(message) or "—"

    @admin.display(description=_("payload"))
    def received_payload(self, message: Message) -> SafeString | str:
        return pretty_json(message.payload)


@admin.register(Note)
class NoteAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "conversation", "author", "short_text")
    list_filter = ("author",)
    search_fields = ("text", "conversation__protocol")
    list_select_related = ("conversation", "author")
    ordering = ("-id",)
    date_hierarchy = "created_at"
    fields = ("conversation", "author", "text", "created_at")

    @admin.display(description=_("text"))
    def short_text(self, note: Note) -> str:
        return _short(note.text)

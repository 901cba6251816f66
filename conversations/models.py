"""Contacts, conversations and messages: what the bot, the agents and the API
all work on. Rows change only through ``conversations.services``."""

from __future__ import annotations

from datetime import datetime, timedelta

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from accounts.models import Team


def default_business_hours() -> dict[str, list[list[str]]]:
    """Monday to Friday 08:00-18:00, Saturday 08:00-12:00 (weekday 0 is Monday)."""
    weekday = [["08:00", "18:00"]]
    return {"0": weekday, "1": weekday, "2": weekday, "3": weekday, "4": weekday,
            "5": [["08:00", "12:00"]]}  # fmt: skip


class Tag(models.Model):
    name = models.CharField(_("name"), max_length=50, unique=True)
    color = models.CharField(
        _("colour"), max_length=7, default="#64748b", help_text=_("Hex colour, e.g. #0ea5e9.")
    )

    class Meta:
        ordering = ["name"]
        verbose_name = _("tag")
        verbose_name_plural = _("tags")

    def __str__(self) -> str:
        return self.name


class TeamQueue(models.Model):
    """How a team's queue works: SLA targets in business hours and automatic
    assignment. Kept here, not on ``accounts.Team``: accounts knows nothing of
    conversations."""

    team = models.OneToOneField(
        Team, on_delete=models.CASCADE, related_name="queue", verbose_name=_("team")
    )
    first_response_minutes = models.PositiveIntegerField(
        _("first response target (business minutes)"), default=15
    )
    resolution_minutes = models.PositiveIntegerField(
        _("resolution target (business minutes)"), default=8 * 60
    )
    business_hours = models.JSONField(
        _("business hours"),
        default=default_business_hours,
        help_text=_(
            'Per weekday (0 = Monday) a list of ["HH:MM", "HH:MM"] intervals in the '
            "project's time zone; a missing weekday is closed."
        ),
    )
    auto_assign = models.BooleanField(
        _("assign automatically"),
        default=False,
        help_text=_("Give each new conversation to the least busy online agent of the team."),
    )
    max_active_per_agent = models.PositiveSmallIntegerField(
        _("maximum simultaneous conversations per agent"), default=5
    )

    class Meta:
        verbose_name = _("team queue")
        verbose_name_plural = _("team queues")

    def __str__(self) -> str:
        return str(self.team)


class Inbox(models.Model):
    """Where customers write to us: one WhatsApp number today, any channel
    tomorrow. The channel app links its own account model to an inbox, so the
    core never imports a channel."""

    name = models.CharField(_("name"), max_length=80)
    channel = models.CharField(_("channel"), max_length=20, default="whatsapp")
    address = models.CharField(
        _("address"), max_length=64, blank=True, help_text=_("e.g. the number customers write to")
    )
    default_team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("default team"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("inbox")
        verbose_name_plural = _("inboxes")

    def __str__(self) -> str:
        return f"{self.name} ({self.address})" if self.address else self.name


class Contact(models.Model):
    """A customer. Identity is the business-scoped user id (BSUID), the WhatsApp
    id, or the canonical phone; each is unique when present.

    Identifiers are NULL, not '', when absent: only NULLs may repeat under a
    unique constraint (hence the DJ001 exceptions here and below).
    """

    bsuid = models.CharField(_("WhatsApp user id (BSUID)"), max_length=128, null=True, blank=True)  # noqa: DJ001
    wa_id = models.CharField(_("WhatsApp id"), max_length=32, null=True, blank=True)  # noqa: DJ001
    phone = models.CharField(  # noqa: DJ001
        _("phone (E.164)"),
        max_length=20,
        null=True,
        blank=True,
        help_text=_("Brazilian mobiles always with the ninth digit, e.g. +5511988887777."),
    )
    username = models.CharField(_("WhatsApp username"), max_length=64, blank=True)
    name = models.CharField(
        _("name"), max_length=150, blank=True, help_text=_("As staff know the customer.")
    )
    profile_name = models.CharField(
        _("WhatsApp profile name"), max_length=150, blank=True, editable=False
    )
    document_encrypted = models.TextField(_("CPF/CNPJ (encrypted)"), blank=True, editable=False)
    document_hash = models.CharField(  # noqa: DJ001
        _("CPF/CNPJ lookup hash"), max_length=64, null=True, blank=True, editable=False
    )
    customer_code = models.CharField(_("ISP customer code"), max_length=40, blank=True)
    notes = models.TextField(_("notes"), blank=True)
    tags = models.ManyToManyField(Tag, blank=True, related_name="contacts", verbose_name=_("tags"))
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_seen_at = models.DateTimeField(_("last seen at"), null=True, blank=True)

    class Meta:
        ordering = ["name", "id"]
        verbose_name = _("contact")
        verbose_name_plural = _("contacts")
        constraints = [
            models.UniqueConstraint(
                fields=["bsuid"], condition=Q(bsuid__isnull=False), name="contact_bsuid_unique"
            ),
            models.UniqueConstraint(
                fields=["wa_id"], condition=Q(wa_id__isnull=False), name="contact_wa_id_unique"
            ),
            models.UniqueConstraint(
                fields=["phone"], condition=Q(phone__isnull=False), name="contact_phone_unique"
            ),
            models.UniqueConstraint(
                fields=["document_hash"],
                condition=Q(document_hash__isnull=False),
                name="contact_document_unique",
            ),
        ]
        indexes = [models.Index(fields=["customer_code"], name="contact_customer_code_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def has_name(self) -> bool:
        return bool(self.name or self.profile_name)

    @property
    def display_name(self) -> str:
        """Staff's name for the customer, else their WhatsApp profile name, else an id."""
        return (
            self.name
            or self.profile_name
            or self.phone
            or (f"@{self.username}" if self.username else "")
            or self.bsuid
            or f"#{self.pk}"
        )

    @property
    def document(self) -> str:
        """The CPF/CNPJ in clear (digits only), or ''."""
        from ispsupport.crypto import decrypt

        return decrypt(self.document_encrypted) if self.document_encrypted else ""

    @property
    def document_masked(self) -> str:
        """Enough for an agent to confirm with the customer, never the whole number."""
        if not self.document_encrypted:
            return ""
        digits = self.document
        return "•" * (len(digits) - 4) + digits[-4:]


class Conversation(models.Model):
    class State(models.TextChoices):
        BOT = "bot", _("With the bot")
        QUEUED = "queued", _("Queued")
        OPEN = "open", _("Open")
        PENDING = "pending", _("Waiting on the customer")
        RESOLVED = "resolved", _("Resolved")

    class Priority(models.IntegerChoices):
        LOW = 0, _("Low")
        NORMAL = 1, _("Normal")
        HIGH = 2, _("High")
        URGENT = 3, _("Urgent")

    protocol = models.CharField(  # noqa: DJ001
        _("protocol"), max_length=24, unique=True, null=True, editable=False
    )
    contact = models.ForeignKey(
        Contact, on_delete=models.PROTECT, related_name="conversations", verbose_name=_("contact")
    )
    inbox = models.ForeignKey(
        Inbox, on_delete=models.PROTECT, related_name="conversations", verbose_name=_("inbox")
    )
    team = models.ForeignKey(
        Team,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="conversations",
        verbose_name=_("team"),
    )
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="assigned_conversations",
        verbose_name=_("assignee"),
    )
    state = models.CharField(_("state"), max_length=16, choices=State.choices, default=State.QUEUED)
    priority = models.PositiveSmallIntegerField(
        _("priority"), choices=Priority.choices, default=Priority.NORMAL
    )
    tags = models.ManyToManyField(
        Tag, blank=True, related_name="conversations", verbose_name=_("tags")
    )
    unread_count = models.PositiveIntegerField(_("unread by the assignee"), default=0)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)
    last_message_at = models.DateTimeField(_("last message at"), default=timezone.now)
    last_inbound_at = models.DateTimeField(_("last customer message at"), null=True, blank=True)
    queued_at = models.DateTimeField(_("queued at"), null=True, blank=True)
    first_response_at = models.DateTimeField(_("first response at"), null=True, blank=True)
    first_response_due_at = models.DateTimeField(_("first response due"), null=True, blank=True)
    resolution_due_at = models.DateTimeField(_("resolution due"), null=True, blank=True)
    resolved_at = models.DateTimeField(_("resolved at"), null=True, blank=True)
    resolved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("resolved by"),
    )
    # The bot's memory of this conversation (step, collected data, attempts);
    # only the bot reads or writes it, the core just keeps it.
    bot_state = models.JSONField(_("bot state"), default=dict, blank=True, editable=False)
    csat_requested_at = models.DateTimeField(_("rating asked at"), null=True, blank=True)
    csat_score = models.PositiveSmallIntegerField(_("customer rating (1-5)"), null=True, blank=True)
    csat_answered_at = models.DateTimeField(_("rated at"), null=True, blank=True)

    class Meta:
        ordering = ["-last_message_at", "-id"]
        verbose_name = _("conversation")
        verbose_name_plural = _("conversations")
        constraints = [
            # At most one unresolved conversation per contact and inbox: the
            # database, not a check-then-insert, keeps concurrent inbound
            # messages of a new contact in one conversation.
            models.UniqueConstraint(
                fields=["contact", "inbox"],
                condition=~Q(state="resolved"),
                name="conversation_one_active_per_contact",
            ),
        ]
        indexes = [
            # The inbox: by state and team, newest activity first.
            models.Index(
                fields=["state", "team", "-last_message_at", "-id"], name="conv_inbox_team_idx"
            ),
            models.Index(
                fields=["assignee", "state", "-last_message_at", "-id"],
                name="conv_inbox_assignee_idx",
            ),
            models.Index(fields=["-last_message_at", "-id"], name="conv_recent_idx"),
            # Take-next: the oldest queued conversation of a team.
            models.Index(
                fields=["team", "queued_at", "id"],
                condition=Q(state="queued", assignee__isnull=True),
                name="conv_queue_idx",
            ),
            models.Index(fields=["contact", "-created_at"], name="conv_contact_idx"),
        ]

    def __str__(self) -> str:
        return self.protocol or f"#{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.state != self.State.RESOLVED

    def service_window_open(self, now: datetime | None = None) -> bool:
        """WhatsApp allows free text only within 24 hours of the customer's last message."""
        if self.last_inbound_at is None:
            return False
        return (now or timezone.now()) - self.last_inbound_at < timedelta(hours=24)


class Message(models.Model):
    class Direction(models.TextChoices):
        IN = "in", _("From the customer")
        OUT = "out", _("To the customer")

    class SenderType(models.TextChoices):
        CONTACT = "contact", _("Customer")
        BOT = "bot", _("Bot")
        AGENT = "agent", _("Agent")
        SYSTEM = "system", _("System")

    class Kind(models.TextChoices):
        TEXT = "text", _("Text")
        IMAGE = "image", _("Image")
        AUDIO = "audio", _("Audio")
        VIDEO = "video", _("Video")
        DOCUMENT = "document", _("Document")
        STICKER = "sticker", _("Sticker")
        LOCATION = "location", _("Location")
        CONTACTS = "contacts", _("Contacts")
        INTERACTIVE = "interactive", _("Interactive")
        BUTTON = "button", _("Button")
        TEMPLATE = "template", _("Template")
        REACTION = "reaction", _("Reaction")
        UNSUPPORTED = "unsupported", _("Unsupported")
        SYSTEM = "system", _("System")

    class Status(models.TextChoices):
        PENDING = "pending", _("Pending")
        SENT = "sent", _("Sent")
        DELIVERED = "delivered", _("Delivered")
        READ = "read", _("Read")
        FAILED = "failed", _("Failed")
        RECEIVED = "received", _("Received")

    conversation = models.ForeignKey(
        Conversation,
        on_delete=models.CASCADE,
        related_name="messages",
        verbose_name=_("conversation"),
    )
    direction = models.CharField(_("direction"), max_length=3, choices=Direction.choices)
    sender_type = models.CharField(_("sender"), max_length=10, choices=SenderType.choices)
    sender_user = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("sent by"),
    )
    kind = models.CharField(_("kind"), max_length=16, choices=Kind.choices, default=Kind.TEXT)
    text = models.TextField(_("text"), blank=True)
    # The channel's own shape of the message. One key is common to all
    # channels: "reply_id", the id of the button or list row the customer tapped.
    payload = models.JSONField(_("payload"), default=dict, blank=True)
    media_id = models.CharField(_("provider media id"), max_length=128, blank=True)
    media_mime_type = models.CharField(_("media type"), max_length=100, blank=True)
    media_file = models.CharField(
        _("stored media"), max_length=255, blank=True, help_text=_("Path in the media storage.")
    )
    external_id = models.CharField(_("provider message id"), max_length=128, null=True, blank=True)  # noqa: DJ001
    client_key = models.CharField(  # noqa: DJ001
        _("idempotency key"),
        max_length=64,
        null=True,
        blank=True,
        help_text=_("Chosen by the client so a retried request never sends twice."),
    )
    reply_to = models.ForeignKey(
        "self",
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="replies",
        verbose_name=_("reply to"),
    )
    reactions = models.JSONField(
        _("reactions"),
        default=dict,
        blank=True,
        help_text=_('Emoji reactions to this message by who reacted, e.g. {"contact": "👍"}.'),
    )
    status = models.CharField(_("status"), max_length=10, choices=Status.choices)
    error_code = models.CharField(_("error code"), max_length=32, blank=True)
    error_title = models.CharField(_("error"), max_length=255, blank=True)
    error_detail = models.TextField(_("error details"), blank=True)
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    sent_at = models.DateTimeField(_("sent at"), null=True, blank=True)
    delivered_at = models.DateTimeField(_("delivered at"), null=True, blank=True)
    read_at = models.DateTimeField(_("read at"), null=True, blank=True)
    failed_at = models.DateTimeField(_("failed at"), null=True, blank=True)

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("message")
        verbose_name_plural = _("messages")
        constraints = [
            models.UniqueConstraint(
                fields=["external_id"],
                condition=Q(external_id__isnull=False),
                name="message_external_id_unique",
            ),
            models.UniqueConstraint(
                fields=["conversation", "client_key"],
                condition=Q(client_key__isnull=False),
                name="message_client_key_unique",
            ),
        ]
        indexes = [
            models.Index(fields=["conversation", "created_at", "id"], name="msg_thread_idx"),
            models.Index(
                fields=["created_at"],
                condition=Q(status="pending"),
                name="msg_pending_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_direction_display()}: {self.text[:40] or self.get_kind_display()}"


class Note(models.Model):
    """An internal note: staff only, never sent to the customer."""

    conversation = models.ForeignKey(
        Conversation, on_delete=models.CASCADE, related_name="notes", verbose_name=_("conversation")
    )
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        related_name="+",
        verbose_name=_("author"),
    )
    text = models.TextField(_("text"))
    created_at = models.DateTimeField(_("created at"), default=timezone.now)
    # The writer's idempotency key: a retried request returns the first note.
    client_key = models.CharField(  # noqa: DJ001 - NULL: no key, many rows
        _("client key"), max_length=64, null=True, blank=True, editable=False
    )

    class Meta:
        ordering = ["created_at", "id"]
        verbose_name = _("internal note")
        verbose_name_plural = _("internal notes")
        constraints = [
            models.UniqueConstraint(
                fields=["conversation", "client_key"],
                condition=Q(client_key__isnull=False),
                name="note_client_key_unique",
            )
        ]

    def __str__(self) -> str:
        return self.text[:60]


class CannedReply(models.Model):
    """A ready answer agents insert by shortcut; ``{{contact.name}}``-style
    placeholders are filled when it is sent."""

    shortcut = models.SlugField(_("shortcut"), max_length=40)
    title = models.CharField(_("title"), max_length=120)
    text = models.TextField(_("text"))
    team = models.ForeignKey(
        Team,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="canned_replies",
        verbose_name=_("team"),
        help_text=_("Empty: every team may use it."),
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        verbose_name=_("created by"),
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)
    updated_at = models.DateTimeField(_("updated at"), auto_now=True)

    class Meta:
        ordering = ["shortcut"]
        verbose_name = _("canned reply")
        verbose_name_plural = _("canned replies")
        constraints = [
            models.UniqueConstraint(
                fields=["shortcut", "team"], name="canned_reply_team_shortcut_unique"
            ),
            # NULLs are distinct in a unique index: shared replies need their own.
            models.UniqueConstraint(
                fields=["shortcut"],
                condition=Q(team__isnull=True),
                name="canned_reply_shared_shortcut_unique",
            ),
        ]

    def __str__(self) -> str:
        return f"/{self.shortcut} — {self.title}"

"""Conversations API v1: the inbox, threads, queue actions, contacts and
canned replies (/api/v1/conversations/, /contacts/, /canned-replies/).

Every view fetches through the selectors, so a conversation outside the
user's teams is a 404, and changes go through ``conversations.services``.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any

from django.db.models import Prefetch, Q, QuerySet, Value
from django.db.models.functions import Coalesce, Lower, NullIf
from django.http import Http404, QueryDict
from django.utils import timezone
from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_field
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.pagination import CursorPagination
from rest_framework.request import Request
from rest_framework.response import Response

from accounts.api import TeamRefSerializer
from accounts.models import Team, User
from accounts.permissions import IsSupervisor
from conversations import channels, selectors, services
from conversations.models import CannedReply, Contact, Conversation, Message, Note, Tag
from ispsupport.openapi import CONFLICT

State = Conversation.State


# --- Pagination -------------------------------------------------------------------


class ConversationCursorPagination(CursorPagination):
    ordering = ("-last_message_at", "-id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


class MessageCursorPagination(CursorPagination):
    ordering = ("created_at", "id")
    page_size = 50
    page_size_query_param = "page_size"
    max_page_size = 100


# --- Output -----------------------------------------------------------------------


class UserRefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = User
        fields = ["id", "name"]


class ContactRefSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = Contact
        fields = ["id", "name", "phone", "username"]


class TagSerializer(serializers.ModelSerializer):
    class Meta:
        model = Tag
        fields = ["id", "name", "color"]


class InboxRefSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    name = serializers.CharField(read_only=True)
    channel = serializers.CharField(read_only=True)


class LastMessageSerializer(serializers.Serializer):
    text = serializers.CharField()
    kind = serializers.ChoiceField(Message.Kind.choices)
    direction = serializers.ChoiceField(Message.Direction.choices)


def _last_message(conversation: Conversation) -> dict[str, str] | None:
    """From the inbox list's annotations; one query for a conversation fetched alone."""
    if hasattr(conversation, "last_message_kind"):
        if conversation.last_message_kind is None:
            return None
        return {
            "text": conversation.last_message_text,
            "kind": conversation.last_message_kind,
            "direction": conversation.last_message_direction,
        }
    if not hasattr(conversation, "_last_message"):
        conversation._last_message = (  # type: ignore[attr-defined]
            conversation.messages.order_by("-created_at", "-id")
            .values("text", "kind", "direction")
            .first()
        )
    return conversation._last_message  # type: ignore[attr-defined]


class ConversationSerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True, allow_null=True)
    assignee = UserRefSerializer(read_only=True, allow_null=True)
    contact = ContactRefSerializer(read_only=True)
    tags = TagSerializer(many=True, read_only=True)
    last_message = serializers.SerializerMethodField()
    waiting_seconds = serializers.SerializerMethodField()
    service_window_open = serializers.SerializerMethodField()

    class Meta:
        model = Conversation
        fields = [
            "id",
            "protocol",
            "state",
            "priority",
            "team",
            "assignee",
            "contact",
            "tags",
            "unread_count",
            "last_message",
            "last_message_at",
            "last_inbound_at",
            "waiting_seconds",
            "first_response_due_at",
            "resolution_due_at",
            "created_at",
            "service_window_open",
        ]
        read_only_fields = fields

    @extend_schema_field(LastMessageSerializer(allow_null=True))
    def get_last_message(self, conversation: Conversation) -> dict[str, str] | None:
        return _last_message(conversation)

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_waiting_seconds(self, conversation: Conversation) -> int | None:
        """How long the customer has waited for us: null once we answered or resolved."""
        last = _last_message(conversation)
        if (
            last is None
            or last["direction"] != Message.Direction.IN
            or conversation.state == State.RESOLVED
            or conversation.last_inbound_at is None
        ):
            return None
        return max(0, int((self._now() - conversation.last_inbound_at).total_seconds()))

    @extend_schema_field(OpenApiTypes.BOOL)
    def get_service_window_open(self, conversation: Conversation) -> bool:
        return conversation.service_window_open(self._now())

    def _now(self) -> datetime:
        # One clock for the whole page.
        if "now" not in self.context:
            self.context["now"] = timezone.now()
        return self.context["now"]


class ConversationDetailSerializer(ConversationSerializer):
    inbox = InboxRefSerializer(read_only=True)

    class Meta(ConversationSerializer.Meta):
        fields = [
            *ConversationSerializer.Meta.fields,
            "inbox",
            "resolved_at",
            "first_response_at",
        ]
        read_only_fields = fields


class MessageSerializer(serializers.ModelSerializer):
    sender = UserRefSerializer(source="sender_user", read_only=True, allow_null=True)
    reply_to = serializers.IntegerField(source="reply_to_id", read_only=True, allow_null=True)

    class Meta:
        model = Message
        fields = [
            "id",
            "direction",
            "sender_type",
            "sender",
            "kind",
            "text",
            "payload",
            "media_id",
            "media_mime_type",
            "status",
            "error_code",
            "error_title",
            "reply_to",
            "created_at",
            "sent_at",
            "delivered_at",
            "read_at",
            "failed_at",
        ]
        read_only_fields = fields


class NoteSerializer(serializers.ModelSerializer):
    author = UserRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = Note
        fields = ["id", "author", "text", "created_at"]
        read_only_fields = fields


class ContactSerializer(serializers.ModelSerializer):
    tags = serializers.SlugRelatedField(many=True, read_only=True, slug_field="name")

    class Meta:
        model = Contact
        fields = [
            "id",
            "name",
            "profile_name",
            "display_name",
            "phone",
            "username",
            "bsuid",
            "wa_id",
            "document_masked",
            "customer_code",
            "notes",
            "tags",
            "created_at",
            "last_seen_at",
        ]
        read_only_fields = fields


class CannedReplySerializer(serializers.ModelSerializer):
    team = TeamRefSerializer(read_only=True, allow_null=True)

    class Meta:
        model = CannedReply
        fields = ["id", "shortcut", "title", "text", "team", "created_at", "updated_at"]
        read_only_fields = fields


# --- Input ------------------------------------------------------------------------

ASSIGNEE_WORDS = ("me", "none", "any")
# ASCII digits only: str.isdigit() also accepts "²", which int() refuses.
_ID = re.compile(r"[0-9]{1,18}")


class ConversationFilterSerializer(serializers.Serializer):
    state = serializers.MultipleChoiceField(
        choices=State.choices,
        required=False,
        help_text=_("Repeat it or separate states with commas."),
    )
    team = serializers.IntegerField(required=False, min_value=1, max_value=selectors.MAX_ID)
    assignee = serializers.CharField(
        required=False,
        help_text=_('"me", "none" (unassigned), "any" (the default) or a user id.'),
    )
    tag = serializers.CharField(required=False, max_length=50)
    q = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text=_("Contact name, phone digits, protocol or message text."),
    )

    def validate_assignee(self, value: str) -> str:
        value = value.strip().lower()
        if value not in ASSIGNEE_WORDS and not _ID.fullmatch(value):
            raise serializers.ValidationError(_('Use "me", "none", "any" or a user id.'))
        return value

    @classmethod
    def from_query(cls, query: QueryDict) -> ConversationFilterSerializer:
        data: dict[str, Any] = {
            key: query[key] for key in ("team", "assignee", "tag", "q") if query.get(key)
        }
        states = [s.strip() for raw in query.getlist("state") for s in raw.split(",") if s.strip()]
        if states:
            data["state"] = states
        return cls(data=data)


class PrioritySerializer(serializers.Serializer):
    priority = serializers.ChoiceField(Conversation.Priority.choices, required=False)


class AssignSerializer(serializers.Serializer):
    agent = serializers.PrimaryKeyRelatedField(queryset=User.objects.all())


class TransferSerializer(serializers.Serializer):
    team = serializers.PrimaryKeyRelatedField(queryset=Team.objects.all(), required=False)
    agent = serializers.PrimaryKeyRelatedField(queryset=User.objects.all(), required=False)
    note = serializers.CharField(required=False, allow_blank=True, max_length=4000, default="")


class NoteCreateSerializer(serializers.Serializer):
    text = serializers.CharField(max_length=4000)
    client_key = serializers.CharField(
        required=False,
        max_length=64,
        help_text=_(
            "Any unique string per note; a retry with the same key returns the first note "
            "and adds nothing. The Idempotency-Key header works too."
        ),
    )


class TagsSerializer(serializers.Serializer):
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), allow_empty=True, max_length=50
    )


class TemplateParameterSerializer(serializers.Serializer):
    type = serializers.ChoiceField(choices=["text"], default="text")
    text = serializers.CharField(max_length=1024, trim_whitespace=True)


class TemplateHeaderSerializer(serializers.Serializer):
    parameters = TemplateParameterSerializer(
        many=True,
        required=False,
        default=list,
        help_text=_("The values of a text header's variables, in order."),
    )
    link = serializers.URLField(
        required=False,
        max_length=2048,
        help_text=_(
            "An image, video or document header: the https:// address Meta downloads the "
            "file from (e.g. the invoice PDF in your ERP)."
        ),
    )
    filename = serializers.CharField(
        required=False,
        max_length=240,
        help_text=_("A document header: the file name the customer sees."),
    )

    def validate_link(self, value: str) -> str:
        if not value.lower().startswith("https://"):
            raise serializers.ValidationError(
                _("Meta downloads the file from this address: it must start with https://.")
            )
        return value


class TemplateButtonSerializer(serializers.Serializer):
    index = serializers.IntegerField(
        min_value=0, max_value=9, help_text=_("The button's position, from 0.")
    )
    text = serializers.CharField(
        max_length=2000,
        help_text=_("A URL button's variable part, or a copy-code button's code."),
    )


class TemplateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=512)
    language = serializers.CharField(max_length=20)
    parameters = TemplateParameterSerializer(
        many=True, required=False, default=list, help_text=_("The body's variables, in order.")
    )
    header = TemplateHeaderSerializer(required=False)
    buttons = TemplateButtonSerializer(many=True, required=False, default=list, max_length=10)


class MessageCreateSerializer(serializers.Serializer):
    text = serializers.CharField(required=False, allow_blank=True, max_length=4096)
    canned_reply = serializers.IntegerField(required=False, max_value=selectors.MAX_ID)
    client_key = serializers.CharField(
        required=False,
        max_length=64,
        help_text=_(
            "Any unique string per message; a retry with the same key returns the first "
            "message and sends nothing twice. The Idempotency-Key header works too."
        ),
    )
    reply_to = serializers.IntegerField(required=False, allow_null=True, max_value=selectors.MAX_ID)
    kind = serializers.ChoiceField(
        choices=[Message.Kind.TEXT, Message.Kind.TEMPLATE],
        default=Message.Kind.TEXT,
        help_text=_(
            "'template' sends one of the channel's approved templates, the only thing "
            "WhatsApp delivers once 24 hours have passed since the customer's last message."
        ),
    )
    template = TemplateSerializer(required=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        conversation: Conversation = self.context["conversation"]
        user: User = self.context["user"]
        if attrs.get("kind") == Message.Kind.TEMPLATE:
            return self._validate_template(attrs, conversation)
        attrs.pop("template", None)
        text = attrs.get("text", "")
        reply_id = attrs.pop("canned_reply", None)
        if reply_id is not None and text.strip():
            raise serializers.ValidationError(
                {"text": [_("Send either a text or a canned reply, not both.")]}
            )
        if reply_id is not None:
            reply = selectors.canned_replies_for(user).filter(pk=reply_id).first()
            if reply is None:
                raise serializers.ValidationError(
                    {"canned_reply": [_("No such canned reply for your teams.")]}
                )
            attrs["text"] = services.canned_reply_render(
                reply, conversation=conversation, actor=user
            )
        elif not text.strip():
            raise serializers.ValidationError({"text": [_("Write a message.")]})
        reply_to = attrs.pop("reply_to", None)
        if reply_to is not None:
            attrs["reply_to"] = Message.objects.filter(
                pk=reply_to, conversation=conversation
            ).first()
            if attrs["reply_to"] is None:
                raise serializers.ValidationError(
                    {"reply_to": [_("No such message in this conversation.")]}
                )
        return attrs

    def _validate_template(
        self, attrs: dict[str, Any], conversation: Conversation
    ) -> dict[str, Any]:
        given = attrs.pop("template", None)
        if given is None:
            raise serializers.ValidationError({"template": [_("Choose a template.")]})
        offered = next(
            (
                t
                for t in channels.templates_for(conversation.inbox)
                if t["name"] == given["name"] and t["language"] == given["language"]
            ),
            None,
        )
        if offered is None:
            raise serializers.ValidationError(
                {
                    "template": [
                        _("This number has no approved template with that name and language.")
                    ]
                }
            )
        if not offered.get("sendable", True):
            raise serializers.ValidationError(
                {
                    "template": [
                        _(
                            "This template has a location header, which cannot be sent "
                            "from here; send it from WhatsApp Manager."
                        )
                    ]
                }
            )
        header, header_text = _template_header(offered, given.get("header") or {})
        values = [p["text"] for p in given.get("parameters", [])]
        if len(values) != offered["params"]:
            raise serializers.ValidationError(
                {
                    "template": [
                        _("This template takes %(count)d parameter(s); %(given)d given.")
                        % {"count": offered["params"], "given": len(values)}
                    ]
                }
            )
        buttons = _template_buttons(offered, given.get("buttons") or [])
        # The stored text is what the customer will read: the approved body
        # filled on the server, not whatever preview the client sent; a text
        # header comes first, bold as WhatsApp shows it.
        text = _filled(offered["body"], offered["variables"], values)
        if header_text:
            text = f"*{header_text}*\n{text}"
        payload: dict[str, Any] = {"name": offered["name"], "language": offered["language"]}
        body = (
            [
                {
                    "type": "body",
                    "parameters": _text_parameters(offered, offered["variables"], values),
                }
            ]
            if values
            else []
        )
        components = [*header, *body, *buttons]
        if components:
            payload["components"] = components
        attrs.update(text=text, kind=Message.Kind.TEMPLATE, payload=payload, reply_to=None)
        attrs.pop("canned_reply", None)
        return attrs


def _filled(text: str, names: list[Any], values: list[str]) -> str:
    for name, value in zip(names, values, strict=True):
        text = re.sub(r"\{\{\s*" + re.escape(str(name)) + r"\s*\}\}", lambda _m, v=value: v, text)
    return text


def _text_parameters(
    offered: dict[str, Any], names: list[Any], values: list[str]
) -> list[dict[str, Any]]:
    parameters: list[dict[str, Any]] = [{"type": "text", "text": v} for v in values]
    if offered.get("named"):
        for parameter, name in zip(parameters, names, strict=True):
            parameter["parameter_name"] = str(name)
    return parameters


MEDIA_HEADERS = ("image", "video", "document")
MAX_COUPON_CODE = 15  # Meta's limit for a copy-code button's code


def _template_header(
    offered: dict[str, Any], given: dict[str, Any]
) -> tuple[list[dict[str, Any]], str]:
    """The header component to send, and the header's text as the customer reads it."""
    header = offered.get("header") or {}
    kind = header.get("format") or ""
    if kind in MEDIA_HEADERS:
        link = given.get("link")
        if not link:
            raise serializers.ValidationError(
                {
                    "template": [
                        _(
                            "This template's header is a file (%(kind)s): give the https:// "
                            "link Meta downloads it from."
                        )
                        % {"kind": kind}
                    ]
                }
            )
        media: dict[str, Any] = {"link": link}
        if kind == "document" and given.get("filename"):
            media["filename"] = given["filename"]
        return [{"type": "header", "parameters": [{"type": kind, kind: media}]}], ""
    if given.get("link"):
        raise serializers.ValidationError(
            {"template": [_("This template's header has no file; leave the link out.")]}
        )
    names = header.get("variables") or []
    values = [p["text"] for p in given.get("parameters", [])]
    if len(values) != len(names):
        raise serializers.ValidationError(
            {
                "template": [
                    _("This template's header takes %(count)d parameter(s); %(given)d given.")
                    % {"count": len(names), "given": len(values)}
                ]
            }
        )
    text = _filled(str(header.get("text") or ""), names, values)
    if not values:
        return [], text
    parameters = _text_parameters(offered, names, values)
    return [{"type": "header", "parameters": parameters}], text


def _template_buttons(offered: dict[str, Any], given: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One component per button that takes a value, in the template's order."""
    wanted = {int(b["index"]): b for b in offered.get("buttons") or []}
    values: dict[int, str] = {}
    for button in given:
        index = int(button["index"])
        if index not in wanted:
            raise serializers.ValidationError(
                {
                    "template": [
                        _("This template has no button %(index)d that takes a value.")
                        % {"index": index}
                    ]
                }
            )
        if index in values:
            raise serializers.ValidationError(
                {"template": [_("Button %(index)d is given twice.") % {"index": index}]}
            )
        if wanted[index]["type"] == "copy_code" and len(button["text"]) > MAX_COUPON_CODE:
            raise serializers.ValidationError(
                {
                    "template": [
                        _("WhatsApp takes a code of at most %(max)d characters; %(given)d given.")
                        % {"max": MAX_COUPON_CODE, "given": len(button["text"])}
                    ]
                }
            )
        values[index] = button["text"]
    missing = sorted(set(wanted) - set(values))
    if missing:
        raise serializers.ValidationError(
            {
                "template": [
                    _("Button %(index)d of this template takes a value; none given.")
                    % {"index": missing[0]}
                ]
            }
        )
    components = []
    for index in sorted(wanted):
        if wanted[index]["type"] == "copy_code":
            parameter = {"type": "coupon_code", "coupon_code": values[index]}
        else:
            parameter = {"type": "text", "text": values[index]}
        components.append(
            {
                "type": "button",
                "sub_type": wanted[index]["type"],
                "index": str(index),
                "parameters": [parameter],
            }
        )
    return components


class ContactUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(required=False, allow_blank=True, max_length=150)
    phone = serializers.CharField(required=False, allow_blank=True, allow_null=True, max_length=30)
    document = serializers.CharField(
        required=False, allow_blank=True, max_length=30, write_only=True
    )
    customer_code = serializers.CharField(required=False, allow_blank=True, max_length=40)
    notes = serializers.CharField(required=False, allow_blank=True, max_length=10_000)
    tags = serializers.ListField(
        child=serializers.CharField(max_length=50), required=False, max_length=50
    )


class CannedReplyWriteSerializer(serializers.Serializer):
    shortcut = serializers.SlugField(max_length=40)
    title = serializers.CharField(max_length=120)
    text = serializers.CharField(max_length=4096)
    team = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), allow_null=True, required=False, default=None
    )


class SearchSerializer(serializers.Serializer):
    q = serializers.CharField(required=False, allow_blank=True, max_length=200, default="")


# --- Views ------------------------------------------------------------------------


def _search_term(request: Request) -> str:
    """``?q=`` checked like any input: a NUL byte or a novel is a 400, not a database error."""
    search = SearchSerializer(data={"q": request.query_params.get("q", "")})
    search.is_valid(raise_exception=True)
    return search.validated_data["q"]


def _int_or_none(value: str) -> int | None:
    return int(value) if _ID.fullmatch(value) else None


def _conversation_out(pk: int) -> dict[str, Any]:
    """The detail after a change, whether or not the user still sees it (a transfer
    to another team): they just made the change, so they get its result."""
    conversation = (
        Conversation.objects.select_related("contact", "team", "assignee", "inbox")
        .prefetch_related(Prefetch("tags", queryset=Tag.objects.only("id", "name", "color")))
        .get(pk=pk)
    )
    return ConversationDetailSerializer(conversation).data


# A change of state: 409 (invalid_transition...) when the conversation's state refuses it.
_STATE_CHANGE = {200: ConversationDetailSerializer, 409: CONFLICT}

IDEMPOTENCY_KEY = OpenApiParameter(
    "Idempotency-Key",
    OpenApiTypes.STR,
    OpenApiParameter.HEADER,
    description=str(_("Same as client_key in the body, which wins if both are sent.")),
)


def _with_idempotency_key(request: Request) -> Any:
    """The request's body, with the Idempotency-Key header as its client_key
    unless the body names one."""
    body: Any = request.data.dict() if isinstance(request.data, QueryDict) else request.data
    header_key = request.headers.get("Idempotency-Key", "").strip()
    if isinstance(body, dict) and header_key and not body.get("client_key"):
        body = {**body, "client_key": header_key}
    return body


class ConversationViewSet(viewsets.GenericViewSet):
    """The inbox and everything done to a conversation. A conversation outside the
    user's teams (and not assigned to them) answers 404, never 403."""

    serializer_class = ConversationSerializer
    pagination_class = ConversationCursorPagination
    filter_backends: list[Any] = []
    http_method_names = ["get", "post", "put", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Conversation]:
        if getattr(self, "swagger_fake_view", False):
            return Conversation.objects.none()
        return selectors.conversations_visible_to(self.request.user)  # type: ignore[arg-type]

    def _conversation(self, pk: str | None) -> Conversation:
        return selectors.conversation_get_for(self.request.user, pk)  # type: ignore[arg-type]

    @extend_schema(parameters=[ConversationFilterSerializer], responses=ConversationSerializer)
    def list(self, request: Request) -> Response:
        filters = ConversationFilterSerializer.from_query(request.query_params)
        filters.is_valid(raise_exception=True)
        params = filters.validated_data
        rows = selectors.inbox_list(
            user=request.user,  # type: ignore[arg-type]
            state=sorted(params["state"]) if params.get("state") else None,
            team=params.get("team"),
            assignee=params.get("assignee"),
            tag=params.get("tag"),
            q=params.get("q", ""),
        )
        page = self.paginate_queryset(rows)
        return self.get_paginated_response(ConversationSerializer(page, many=True).data)

    @extend_schema(responses=ConversationDetailSerializer)
    def retrieve(self, request: Request, pk: str | None = None) -> Response:
        conversation = self._conversation(pk)
        return Response(ConversationDetailSerializer(conversation).data)

    @extend_schema(request=PrioritySerializer, responses=ConversationDetailSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        """Only the priority changes here; state, assignee and team have their own actions."""
        conversation = self._conversation(pk)
        data = PrioritySerializer(data=request.data)
        data.is_valid(raise_exception=True)
        if "priority" in data.validated_data:
            services.conversation_set_priority(
                conversation=conversation,
                priority=data.validated_data["priority"],
                actor=request.user,  # type: ignore[arg-type]
            )
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=AssignSerializer, responses=_STATE_CHANGE)
    @action(detail=True, methods=["post"])
    def assign(self, request: Request, pk: str | None = None) -> Response:
        """Supervisors assign anyone of the team; agents take an unassigned one for themselves."""
        conversation = self._conversation(pk)
        data = AssignSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_assign(
            conversation=conversation,
            agent=data.validated_data["agent"],
            actor=request.user,  # type: ignore[arg-type]
        )
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=None, responses={200: ConversationDetailSerializer, 204: None})
    @action(detail=False, methods=["post"], url_path="take-next")
    def take_next(self, request: Request) -> Response:
        """The oldest queued conversation of your teams, now yours; 204 when queues are empty."""
        conversation = services.conversation_take_next(agent=request.user)  # type: ignore[arg-type]
        if conversation is None:
            return Response(status=status.HTTP_204_NO_CONTENT)
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=TransferSerializer, responses=_STATE_CHANGE)
    @action(detail=True, methods=["post"])
    def transfer(self, request: Request, pk: str | None = None) -> Response:
        """To another team's queue or straight to an agent, with an optional internal note."""
        conversation = self._conversation(pk)
        data = TransferSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_transfer(
            conversation=conversation,
            actor=request.user,  # type: ignore[arg-type]
            **data.validated_data,
        )
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=None, responses=_STATE_CHANGE)
    @action(detail=True, methods=["post"])
    def resolve(self, request: Request, pk: str | None = None) -> Response:
        conversation = self._conversation(pk)
        services.conversation_resolve(conversation=conversation, actor=request.user)  # type: ignore[arg-type]
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=None, responses=_STATE_CHANGE)
    @action(detail=True, methods=["post"])
    def reopen(self, request: Request, pk: str | None = None) -> Response:
        conversation = self._conversation(pk)
        services.conversation_reopen(conversation=conversation, actor=request.user)  # type: ignore[arg-type]
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=None, responses=_STATE_CHANGE)
    @action(detail=True, methods=["post"])
    def pending(self, request: Request, pk: str | None = None) -> Response:
        """Waiting on the customer: out of the agent's active count until they answer."""
        conversation = self._conversation(pk)
        services.conversation_set_pending(conversation=conversation, actor=request.user)  # type: ignore[arg-type]
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=None, responses=ConversationDetailSerializer)
    @action(detail=True, methods=["post"])
    def read(self, request: Request, pk: str | None = None) -> Response:
        """The assignee has read the thread: unread back to zero."""
        conversation = self._conversation(pk)
        services.conversation_mark_read(conversation=conversation, actor=request.user)  # type: ignore[arg-type]
        return Response(_conversation_out(conversation.pk))

    @extend_schema(request=TagsSerializer, responses=ConversationDetailSerializer)
    @action(detail=True, methods=["put", "post"])
    def tags(self, request: Request, pk: str | None = None) -> Response:
        """Replace the conversation's tags; only supervisors create new tag names."""
        conversation = self._conversation(pk)
        data = TagsSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.conversation_set_tags(
            conversation=conversation,
            names=data.validated_data["tags"],
            actor=request.user,  # type: ignore[arg-type]
        )
        return Response(_conversation_out(conversation.pk))

    @extend_schema(methods=["GET"], request=None, responses=NoteSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=NoteCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: NoteSerializer, 200: NoteSerializer},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=None)
    def notes(self, request: Request, pk: str | None = None) -> Response:
        """Internal notes: staff only, never sent to the customer. POST: 201 with
        the new note, or 200 with the first one when its client_key was seen before."""
        conversation = self._conversation(pk)
        if request.method == "GET":
            notes = conversation.notes.select_related("author").order_by("created_at", "id")
            return Response(NoteSerializer(notes, many=True).data)
        data = NoteCreateSerializer(data=_with_idempotency_key(request))
        data.is_valid(raise_exception=True)
        added = services.note_add(
            conversation=conversation,
            author=request.user,  # type: ignore[arg-type]
            text=data.validated_data["text"],
            client_key=data.validated_data.get("client_key"),
        )
        return Response(
            NoteSerializer(added.note).data,
            status=status.HTTP_201_CREATED if added.created else status.HTTP_200_OK,
        )

    @extend_schema(methods=["GET"], request=None, responses=MessageSerializer(many=True))
    @extend_schema(
        methods=["POST"],
        request=MessageCreateSerializer,
        parameters=[IDEMPOTENCY_KEY],
        responses={201: MessageSerializer, 200: MessageSerializer, 409: CONFLICT},
    )
    @action(detail=True, methods=["get", "post"], pagination_class=MessageCursorPagination)
    def messages(self, request: Request, pk: str | None = None) -> Response:
        """The thread, oldest first. POST writes to the customer: 201 with the new
        message, or 200 with the first one when its client_key was seen before;
        409 outside WhatsApp's 24-hour window."""
        conversation = self._conversation(pk)
        if request.method == "GET":
            page = self.paginate_queryset(selectors.messages_of(conversation))
            return self.get_paginated_response(MessageSerializer(page, many=True).data)
        data = MessageCreateSerializer(
            data=_with_idempotency_key(request),
            context={"conversation": conversation, "user": request.user},
        )
        data.is_valid(raise_exception=True)
        received = services.message_send(
            conversation=conversation,
            text=data.validated_data["text"],
            kind=data.validated_data["kind"],
            payload=data.validated_data.get("payload"),
            actor=request.user,  # type: ignore[arg-type]
            client_key=data.validated_data.get("client_key"),
            reply_to=data.validated_data.get("reply_to"),
        )
        message = Message.objects.select_related("sender_user").get(pk=received.message.pk)
        return Response(
            MessageSerializer(message).data,
            status=status.HTTP_201_CREATED if received.created else status.HTTP_200_OK,
        )


_CONTACT_FILTERS = [
    OpenApiParameter("q", OpenApiTypes.STR, description=str(_("Name, phone, username or code."))),
    OpenApiParameter(
        "document", OpenApiTypes.STR, description=str(_("Exact CPF/CNPJ, any punctuation."))
    ),
]


class ContactViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Customers of the conversations you may see (admins: every customer).
    The CPF/CNPJ is written here but only ever read back masked."""

    serializer_class = ContactSerializer
    filter_backends: list[Any] = []
    http_method_names = ["get", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[Contact]:
        if getattr(self, "swagger_fake_view", False):
            return Contact.objects.none()
        contacts = selectors.contacts_visible_to(self.request.user)  # type: ignore[arg-type]
        document = self.request.query_params.get("document", "").strip()
        if document:
            found = services.contact_find_by_document(document)
            contacts = contacts.filter(pk=found.pk) if found else contacts.none()
        contacts = selectors.contact_search(contacts, _search_term(self.request))
        # By the name staff see: many contacts only have their WhatsApp profile name.
        shown = Lower(Coalesce(NullIf("name", Value("")), "profile_name"))
        return contacts.prefetch_related("tags").order_by(shown, "id")

    def get_object(self) -> Contact:
        return selectors.contact_get_for(self.request.user, self.kwargs["pk"])  # type: ignore[arg-type]

    @extend_schema(parameters=_CONTACT_FILTERS)
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=ContactUpdateSerializer, responses=ContactSerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        contact = self.get_object()
        data = ContactUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.contact_update(
            contact=contact,
            actor=request.user,  # type: ignore[arg-type]
            **data.validated_data,
        )
        return Response(ContactSerializer(self.get_object()).data)


class CannedReplyViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    viewsets.GenericViewSet,
):
    """Ready answers: shared ones and your teams'. Admins manage all of them,
    supervisors their teams' ones."""

    serializer_class = CannedReplySerializer
    filter_backends: list[Any] = []
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[CannedReply]:
        if getattr(self, "swagger_fake_view", False):
            return CannedReply.objects.none()
        replies = selectors.canned_replies_for(self.request.user)  # type: ignore[arg-type]
        q = _search_term(self.request).strip()
        if q:
            replies = replies.filter(Q(shortcut__icontains=q.lstrip("/")) | Q(title__icontains=q))
        return replies.order_by("shortcut", "id")

    def get_object(self) -> CannedReply:
        reply = self.get_queryset().filter(pk=_int_or_none(self.kwargs["pk"])).first()
        if reply is None:
            raise Http404(_("No such canned reply."))
        return reply

    def get_permissions(self) -> list[Any]:
        if self.action in ("create", "partial_update", "destroy"):
            return [IsSupervisor()]
        return super().get_permissions()

    @extend_schema(
        parameters=[
            OpenApiParameter("q", OpenApiTypes.STR, description=str(_("Shortcut or title.")))
        ]
    )
    def list(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().list(request, *args, **kwargs)

    @extend_schema(request=CannedReplyWriteSerializer, responses={201: CannedReplySerializer})
    def create(self, request: Request) -> Response:
        data = CannedReplyWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        reply = services.canned_reply_create(actor=request.user, **data.validated_data)  # type: ignore[arg-type]
        return Response(CannedReplySerializer(reply).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=CannedReplyWriteSerializer, responses=CannedReplySerializer)
    def partial_update(self, request: Request, pk: str | None = None) -> Response:
        reply = self.get_object()
        data = CannedReplyWriteSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.canned_reply_update(reply=reply, actor=request.user, **data.validated_data)  # type: ignore[arg-type]
        return Response(CannedReplySerializer(self.get_queryset().get(pk=reply.pk)).data)

    @extend_schema(responses={204: None})
    def destroy(self, request: Request, pk: str | None = None) -> Response:
        reply = self.get_object()
        services.canned_reply_delete(reply=reply, actor=request.user)  # type: ignore[arg-type]
        return Response(status=status.HTTP_204_NO_CONTENT)

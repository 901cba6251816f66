"""The customer simulator at /simulator/: try the whole product with no
WhatsApp account.

An admin picks (or creates) a customer and writes as them. Each message is
built the way Meta builds it, signed with the number's app secret and POSTed
over real HTTP to our own webhook, so it takes the very path a real customer's
message takes; the webhook's answer decides whether it worked. The phone on
the right shows our answers (bot, agents) and, like a real phone, sends the
``delivered`` and ``read`` statuses back for the sandbox's outbound messages.

Available when DEBUG is on or an active number uses the sandbox transport
(no access token), and only to staff (admins).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import wraps
from typing import Any

import httpx
import phonenumbers
import structlog
from django import forms
from django.conf import settings
from django.contrib import messages as flash
from django.contrib.auth.views import redirect_to_login
from django.core.cache import cache
from django.db.models import Exists, OuterRef, Q, Subquery
from django.db.models.functions import Coalesce
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from conversations.models import Contact, Conversation, Message
from conversations.services import contact_resolve
from ispsupport.identity import canonical_phone
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import is_sandbox_id
from whatsapp.services import account_ensure_sandbox_secret

logger = structlog.get_logger(__name__)

WEBHOOK_TIMEOUT = 5.0
SIGNATURE_HEADER = "X-Hub-Signature-256"
USER_AGENT = "ISP-Support-Simulator/1.0"
MAX_TEXT = 4096  # WhatsApp's limit for a text message body
MAX_NAME = 60
THREAD_LIMIT = 100
CUSTOMER_LIMIT = 50
# A claimed receipt is remembered this long: long enough for any poll of the
# same message to see the status it caused.
RECEIPT_CLAIM_SECONDS = 3600

Status = Message.Status


class SimulatorError(Exception):
    """Something the person at the simulator must be told (never a 500)."""

    def __init__(self, message: str, *, code: str, status: int = 502) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.status = status


# --- Availability ---------------------------------------------------------------------


def simulator_available() -> bool:
    """DEBUG, or at least one active number on the sandbox transport."""
    if settings.DEBUG:
        return True
    return WhatsAppAccount.objects.filter(is_active=True, access_token_encrypted="").exists()


def _simulator_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """404 when the simulator is off (for everyone: it does not exist then),
    the login page for anonymous visitors, a friendly 403 for non-admins."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not simulator_available():
            raise Http404(_("The customer simulator is not available."))
        user = request.user
        if not user.is_authenticated:
            return redirect_to_login(request.get_full_path())
        if not (user.is_active and user.is_staff):
            return render(request, "simulator/forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return never_cache(guarded)


# --- Webhook payloads, shaped like Meta's ---------------------------------------------


def new_wamid() -> str:
    return f"wamid.SIM{uuid.uuid4().hex.upper()}"


def _timestamp() -> str:
    return str(int(time.time()))


def _digits(value: str) -> str:
    return "".join(ch for ch in value if ch.isdigit())


def customer_identity(contact: Contact) -> tuple[str | None, str | None]:
    """(wa_id, BSUID) the simulated phone writes with."""
    wa_id = contact.wa_id or (_digits(contact.phone) if contact.phone else None)
    return wa_id or None, contact.bsuid or None


def _simulatable(contact: Contact) -> bool:
    return any(customer_identity(contact))


def _profile_name(contact: Contact) -> str:
    return contact.profile_name or contact.name or ""


def _envelope(account: WhatsAppAccount, value: dict[str, Any]) -> dict[str, Any]:
    return {
        "object": "whatsapp_business_account",
        "entry": [
            {
                "id": account.business_account_id or "0",
                "changes": [
                    {
                        "value": {
                            "messaging_product": "whatsapp",
                            "metadata": {
                                "display_phone_number": _digits(account.display_phone)
                                or account.phone_number_id,
                                "phone_number_id": account.phone_number_id,
                            },
                            **value,
                        },
                        "field": "messages",
                    }
                ],
            }
        ],
    }


def _customer_message(contact: Contact, type_: str, content: dict[str, Any]) -> dict[str, Any]:
    wa_id, bsuid = customer_identity(contact)
    item: dict[str, Any] = {}
    if wa_id:
        item["from"] = wa_id
    if bsuid:
        item["from_user_id"] = bsuid
    item.update({"id": new_wamid(), "timestamp": _timestamp(), "type": type_})
    item.update(content)
    return item


def customer_envelope(
    *, account: WhatsAppAccount, contact: Contact, message: dict[str, Any]
) -> dict[str, Any]:
    """A ``messages`` change with one message from ``contact``."""
    wa_id, bsuid = customer_identity(contact)
    sender: dict[str, Any] = {"profile": {"name": _profile_name(contact)}}
    if wa_id:
        sender["wa_id"] = wa_id
    if bsuid:
        sender["user_id"] = bsuid
    return _envelope(account, {"contacts": [sender], "messages": [message]})


def text_message(*, contact: Contact, text: str) -> dict[str, Any]:
    return _customer_message(contact, "text", {"text": {"body": text}})


def reply_message(
    *,
    account: WhatsAppAccount,
    contact: Contact,
    tapped: Message,
    interactive: Interactive,
    option: dict[str, str],
) -> dict[str, Any]:
    """The customer tapped ``option`` (a reply button or a list row) of ``tapped``."""
    if interactive.type == "list":
        reply: dict[str, str] = {"id": option["id"], "title": option["title"]}
        if option.get("description"):
            reply["description"] = option["description"]
        body = {"type": "list_reply", "list_reply": reply}
    else:
        body = {
            "type": "button_reply",
            "button_reply": {"id": option["id"], "title": option["title"]},
        }
    context = {
        "from": _digits(account.display_phone) or account.phone_number_id,
        "id": tapped.external_id,
    }
    return _customer_message(contact, "interactive", {"context": context, "interactive": body})


def status_envelope(
    *, account: WhatsAppAccount, contact: Contact, receipts: list[tuple[Message, str]]
) -> dict[str, Any]:
    """A ``messages`` change carrying statuses of our outbound messages."""
    wa_id, bsuid = customer_identity(contact)
    statuses = []
    for message, status in receipts:
        item: dict[str, Any] = {"id": message.external_id, "status": status}
        item["timestamp"] = _timestamp()
        if wa_id:
            item["recipient_id"] = wa_id
        if bsuid:
            item["recipient_user_id"] = bsuid
        statuses.append(item)
    return _envelope(account, {"statuses": statuses})


def dumps(payload: dict[str, Any]) -> bytes:
    """Serialised as Meta does: compact, non-ASCII escaped as \\uXXXX."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def webhook_url(request: HttpRequest) -> str:
    """SIMULATOR_WEBHOOK_URL when set (a proxy in front that the server cannot
    reach itself through), else our own webhook on the host this page came from."""
    configured = getattr(settings, "SIMULATOR_WEBHOOK_URL", "") or ""
    return configured or request.build_absolute_uri(reverse("whatsapp-webhook"))


def _signing_secret(account: WhatsAppAccount) -> str:
    secret = account_ensure_sandbox_secret(account=account)
    if not secret:
        raise SimulatorError(
            _(
                "This number has no app secret, so its webhooks cannot be signed. Set one in "
                "Admin → WhatsApp numbers (or WHATSAPP_APP_SECRET)."
            ),
            code="no_secret",
            status=409,
        )
    return secret


def webhook_post(*, url: str, account: WhatsAppAccount, payload: dict[str, Any]) -> dict[str, Any]:
    """POST ``payload`` signed like Meta signs it; the webhook's JSON answer.
    SimulatorError with a readable reason when the webhook cannot be reached or
    does not accept it."""
    body = dumps(payload)
    headers = {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(body, _signing_secret(account)),
        "User-Agent": USER_AGENT,
    }
    try:
        # trust_env=False: this is a call to ourselves, never through a proxy.
        with httpx.Client(timeout=WEBHOOK_TIMEOUT, trust_env=False) as client:
            response = client.post(url, content=body, headers=headers)
    except httpx.TimeoutException:
        logger.warning("simulator_webhook_timeout", url=url)
        raise SimulatorError(
            _("The webhook at %(url)s did not answer within %(seconds)s seconds.")
            % {"url": url, "seconds": f"{WEBHOOK_TIMEOUT:g}"},
            code="webhook_timeout",
            status=504,
        ) from None
    except httpx.HTTPError as exc:
        logger.warning("simulator_webhook_unreachable", url=url, error=type(exc).__name__)
        raise SimulatorError(
            _(
                "Could not reach the webhook at %(url)s (%(reason)s). If the server sits behind "
                "a proxy it cannot reach itself through, set SIMULATOR_WEBHOOK_URL."
            )
            % {"url": url, "reason": str(exc) or type(exc).__name__},
            code="webhook_unreachable",
        ) from None
    try:
        answer = response.json()
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        answer = {}
    if response.status_code == 403:
        raise SimulatorError(
            _("The webhook refused the signature (403): the app secret does not match."),
            code="webhook_refused",
        )
    if response.status_code != 200:
        detail = answer.get("detail") or response.reason_phrase
        raise SimulatorError(
            _("The webhook answered %(status)s: %(detail)s")
            % {"status": response.status_code, "detail": detail},
            code="webhook_error",
        )
    return answer


def _deliver(request: HttpRequest, account: WhatsAppAccount, payload: dict[str, Any]) -> str:
    """Post one customer message; its wamid once the webhook stored it."""
    answer = webhook_post(url=webhook_url(request), account=account, payload=payload)
    if not (answer.get("messages") or answer.get("duplicates")):
        raise SimulatorError(
            _(
                "The webhook accepted the delivery but stored nothing: is this number active "
                "and known to the server?"
            ),
            code="webhook_stored_nothing",
        )
    message_id = payload["entry"][0]["changes"][0]["value"]["messages"][0]["id"]
    logger.info("simulator_message_posted", phone_number_id=account.phone_number_id)
    return str(message_id)


# --- Interactive messages as the phone shows them -------------------------------------


def _str(value: Any) -> str:
    return value if isinstance(value, str) else ("" if value is None else str(value))


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


@dataclass
class Interactive:
    """Buttons or a list, whichever form the sender stored (Graph's object with
    an "action", or the short {"buttons"} / {"button", "sections"} form)."""

    type: str
    body: str = ""
    header: str = ""
    footer: str = ""
    buttons: list[dict[str, str]] = field(default_factory=list)
    button: str = ""
    sections: list[dict[str, Any]] = field(default_factory=list)

    def option(self, option_id: str) -> dict[str, str] | None:
        for button in self.buttons:
            if button["id"] == option_id:
                return button
        for section in self.sections:
            for row in section["rows"]:
                if row["id"] == option_id:
                    return row
        return None


def _option(raw: Any) -> dict[str, str] | None:
    if isinstance(raw, list | tuple) and len(raw) >= 2:
        raw = {"id": raw[0], "title": raw[1]}
    raw = _dict(raw)
    option_id = _str(raw.get("id"))
    if not option_id:
        return None
    return {
        "id": option_id,
        "title": _str(raw.get("title")) or option_id,
        "description": _str(raw.get("description")),
    }


def _sections(raw: Any) -> list[dict[str, Any]]:
    sections = []
    for section in _list(raw):
        section = _dict(section)
        rows = [row for row in map(_option, _list(section.get("rows"))) if row]
        if rows:
            sections.append({"title": _str(section.get("title")), "rows": rows})
    return sections


def interactive_of(message: Message) -> Interactive | None:
    if message.kind != Message.Kind.INTERACTIVE or message.direction != Message.Direction.OUT:
        return None
    payload = _dict(message.payload)
    if "action" in payload:
        action = _dict(payload.get("action"))
        return Interactive(
            type=_str(payload.get("type")),
            body=_str(_dict(payload.get("body")).get("text")) or message.text,
            header=_str(_dict(payload.get("header")).get("text")),
            footer=_str(_dict(payload.get("footer")).get("text")),
            buttons=[
                b
                for b in (_option(_dict(i).get("reply")) for i in _list(action.get("buttons")))
                if b
            ],
            button=_str(action.get("button")) or _("Options"),
            sections=_sections(action.get("sections")),
        )
    sections = _sections(payload.get("sections"))
    return Interactive(
        type="list" if sections else "button",
        body=_str(payload.get("body")) or message.text,
        header=_str(payload.get("header")),
        footer=_str(payload.get("footer")),
        buttons=[b for b in map(_option, _list(payload.get("buttons"))) if b],
        button=_str(payload.get("button")) or _("Options"),
        sections=sections,
    )


# --- Delivery receipts ----------------------------------------------------------------


def _claim(key: str) -> bool:
    try:
        return bool(cache.add(key, 1, RECEIPT_CLAIM_SECONDS))
    except Exception:
        # No cache: the message's own status still stops most repeats.
        logger.warning("simulator_receipt_claim_unavailable")
        return True


def _unclaim(keys: list[str]) -> None:
    try:
        cache.delete_many(keys)
    except Exception:
        logger.warning("simulator_receipt_unclaim_unavailable")


def receipts_post(
    *,
    request: HttpRequest,
    account: WhatsAppAccount,
    contact: Contact,
    messages: list[Message],
    read: bool,
) -> tuple[int, str]:
    """The phone got our sandbox messages: ``delivered`` for those ``sent``,
    and, when the chat is on screen (``read``), ``read`` for those delivered.
    One step per call, so the ticks move like on a phone; each status of each
    message is claimed once, so two open simulators never post it twice.
    Returns (statuses posted, error text or '')."""
    due: list[tuple[Message, str]] = []
    keys: list[str] = []
    for message in messages:
        if message.direction != Message.Direction.OUT or not is_sandbox_id(message.external_id):
            continue
        if message.status == Status.SENT:
            step = Status.DELIVERED
        elif message.status == Status.DELIVERED and read:
            step = Status.READ
        else:
            continue
        key = f"whatsapp:simulator:receipt:{message.pk}:{step}"
        if _claim(key):
            due.append((message, str(step)))
            keys.append(key)
    if not due:
        return 0, ""
    payload = status_envelope(account=account, contact=contact, receipts=due)
    try:
        webhook_post(url=webhook_url(request), account=account, payload=payload)
    except SimulatorError as exc:
        _unclaim(keys)  # try again at the next poll
        return 0, exc.message
    return len(due), ""


# --- Reads ----------------------------------------------------------------------------


def _numbers() -> list[WhatsAppAccount]:
    return list(
        WhatsAppAccount.objects.filter(is_active=True)
        .select_related("inbox")
        .order_by("name", "pk")
    )


def _pick_number(numbers: list[WhatsAppAccount], raw: str | None) -> WhatsAppAccount | None:
    if raw and raw.isdigit():
        chosen = next((n for n in numbers if n.pk == int(raw)), None)
        if chosen is not None:
            return chosen
    return next((n for n in numbers if n.is_sandbox), numbers[0] if numbers else None)


def phone_display(contact: Contact) -> str:
    raw = contact.phone or (f"+{contact.wa_id}" if contact.wa_id else "")
    if not raw:
        return f"@{contact.username}" if contact.username else (contact.bsuid or "")
    try:
        number = phonenumbers.parse(raw)
    except phonenumbers.NumberParseException:
        return raw
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def _customers(account: WhatsAppAccount) -> list[Contact]:
    """Who has talked to this number, plus customers who never talked to any
    (just created here), most recent first. One query."""
    latest = Conversation.objects.filter(contact=OuterRef("pk"), inbox=account.inbox).order_by(
        "-last_message_at", "-pk"
    )
    rows = (
        Contact.objects.annotate(
            last_at=Subquery(latest.values("last_message_at")[:1]),
            last_state=Subquery(latest.values("state")[:1]),
            talked=Exists(Conversation.objects.filter(contact=OuterRef("pk"))),
        )
        .filter(Q(last_at__isnull=False) | Q(talked=False))
        .filter(Q(wa_id__isnull=False) | Q(phone__isnull=False) | Q(bsuid__isnull=False))
        .annotate(sort_at=Coalesce("last_at", "created_at"))
        .order_by("-sort_at", "-pk")[:CUSTOMER_LIMIT]
    )
    customers = list(rows)
    for contact in customers:
        contact.sim_phone = phone_display(contact)  # type: ignore[attr-defined]
        contact.sim_state_label = (  # type: ignore[attr-defined]
            Conversation.State(contact.last_state).label if contact.last_state else ""
        )
    return customers


def _customer(pk: int | str | None) -> Contact | None:
    if pk is None or not str(pk).isdigit():
        return None
    contact = Contact.objects.filter(pk=int(pk)).first()
    if contact is None or not _simulatable(contact):
        return None
    contact.sim_phone = phone_display(contact)  # type: ignore[attr-defined]
    return contact


def _thread_messages(account: WhatsAppAccount, contact: Contact) -> list[Message]:
    rows = (
        Message.objects.filter(conversation__contact=contact, conversation__inbox=account.inbox)
        .select_related("conversation", "sender_user", "reply_to")
        .order_by("-created_at", "-id")[:THREAD_LIMIT]
    )
    return list(reversed(rows))


STATUS_LABELS = {
    Status.PENDING: gettext_lazy("On its way"),
    Status.SENT: gettext_lazy("Sent"),
    Status.DELIVERED: gettext_lazy("Delivered"),
    Status.READ: gettext_lazy("Read"),
    Status.FAILED: gettext_lazy("Not delivered"),
}


def _sender_label(message: Message) -> str:
    if message.direction == Message.Direction.IN:
        return ""
    if message.sender_type == Message.SenderType.AGENT:
        name = message.sender_user.display_name if message.sender_user else ""
        return _("Agent %(name)s") % {"name": name} if name else _("Agent")
    if message.sender_type == Message.SenderType.SYSTEM:
        return _("Automatic message")
    return _("Bot")


def _body(message: Message, interactive: Interactive | None) -> str:
    if interactive is not None:
        return interactive.body
    if message.kind == Message.Kind.TEMPLATE and not message.text:
        return _("Template “%(name)s”") % {"name": _str(_dict(message.payload).get("name"))}
    return message.text


def _quote(quoted: Message | None) -> str:
    if quoted is None:
        return ""
    interactive = interactive_of(quoted)
    text = quoted.text or (interactive.body if interactive else "")
    return (text or quoted.get_kind_display())[:80]


def _thread_items(messages: list[Message]) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    previous: int | None = None
    for message in messages:
        interactive = interactive_of(message)
        out = message.direction == Message.Direction.OUT
        plain = message.kind in (Message.Kind.TEXT, Message.Kind.INTERACTIVE, Message.Kind.TEMPLATE)
        items.append(
            {
                "message": message,
                "out": out,
                "separator": message.conversation if message.conversation_id != previous else None,
                "sender": _sender_label(message),
                "body": _body(message, interactive),
                "kind": "" if plain else message.get_kind_display(),
                "interactive": interactive,
                # Only what reached the phone can be tapped: a reply names its wamid.
                "tappable": out and bool(message.external_id) and message.status != Status.FAILED,
                "status_label": STATUS_LABELS.get(message.status, "") if out else "",
                "quote": _quote(message.reply_to),
            }
        )
        previous = message.conversation_id
    return items


def _thread_context(
    account: WhatsAppAccount, contact: Contact, messages: list[Message]
) -> dict[str, Any]:
    conversation = (
        Conversation.objects.filter(contact=contact, inbox=account.inbox)
        .select_related("team", "assignee")
        .order_by("-created_at", "-pk")
        .first()
    )
    return {
        "number": account,
        "customer": contact,
        "conversation": conversation,
        "items": _thread_items(messages),
    }


# --- Forms ----------------------------------------------------------------------------


class CustomerForm(forms.Form):
    name = forms.CharField(
        label=gettext_lazy("Name"),
        max_length=MAX_NAME,
        error_messages={"required": gettext_lazy("Give the customer a name.")},
    )
    phone = forms.CharField(
        label=gettext_lazy("WhatsApp phone"),
        max_length=32,
        error_messages={"required": gettext_lazy("Give the customer a phone number.")},
    )

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if not name:
            raise forms.ValidationError(_("Give the customer a name."))
        return name

    def clean_phone(self) -> str:
        raw = self.cleaned_data["phone"]
        phone = canonical_phone(raw, typed=True)
        if phone is None:
            raise forms.ValidationError(
                _(
                    "“%(phone)s” is not a phone number. Write it with the area code, "
                    "e.g. +55 11 98765-4321 or (11) 98765-4321."
                ),
                params={"phone": raw},
                code="invalid_phone",
            )
        return phone


# --- Views ----------------------------------------------------------------------------


def _page_url(number: WhatsAppAccount | None, customer: Contact | None = None) -> str:
    params = {}
    if number is not None:
        params["number"] = number.pk
    if customer is not None:
        params["customer"] = customer.pk
    url = reverse("simulator")
    return f"{url}?{urlencode(params)}" if params else url


def _render_page(
    request: HttpRequest,
    *,
    number: WhatsAppAccount | None,
    numbers: list[WhatsAppAccount],
    customer: Contact | None,
    form: CustomerForm | None = None,
    status: int = 200,
) -> HttpResponse:
    context: dict[str, Any] = {
        "numbers": numbers,
        "number": number,
        "customers": _customers(number) if number else [],
        "customer": customer,
        "form": form or CustomerForm(),
        "max_text": MAX_TEXT,
        "max_name": MAX_NAME,
    }
    if number is not None and customer is not None:
        context.update(_thread_context(number, customer, _thread_messages(number, customer)))
    return render(request, "simulator/page.html", context, status=status)


@_simulator_view
@require_GET
def page(request: HttpRequest) -> HttpResponse:
    numbers = _numbers()
    number = _pick_number(numbers, request.GET.get("number"))
    customer = _customer(request.GET.get("customer")) if number else None
    return _render_page(request, number=number, numbers=numbers, customer=customer)


@_simulator_view
@require_POST
def customer_create(request: HttpRequest, number: int) -> HttpResponse:
    account = get_object_or_404(
        WhatsAppAccount.objects.select_related("inbox"), pk=number, is_active=True
    )
    form = CustomerForm(request.POST)
    if not form.is_valid():
        return _render_page(request, number=account, numbers=_numbers(), customer=None, form=form)
    name, phone = form.cleaned_data["name"], form.cleaned_data["phone"]
    existing = Contact.objects.filter(phone=phone).first()
    if existing is not None:
        flash.info(
            request,
            _("A customer with the phone %(phone)s already exists: it is selected.")
            % {"phone": phone_display(existing)},
        )
        return redirect(_page_url(account, existing), permanent=False)
    # The service the webhook itself uses, so the customer is exactly who the
    # first message will find.
    contact = contact_resolve(wa_id=phone.lstrip("+"), name=name)
    logger.info("simulator_customer_created", contact_id=contact.pk)
    return redirect(_page_url(account, contact), permanent=False)


def _wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _answer(
    request: HttpRequest,
    account: WhatsAppAccount,
    contact: Contact,
    *,
    message_id: str = "",
    error: SimulatorError | None = None,
) -> HttpResponse:
    """JSON for the page's script; without it, back to the page with a notice."""
    if _wants_json(request):
        if error is not None:
            return JsonResponse(
                {"ok": False, "error": error.message, "code": error.code}, status=error.status
            )
        return JsonResponse({"ok": True, "message_id": message_id})
    if error is not None:
        flash.error(request, error.message)
    return redirect(_page_url(account, contact), permanent=False)


def _target(number: int, customer: int) -> tuple[WhatsAppAccount, Contact]:
    account = get_object_or_404(
        WhatsAppAccount.objects.select_related("inbox"), pk=number, is_active=True
    )
    contact = _customer(customer)
    if contact is None:
        raise Http404(_("No such customer."))
    return account, contact


@_simulator_view
@require_POST
def send(request: HttpRequest, number: int, customer: int) -> HttpResponse:
    """The customer writes ``text``."""
    account, contact = _target(number, customer)
    text = request.POST.get("text", "").strip()
    error: SimulatorError | None = None
    message_id = ""
    if not text:
        error = SimulatorError(_("Write a message first."), code="empty", status=400)
    elif len(text) > MAX_TEXT:
        error = SimulatorError(
            _("A WhatsApp message has at most %(max)s characters.") % {"max": MAX_TEXT},
            code="too_long",
            status=400,
        )
    else:
        payload = customer_envelope(
            account=account, contact=contact, message=text_message(contact=contact, text=text)
        )
        try:
            message_id = _deliver(request, account, payload)
        except SimulatorError as exc:
            error = exc
    return _answer(request, account, contact, message_id=message_id, error=error)


@_simulator_view
@require_POST
def tap(request: HttpRequest, number: int, customer: int) -> HttpResponse:
    """The customer taps reply button or list row ``option`` of our message ``message``."""
    account, contact = _target(number, customer)
    raw_id = request.POST.get("message", "")
    tapped = (
        Message.objects.filter(
            pk=int(raw_id),
            direction=Message.Direction.OUT,
            kind=Message.Kind.INTERACTIVE,
            conversation__contact=contact,
            conversation__inbox=account.inbox,
        ).first()
        if raw_id.isdigit()
        else None
    )
    interactive = interactive_of(tapped) if tapped is not None else None
    option = interactive.option(request.POST.get("option", "")) if interactive else None
    error: SimulatorError | None = None
    message_id = ""
    if tapped is None or interactive is None or option is None:
        error = SimulatorError(
            _("This button or list item does not exist in the conversation."),
            code="unknown_option",
            status=400,
        )
    elif not tapped.external_id or tapped.status == Status.FAILED:
        error = SimulatorError(
            _("This message has not reached the phone yet: it cannot be answered."),
            code="not_delivered",
            status=409,
        )
    else:
        message = reply_message(
            account=account, contact=contact, tapped=tapped, interactive=interactive, option=option
        )
        payload = customer_envelope(account=account, contact=contact, message=message)
        try:
            message_id = _deliver(request, account, payload)
        except SimulatorError as exc:
            error = exc
    return _answer(request, account, contact, message_id=message_id, error=error)


@_simulator_view
@require_GET
def thread(request: HttpRequest, number: int, customer: int) -> HttpResponse:
    """The phone's screen: the conversation's protocol and state, then every
    message. Polled by the page; posts the delivery receipts first (``read=1``
    when the chat is on screen, so ``read`` follows ``delivered``)."""
    account, contact = _target(number, customer)
    messages = _thread_messages(account, contact)
    posted, receipt_error = receipts_post(
        request=request,
        account=account,
        contact=contact,
        messages=messages,
        read=request.GET.get("read") == "1",
    )
    if posted:
        messages = _thread_messages(account, contact)
    context = _thread_context(account, contact, messages)
    context["receipt_error"] = receipt_error
    return render(request, "simulator/_thread.html", context)

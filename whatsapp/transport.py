"""All HTTP to Meta's WhatsApp Cloud API (the Graph API) lives here.

Every call goes through the ``whatsapp`` circuit breaker and is counted in
``whatsapp_api_calls_total{endpoint,outcome}``. A bad answer becomes a
:class:`TransportError` that says whether a retry could help; callers never
build provider URLs or parse provider errors.

``transport_for(account)`` gives the Graph transport for a live number and the
sandbox transport (nothing leaves the machine) for a number without an access
token.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any, TypeVar

import httpx
import pybreaker
import structlog
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from ispsupport.breakers import get_breaker
from whatsapp import metrics

logger = structlog.get_logger(__name__)

T = TypeVar("T")

BREAKER = "whatsapp"
MAX_BUTTONS = 3
MAX_LIST_ROWS = 10
MEDIA_KINDS = ("image", "audio", "video", "document", "sticker")
# Caption is accepted by Meta for these only; filename for documents only.
_CAPTION_KINDS = {"image", "video", "document"}

# --- Errors ---------------------------------------------------------------------

# Meta error codes a later attempt may get past. 131000 ("something went wrong")
# and 133004 ("server temporarily unavailable") are Meta's own "try again" codes.
RETRYABLE_CODES = {1, 2, 4, 80007, 130429, 131000, 131056, 131057, 133004}
RATE_LIMIT_CODES = {4, 80007, 130429, 131056}
# Failures of Meta itself (not of this request): they count against the breaker.
_SERVICE_CODES = {1, 2, 131000, 133004}

# What scope an error is about: "service" (Meta or the network), "account"
# (this number: its token, its limits), "recipient" (this customer), "request"
# (this message's content).
_SCOPES: dict[int, str] = {
    1: "service",
    2: "service",
    131000: "service",
    133004: "service",
    4: "account",
    80007: "account",
    130429: "account",
    131048: "account",
    131049: "recipient",
    190: "account",
    368: "account",
    131056: "recipient",
    131057: "account",
    131047: "recipient",
    131026: "recipient",
    131062: "recipient",
}

# The short text agents see on a failed message, by Meta error code.
AGENT_TITLES: dict[int | str, Any] = {
    1: _("WhatsApp had an internal problem; the message could not be sent."),
    2: _("WhatsApp is temporarily unavailable; the message could not be sent."),
    4: _("Too many messages from this number right now; the message could not be sent."),
    100: _("WhatsApp refused the message content (invalid parameter)."),
    190: _("The WhatsApp access token expired or was revoked: an admin must renew it."),
    368: _("Meta blocked this number for a policy violation."),
    80007: _("This number reached WhatsApp's rate limit; the message could not be sent."),
    130429: _("Too many messages from this number right now; the message could not be sent."),
    131000: _("WhatsApp had an unknown problem sending the message."),
    131009: _("WhatsApp refused the message content (invalid parameter)."),
    131026: _("The message could not be delivered to this customer's WhatsApp."),
    131047: _("More than 24 hours since the customer's last message: send a template."),
    131048: _("WhatsApp limited this number for spam; the message was not sent."),
    131049: _("Meta did not deliver this message to keep engagement healthy; try later."),
    131051: _("WhatsApp does not support this kind of message."),
    131056: _("Too many messages to this customer in a short time; the message was not sent."),
    131057: _("The WhatsApp account is in maintenance; the message could not be sent."),
    131062: _("This message cannot be sent to a customer known only by WhatsApp user id."),
    133004: _("WhatsApp is temporarily unavailable; the message could not be sent."),
    "timeout": _("WhatsApp did not answer in time; the message could not be sent."),
    "connection": _("Could not reach WhatsApp; the message could not be sent."),
    "breaker_open": _("WhatsApp is failing; sending is paused for a moment."),
    "http": _("WhatsApp answered with an error; the message could not be sent."),
    "bad_response": _("WhatsApp answered something unexpected; the message may not be sent."),
    "invalid_payload": _("This message cannot be sent on WhatsApp as written."),
    "media_too_large": _("The media file is larger than the allowed size."),
    "sandbox": _("Not available in sandbox mode (no access token)."),
}


class TransportError(Exception):
    """A call to the provider failed.

    ``code`` is Meta's error code (an int) or one of ours ("timeout",
    "connection", "breaker_open", "http", "bad_response", "invalid_payload",
    "media_too_large", "sandbox"); ``retryable`` says whether the same call
    could succeed later; ``scope`` says what the error is about.
    """

    def __init__(
        self,
        *,
        code: int | str,
        title: str,
        detail: str = "",
        http_status: int | None = None,
        retryable: bool,
        scope: str = "request",
    ) -> None:
        self.code = code
        self.title = title
        self.detail = detail
        self.http_status = http_status
        self.retryable = retryable
        self.scope = scope
        extra = f" ({detail})" if detail and detail != title else ""
        super().__init__(f"{code}: {title}{extra}")

    @property
    def is_rate_limit(self) -> bool:
        return self.code in RATE_LIMIT_CODES

    @property
    def is_auth_error(self) -> bool:
        """The access token is expired or revoked: the number needs a new one."""
        return self.code == 190

    @property
    def agent_title(self) -> str:
        """A short text an agent understands, in the active language."""
        known = AGENT_TITLES.get(self.code)
        if known is not None:
            return str(known)
        if self.http_status and self.http_status >= 500:
            return str(AGENT_TITLES["http"])
        return self.title or str(AGENT_TITLES["http"])

    def __repr__(self) -> str:
        return (
            f"TransportError(code={self.code!r}, http_status={self.http_status!r}, "
            f"retryable={self.retryable!r}, scope={self.scope!r})"
        )


def error_from_response(http_status: int, body: Any) -> TransportError:
    """Meta's error answer (``{"error": {...}}``) as a typed error."""
    error = body.get("error") if isinstance(body, dict) else None
    if not isinstance(error, dict):
        return TransportError(
            code="http",
            title=f"HTTP {http_status}",
            http_status=http_status,
            retryable=http_status >= 500 or http_status == 429,
            scope="service" if http_status >= 500 else "request",
        )
    raw_code = error.get("code")
    code: int | str = raw_code if isinstance(raw_code, int) else str(raw_code or "http")
    if isinstance(code, str) and code.isdigit():
        code = int(code)
    data = error.get("error_data") if isinstance(error.get("error_data"), dict) else {}
    title = str(error.get("error_user_title") or error.get("message") or f"HTTP {http_status}")
    detail = str(data.get("details") or error.get("error_user_msg") or "")
    retryable = code in RETRYABLE_CODES or http_status >= 500 or http_status == 429
    scope = _SCOPES.get(code, "service" if http_status >= 500 else "request")  # type: ignore[call-overload]
    return TransportError(
        code=code,
        title=title[:255],
        detail=detail,
        http_status=http_status,
        retryable=retryable,
        scope=scope,
    )


class _ServiceFailure(Exception):
    """Raised inside the breaker for failures of Meta or the network, so that
    only those count against it; a refused message (a 4xx) does not."""

    def __init__(self, error: TransportError) -> None:
        self.error = error
        super().__init__(str(error))


def _outcome(error: TransportError) -> str:
    if error.code == "breaker_open":
        return "breaker_open"
    return "retryable" if error.retryable else "permanent"


# --- Recipients -----------------------------------------------------------------

_NON_DIGITS = re.compile(r"\D")


@dataclass(frozen=True)
class Recipient:
    """Who a message goes to: the WhatsApp id (phone digits) when known, else
    the business-scoped user id (BSUID) of someone known only by username."""

    wa_id: str = ""
    bsuid: str = ""

    def __bool__(self) -> bool:
        return bool(self.wa_id or self.bsuid)

    def fields(self) -> dict[str, str]:
        # Meta: "to" takes a phone number, "recipient" a BSUID; when both are
        # sent "to" wins, so a BSUID is only sent when no phone is known.
        if self.wa_id:
            return {"to": self.wa_id}
        if self.bsuid:
            return {"recipient": self.bsuid}
        raise TransportError(
            code="invalid_payload",
            title="The contact has neither a WhatsApp id, a phone nor a BSUID.",
            retryable=False,
            scope="recipient",
        )


def recipient_for(contact: Any) -> Recipient:
    """The recipient for a ``conversations.Contact``."""
    wa_id = _NON_DIGITS.sub("", contact.wa_id or "") or _NON_DIGITS.sub("", contact.phone or "")
    return Recipient(wa_id=wa_id, bsuid=(contact.bsuid or "").strip())


# --- Results --------------------------------------------------------------------


@dataclass(frozen=True)
class SendResult:
    """Meta accepted the message; ``message_id`` is its wamid."""

    message_id: str
    response: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MediaInfo:
    url: str
    mime_type: str
    file_size: int | None
    sha256: str = ""
    id: str = ""


@dataclass(frozen=True)
class MediaDownload:
    """``content`` holds the bytes unless they were written to a ``sink``."""

    size: int
    content_type: str
    content: bytes = b""


# What "check connection" asks Meta about a number.
ACCOUNT_CHECK_FIELDS = "display_phone_number,verified_name,quality_rating,code_verification_status"


@dataclass(frozen=True)
class AccountInfo:
    """What Meta says about a number: the token and the phone number id work."""

    display_phone_number: str
    verified_name: str
    quality_rating: str
    code_verification_status: str
    response: dict[str, Any] = field(default_factory=dict)


def _invalid(title: str) -> TransportError:
    return TransportError(code="invalid_payload", title=title, retryable=False)


# --- Payload builders (shared by the Graph and the sandbox transports) -----------


def interactive_buttons(
    body: str,
    buttons: list[dict[str, str]] | list[tuple[str, str]],
    *,
    header: str = "",
    footer: str = "",
) -> dict[str, Any]:
    """An interactive "button" object: up to three reply buttons (id, title)."""
    items = [b if isinstance(b, dict) else {"id": b[0], "title": b[1]} for b in buttons]
    if not 1 <= len(items) <= MAX_BUTTONS:
        raise _invalid(f"Reply buttons: 1 to {MAX_BUTTONS}, got {len(items)}.")
    interactive: dict[str, Any] = {
        "type": "button",
        "body": {"text": body},
        "action": {
            "buttons": [
                {"type": "reply", "reply": {"id": str(b["id"]), "title": str(b["title"])}}
                for b in items
            ]
        },
    }
    if header:
        interactive["header"] = {"type": "text", "text": header}
    if footer:
        interactive["footer"] = {"text": footer}
    return interactive


def interactive_list(
    body: str,
    button: str,
    sections: list[dict[str, Any]],
    *,
    header: str = "",
    footer: str = "",
) -> dict[str, Any]:
    """An interactive "list" object: sections of rows (id, title, description)."""
    rows = sum(len(s.get("rows") or []) for s in sections)
    if not sections or not 1 <= rows <= MAX_LIST_ROWS:
        raise _invalid(f"List: 1 to {MAX_LIST_ROWS} rows in all, got {rows}.")
    interactive: dict[str, Any] = {
        "type": "list",
        "body": {"text": body},
        "action": {
            "button": button,
            "sections": [
                {
                    **({"title": s["title"]} if s.get("title") else {}),
                    "rows": [
                        {
                            "id": str(r["id"]),
                            "title": str(r["title"]),
                            **({"description": r["description"]} if r.get("description") else {}),
                        }
                        for r in s.get("rows") or []
                    ],
                }
                for s in sections
            ],
        },
    }
    if header:
        interactive["header"] = {"type": "text", "text": header}
    if footer:
        interactive["footer"] = {"text": footer}
    return interactive


def _check_interactive(interactive: dict[str, Any]) -> None:
    kind = interactive.get("type")
    action = interactive.get("action")
    if not kind or not isinstance(action, dict):
        raise _invalid("An interactive message needs a type and an action.")
    if kind == "button" and not 1 <= len(action.get("buttons") or []) <= MAX_BUTTONS:
        raise _invalid(f"Reply buttons: 1 to {MAX_BUTTONS}.")


# --- The transports ---------------------------------------------------------------


class GraphTransport:
    """The WhatsApp Cloud API for one number, over httpx."""

    sandbox = False

    def __init__(self, account: Any) -> None:
        self.account = account

    # -- sending --

    def send_text(
        self, to: Recipient, body: str, *, preview_url: bool = False, reply_to: str = ""
    ) -> SendResult:
        if not body.strip():
            raise _invalid("A text message needs a body.")
        return self._send(
            "text", to, {"text": {"preview_url": preview_url, "body": body}}, reply_to=reply_to
        )

    def send_template(
        self,
        to: Recipient,
        *,
        name: str,
        language: str,
        components: list[dict[str, Any]] | None = None,
        reply_to: str = "",
    ) -> SendResult:
        if not name or not language:
            raise _invalid("A template message needs a name and a language.")
        template: dict[str, Any] = {"name": name, "language": {"code": language}}
        if components:
            template["components"] = components
        return self._send("template", to, {"template": template}, reply_to=reply_to)

    def send_interactive(
        self, to: Recipient, interactive: dict[str, Any], *, reply_to: str = ""
    ) -> SendResult:
        _check_interactive(interactive)
        return self._send("interactive", to, {"interactive": interactive}, reply_to=reply_to)

    def send_buttons(
        self,
        to: Recipient,
        body: str,
        buttons: list[dict[str, str]] | list[tuple[str, str]],
        *,
        header: str = "",
        footer: str = "",
        reply_to: str = "",
    ) -> SendResult:
        interactive = interactive_buttons(body, buttons, header=header, footer=footer)
        return self.send_interactive(to, interactive, reply_to=reply_to)

    def send_list(
        self,
        to: Recipient,
        body: str,
        button: str,
        sections: list[dict[str, Any]],
        *,
        header: str = "",
        footer: str = "",
        reply_to: str = "",
    ) -> SendResult:
        interactive = interactive_list(body, button, sections, header=header, footer=footer)
        return self.send_interactive(to, interactive, reply_to=reply_to)

    def send_media(
        self,
        to: Recipient,
        kind: str,
        *,
        media_id: str = "",
        link: str = "",
        caption: str = "",
        filename: str = "",
        reply_to: str = "",
    ) -> SendResult:
        if kind not in MEDIA_KINDS:
            raise _invalid(f"Unknown media kind {kind!r}.")
        if bool(media_id) == bool(link):
            raise _invalid("A media message needs exactly one of a media id or a link.")
        media: dict[str, Any] = {"id": media_id} if media_id else {"link": link}
        if caption and kind in _CAPTION_KINDS:
            media["caption"] = caption
        if filename and kind == "document":
            media["filename"] = filename
        return self._send(kind, to, {kind: media}, reply_to=reply_to, endpoint="send.media")

    def send_reaction(self, to: Recipient, message_id: str, emoji: str) -> SendResult:
        """React to the customer's message ``message_id``; an empty emoji removes it."""
        if not message_id:
            raise _invalid("A reaction needs the id of the message it reacts to.")
        return self._send("reaction", to, {"reaction": {"message_id": message_id, "emoji": emoji}})

    def mark_read(self, message_id: str) -> None:
        """Mark the customer's message (and those before it) as read."""
        body = {"messaging_product": "whatsapp", "status": "read", "message_id": message_id}
        self._request("mark_read", "POST", f"{self.account.phone_number_id}/messages", json=body)

    def _send(
        self,
        kind: str,
        to: Recipient,
        content: dict[str, Any],
        *,
        reply_to: str = "",
        endpoint: str = "",
    ) -> SendResult:
        body: dict[str, Any] = {
            "messaging_product": "whatsapp",
            "recipient_type": "individual",
            **to.fields(),
            "type": kind,
            **content,
        }
        if reply_to:
            body["context"] = {"message_id": reply_to}
        return self._post_message(endpoint or f"send.{kind}", body)

    def _post_message(self, endpoint: str, body: dict[str, Any]) -> SendResult:
        answer = self._request(
            endpoint, "POST", f"{self.account.phone_number_id}/messages", json=body
        )
        try:
            message_id = str(answer["messages"][0]["id"])
        except (KeyError, IndexError, TypeError):
            raise TransportError(
                code="bad_response",
                title="The send answer carries no message id.",
                detail=str(answer)[:500],
                http_status=200,
                retryable=False,
                scope="service",
            ) from None
        return SendResult(message_id=message_id, response=answer)

    # -- media and templates --

    def media_info(self, media_id: str) -> MediaInfo:
        """Where to download a media (the URL Meta gives is valid for 5 minutes)."""
        answer = self._request("media_url", "GET", str(media_id))
        url = answer.get("url") if isinstance(answer, dict) else None
        if not url:
            raise TransportError(
                code="bad_response",
                title="The media answer carries no URL.",
                http_status=200,
                retryable=False,
                scope="service",
            )
        size = answer.get("file_size")
        return MediaInfo(
            url=str(url),
            mime_type=str(answer.get("mime_type") or ""),
            file_size=int(size) if str(size or "").isdigit() else None,
            sha256=str(answer.get("sha256") or ""),
            id=str(answer.get("id") or media_id),
        )

    def download_media(
        self, url: str, *, max_bytes: int | None = None, sink: IO[bytes] | None = None
    ) -> MediaDownload:
        """GET ``url`` (from :meth:`media_info`) with the bearer token, streaming;
        more than ``max_bytes`` (default WHATSAPP_MEDIA_MAX_BYTES) is refused."""
        limit = max_bytes if max_bytes is not None else settings.WHATSAPP_MEDIA_MAX_BYTES

        def fetch() -> MediaDownload:
            with (
                self._client() as client,
                client.stream("GET", url, headers=self._headers()) as response,
            ):
                if response.status_code >= 400:
                    response.read()
                    raise _error_for(response)
                declared = response.headers.get("Content-Length", "")
                if declared.isdigit() and int(declared) > limit:
                    raise _too_large(int(declared), limit)
                chunks: list[bytes] = []
                size = 0
                for chunk in response.iter_bytes():
                    size += len(chunk)
                    if size > limit:
                        raise _too_large(size, limit)
                    if sink is not None:
                        sink.write(chunk)
                    else:
                        chunks.append(chunk)
                content_type = response.headers.get("Content-Type", "").split(";")[0].strip()
                return MediaDownload(size=size, content_type=content_type, content=b"".join(chunks))

        return self._guarded("media_download", fetch)

    def fetch_media(
        self, media_id: str, *, max_bytes: int | None = None, sink: IO[bytes] | None = None
    ) -> tuple[MediaInfo, MediaDownload]:
        """Look the media id up, refuse it early if Meta says it is too large, download it."""
        info = self.media_info(media_id)
        limit = max_bytes if max_bytes is not None else settings.WHATSAPP_MEDIA_MAX_BYTES
        if info.file_size is not None and info.file_size > limit:
            raise _too_large(info.file_size, limit)
        return info, self.download_media(info.url, max_bytes=limit, sink=sink)

    def account_check(self) -> AccountInfo:
        """``GET /{phone_number_id}``: proves the token may act for this number
        and reads its verified name and quality rating."""
        if self.sandbox:
            # The sandbox transport inherits this method; it must never call Meta.
            raise TransportError(
                code="sandbox",
                title="A sandbox number (no access token) has nothing to check.",
                retryable=False,
                scope="account",
            )
        answer = self._request(
            "account_check",
            "GET",
            str(self.account.phone_number_id),
            params={"fields": ACCOUNT_CHECK_FIELDS},
        )
        return AccountInfo(
            display_phone_number=str(answer.get("display_phone_number") or ""),
            verified_name=str(answer.get("verified_name") or ""),
            quality_rating=str(answer.get("quality_rating") or ""),
            code_verification_status=str(answer.get("code_verification_status") or ""),
            response=answer,
        )

    def list_templates(self, *, page_size: int = 100) -> list[dict[str, Any]]:
        """Every message template of the number's business account, following the paging."""
        waba = self.account.business_account_id
        if not waba:
            raise _invalid("The number has no WhatsApp business account id.")
        templates: list[dict[str, Any]] = []
        params: dict[str, Any] | None = {"limit": page_size}
        path = f"{waba}/message_templates"
        for _page in range(1000):  # a bound, not a limit anyone should reach
            answer = self._request("templates", "GET", path, params=params)
            templates.extend(t for t in answer.get("data") or [] if isinstance(t, dict))
            paging = answer.get("paging") or {}
            after = (paging.get("cursors") or {}).get("after")
            if not paging.get("next") or not after:
                break
            params = {"limit": page_size, "after": after}
        return templates

    # -- plumbing --

    def _base_url(self) -> str:
        return f"{settings.WHATSAPP_API_BASE_URL}/{settings.WHATSAPP_API_VERSION}"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.account.access_token}"}

    def _client(self) -> httpx.Client:
        return httpx.Client(timeout=httpx.Timeout(settings.WHATSAPP_API_TIMEOUT))

    def _request(
        self,
        endpoint: str,
        method: str,
        path: str,
        *,
        json: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        url = f"{self._base_url()}/{path}"

        def call() -> dict[str, Any]:
            with self._client() as client:
                response = client.request(
                    method, url, json=json, params=params, headers=self._headers()
                )
            if response.status_code >= 400:
                raise _error_for(response)
            try:
                answer = response.json()
            except ValueError:
                raise TransportError(
                    code="bad_response",
                    title="The answer is not JSON.",
                    http_status=response.status_code,
                    retryable=False,
                    scope="service",
                ) from None
            return answer if isinstance(answer, dict) else {"data": answer}

        return self._guarded(endpoint, call)

    def _guarded(self, endpoint: str, call: Callable[[], T]) -> T:
        """Run ``call`` through the breaker; count and log its outcome."""

        def inside() -> tuple[T | None, TransportError | None]:
            # Only failures of Meta or the network may leave this function: the
            # breaker counts whatever is raised, and a refused message (a 4xx,
            # an oversized media) says nothing about Meta's health.
            try:
                return call(), None
            except TransportError as exc:
                failing = exc.scope == "service" or (exc.http_status or 0) >= 500
                if failing and exc.code != "bad_response":
                    raise _ServiceFailure(exc) from exc
                return None, exc
            except httpx.TimeoutException as exc:
                raise _ServiceFailure(
                    TransportError(
                        code="timeout",
                        title=f"No answer within {settings.WHATSAPP_API_TIMEOUT} s.",
                        detail=type(exc).__name__,
                        retryable=True,
                        scope="service",
                    )
                ) from exc
            except httpx.HTTPError as exc:
                raise _ServiceFailure(
                    TransportError(
                        code="connection",
                        title="Could not reach the Graph API.",
                        detail=f"{type(exc).__name__}: {exc}"[:500],
                        retryable=True,
                        scope="service",
                    )
                ) from exc

        try:
            result, error = get_breaker(BREAKER).call(inside)
        except pybreaker.CircuitBreakerError:
            error = TransportError(
                code="breaker_open",
                title="The whatsapp circuit breaker is open.",
                retryable=True,
                scope="service",
            )
        except _ServiceFailure as failure:
            error = failure.error
        if error is None:
            metrics.API_CALLS.labels(endpoint, "ok").inc()
            return result  # type: ignore[return-value]
        metrics.API_CALLS.labels(endpoint, _outcome(error)).inc()
        if error.is_rate_limit:
            metrics.RATE_LIMITS.labels(str(error.code)).inc()
        logger.warning(
            "whatsapp_api_error",
            endpoint=endpoint,
            account_id=self.account.pk,
            code=error.code,
            http_status=error.http_status,
            retryable=error.retryable,
            scope=error.scope,
            title=error.title,
        )
        raise error


def _error_for(response: httpx.Response) -> TransportError:
    try:
        body = response.json()
    except ValueError:
        body = None
    return error_from_response(response.status_code, body)


def _too_large(size: int, limit: int) -> TransportError:
    return TransportError(
        code="media_too_large",
        title=f"The media has {size} bytes; at most {limit} are allowed.",
        retryable=False,
        scope="request",
    )


def transport_for(account: Any) -> GraphTransport:
    """The Graph transport for a live number; the sandbox one without an access token."""
    if account.is_sandbox:
        from whatsapp.sandbox import SandboxTransport

        return SandboxTransport(account)
    return GraphTransport(account)


# --- Module-level shortcuts (templates sync, media download) ----------------------


def list_templates(account: Any) -> list[dict[str, Any]]:
    return transport_for(account).list_templates()


def account_check(account: Any) -> AccountInfo:
    return transport_for(account).account_check()


def media_info(account: Any, media_id: str) -> MediaInfo:
    return transport_for(account).media_info(media_id)


def download_media(
    account: Any, url: str, *, max_bytes: int | None = None, sink: IO[bytes] | None = None
) -> MediaDownload:
    return transport_for(account).download_media(url, max_bytes=max_bytes, sink=sink)


def fetch_media(
    account: Any, media_id: str, *, max_bytes: int | None = None, sink: IO[bytes] | None = None
) -> tuple[MediaInfo, MediaDownload]:
    return transport_for(account).fetch_media(media_id, max_bytes=max_bytes, sink=sink)


def mark_read(account: Any, message_id: str) -> None:
    transport_for(account).mark_read(message_id)

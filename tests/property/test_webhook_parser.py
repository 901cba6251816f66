"""The webhook parser and view under arbitrary input (Hypothesis).

``whatsapp.payloads.parse_envelope`` turns the raw body of a (signed) webhook
POST into typed events. Whatever JSON arrives, it either returns well-typed
events or raises its own ``EnvelopeError`` (the view's 400); nothing else may
escape, because anything else is a 500 and Meta retries a 500 for days.

Two sources of input: any JSON document at all, and Meta's documented envelopes
with random damage (a field dropped, replaced by random JSON, given another type
or another known value). The same inputs then go through the real view with a
valid signature, where only 200 and 400 are acceptable answers.
"""

from __future__ import annotations

import copy
import json
import math
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conversations.models import Message
from tests.conversations.conftest import support  # noqa: F401 - fixture of `account`
from tests.property import scaled
from tests.whatsapp.conftest import PHONE_NUMBER_ID, account  # noqa: F401 - fixture
from tests.whatsapp.payloads import contact, envelope, message, post, status, text
from whatsapp.models import WhatsAppAccount
from whatsapp.payloads import (
    Change,
    Envelope,
    EnvelopeError,
    IdentityChange,
    InboundMessage,
    InboundStatus,
    Reaction,
    Sender,
    parse_envelope,
)

# --- Strategies -------------------------------------------------------------------

_scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    # NaN and infinities too: Python's json reads and writes them (as NaN, Infinity).
    | st.floats()
    | st.text()
    # What random text rarely is but a database column may refuse.
    | st.sampled_from(["\x00", "a\x00b", "\ud800", "é" * 40, "9" * 40, "A" * 200])
)
json_values = st.recursive(
    _scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=25,
)

# Values the parser branches on: random text would almost never hit them.
_KNOWN_STRINGS = [
    "whatsapp_business_account",
    "messages",
    "user_id_update",
    "statuses",
    *("text", "image", "audio", "video", "document", "sticker", "location", "contacts"),
    *("interactive", "button", "reaction", "system", "order", "unsupported", "unknown"),
    *("button_reply", "list_reply", "nfm_reply", "user_changed_number", "user_changed_user_id"),
    *("sent", "delivered", "read", "failed", "pending", "received"),
    PHONE_NUMBER_ID,
    "5511988887777",
    "BR.1502576394655843",
    "1767225600",
    "",
    " ",
    "\x00",
    "9" * 40,
    "A" * 200,
]


def _valid_envelopes() -> list[dict[str, Any]]:
    """One of each shape Meta documents, with fixed ids so a derandomized run
    builds the same bytes every time."""
    ids = iter(f"wamid.PROP{n:04d}" for n in range(1, 100))

    def msg(type_: str, body: dict[str, Any] | None, **extra: Any) -> dict[str, Any]:
        return message(type_, body, id_=next(ids), **extra)

    messages = [
        text("Minha internet caiu", id_=next(ids)),
        msg("image", {"id": "MEDIA1", "mime_type": "image/jpeg", "caption": "o roteador"}),
        msg("audio", {"id": "MEDIA2", "mime_type": "audio/ogg; codecs=opus", "voice": True}),
        msg("document", {"id": "MEDIA3", "mime_type": "application/pdf", "filename": "b.pdf"}),
        msg("location", {"latitude": -23.55, "longitude": -46.63, "name": "Casa"}),
        msg(
            "contacts",
            None,
            contacts=[{"name": {"formatted_name": "João"}, "phones": [{"phone": "+55 11 9"}]}],
        ),
        msg("interactive", {"type": "button_reply", "button_reply": {"id": "2", "title": "Pix"}}),
        msg("interactive", {"type": "list_reply", "list_reply": {"id": "r1", "title": "Lento"}}),
        msg("button", {"payload": "csat:5", "text": "Ótimo"}),
        msg("reaction", {"message_id": "wamid.PROP0001", "emoji": "👍"}),
        msg(
            "system",
            {"type": "user_changed_number", "body": "changed", "wa_id": "5511977776666"},
        ),
        text("Reply", id_=next(ids), context={"from": "551140001234", "id": "wamid.PROP0001"}),
        msg("unsupported", None, errors=[{"code": 131051, "title": "Unsupported"}]),
    ]
    envelopes = [envelope(messages=[item]) for item in messages]
    envelopes.append(envelope(messages=messages[:3], contacts=[contact(), contact(wa_id="55219")]))
    envelopes.append(envelope(messages=[text("sem contato", id_=next(ids))], contacts=[]))
    error = {"code": 131047, "title": "Re-engagement", "error_data": {"details": "24 h"}}
    envelopes.append(
        envelope(
            statuses=[
                status("wamid.OUT1", "delivered"),
                status("wamid.OUT1", "read", timestamp="1767225660"),
                status("wamid.OUT2", "failed", errors=[error]),
            ]
        )
    )
    update = {"user_id": {"previous": "BR.1", "current": "BR.2"}, "wa_id": "5511988887777"}
    envelopes.append(envelope(field="user_id_update", user_id_update=[update]))
    envelopes.append(envelope(field="account_update", event="VERIFIED_ACCOUNT"))
    return envelopes


VALID_ENVELOPES = _valid_envelopes()


def _paths(node: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield path
    if isinstance(node, dict):
        for key, value in node.items():
            yield from _paths(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _paths(value, (*path, index))


def _at(document: Any, path: tuple[Any, ...]) -> Any:
    for key in path:
        document = document[key]
    return document


_RETYPES: list[Callable[[Any], Any]] = [
    lambda v: None,
    lambda v: [v],
    lambda v: {"value": v},
    lambda v: json.dumps(v),
    lambda v: 0,
    lambda v: -1,
    lambda v: 1.5,
    lambda v: True,
    lambda v: "",
    lambda v: 10**30,
    lambda v: list(v.values()) if isinstance(v, dict) else v,
]


@st.composite
def damaged_envelopes(draw: st.DrawFn) -> Any:
    """A documented envelope with one to five random edits anywhere in it."""
    document: Any = copy.deepcopy(draw(st.sampled_from(VALID_ENVELOPES)))
    for _ in range(draw(st.integers(1, 5))):
        paths = list(_paths(document))
        path = draw(st.sampled_from(paths))
        operation = draw(st.sampled_from(["drop", "replace", "retype", "known", "insert"]))
        if not path:
            # The root itself: only replacing it makes sense.
            document = draw(json_values) if operation == "replace" else document
            continue
        parent, key = _at(document, path[:-1]), path[-1]
        if operation == "drop":
            del parent[key]
        elif operation == "replace":
            parent[key] = draw(json_values)
        elif operation == "retype":
            parent[key] = draw(st.sampled_from(_RETYPES))(parent[key])
        elif operation == "known":
            parent[key] = draw(st.sampled_from(_KNOWN_STRINGS))
        else:
            target = parent[key]
            if isinstance(target, dict):
                name = draw(st.sampled_from(_KNOWN_STRINGS) | st.text(max_size=8))
                target[name] = draw(json_values)
            elif isinstance(target, list):
                target.append(draw(json_values))
    return document


def _dumps(document: Any) -> bytes:
    # As Meta serialises (compact, ASCII-escaped); NaN/Infinity as Python writes them.
    return json.dumps(document, separators=(",", ":"), ensure_ascii=True).encode()


bodies = (
    json_values.map(_dumps)
    | damaged_envelopes().map(_dumps)
    | st.sampled_from(VALID_ENVELOPES).map(_dumps)
)

# --- What a parsed envelope must look like ------------------------------------------


def _optional_id(value: Any, limit: int = 128) -> bool:
    """None, or a stripped id a column of ``limit`` characters can hold."""
    if value is None:
        return True
    return isinstance(value, str) and value.strip() == value != "" and _storable_id(value, limit)


def _storable_id(value: str, limit: int) -> bool:
    return len(value) <= limit and _storable(value)


def _storable(value: Any) -> bool:
    """What every database keeps as is: no NUL (PostgreSQL's text and jsonb refuse
    it), no lone surrogate (no UTF-8 encoder takes it), no NaN or infinity (no
    JSON column stores them), in dict keys as in values."""
    if isinstance(value, str):
        return "\x00" not in value and not any("\ud800" <= char <= "\udfff" for char in value)
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_storable(key) and _storable(item) for key, item in value.items())
    if isinstance(value, list):
        return all(_storable(item) for item in value)
    return True


def _moment(value: Any) -> bool:
    return value is None or (isinstance(value, datetime) and value.tzinfo is not None)


def assert_typed(parsed: Envelope) -> None:
    """The contract the services rely on: every field has its declared type."""
    assert isinstance(parsed, Envelope)
    assert isinstance(parsed.changes, list)
    for change in parsed.changes:
        assert isinstance(change, Change)
        assert isinstance(change.field, str)
        assert _optional_id(change.phone_number_id, limit=64)
        assert isinstance(change.skipped, int) and change.skipped >= 0
        for item in change.messages:
            _assert_message(item)
        for item in change.statuses:
            _assert_status(item)
        for identity in change.identity_changes:
            _assert_identity(identity)


def _assert_message(item: InboundMessage) -> None:
    assert isinstance(item, InboundMessage)
    assert isinstance(item.external_id, str) and _optional_id(item.external_id)
    assert isinstance(item.type, str) and item.type
    assert item.kind in Message.Kind.values
    assert isinstance(item.text, str) and _storable(item.text)
    assert isinstance(item.payload, dict) and _storable(item.payload)
    assert isinstance(item.media_id, str) and len(item.media_id) <= 128
    assert isinstance(item.media_mime_type, str) and len(item.media_mime_type) <= 100
    assert _optional_id(item.reply_to_external_id)
    assert _moment(item.sent_at)
    assert isinstance(item.sender, Sender)
    assert _optional_id(item.sender.bsuid) and _optional_id(item.sender.wa_id, limit=32)
    assert isinstance(item.sender.name, str) and _storable(item.sender.name)
    assert isinstance(item.sender.username, str) and _storable(item.sender.username)
    if item.reaction is not None:
        assert isinstance(item.reaction, Reaction)
        assert _optional_id(item.reaction.message_external_id)
        assert isinstance(item.reaction.emoji, str) and _storable(item.reaction.emoji)
    if item.identity_change is not None:
        _assert_identity(item.identity_change)


def _assert_status(item: InboundStatus) -> None:
    assert isinstance(item, InboundStatus)
    assert isinstance(item.external_id, str) and _optional_id(item.external_id)
    assert isinstance(item.status, str) and item.status
    assert _moment(item.at)
    assert _optional_id(item.recipient_id, limit=32) and _optional_id(item.recipient_user_id)
    for text_field in (item.error_code, item.error_title, item.error_detail):
        assert isinstance(text_field, str) and _storable(text_field)


def _assert_identity(identity: IdentityChange) -> None:
    assert isinstance(identity, IdentityChange)
    for value in (identity.previous_bsuid, identity.bsuid):
        assert _optional_id(value)
    for value in (identity.previous_wa_id, identity.wa_id):
        assert _optional_id(value, limit=32)


def parse_or_refuse(raw: bytes) -> Envelope | None:
    """The parser's result, or None when it refused with its own error."""
    try:
        parsed = parse_envelope(raw)
    except EnvelopeError:
        return None
    assert_typed(parsed)
    return parsed


# --- The parser -------------------------------------------------------------------


def test_the_documented_envelopes_parse() -> None:
    # The damage below starts from these: they must be valid to begin with.
    for document in VALID_ENVELOPES:
        assert parse_or_refuse(_dumps(document)) is not None, document


@settings(max_examples=scaled(200))
@given(document=json_values)
@example(document={"object": "whatsapp_business_account", "entry": []})
@example(document={"object": "whatsapp_business_account", "entry": [{"changes": [1]}]})
@example(document=[math.inf, -math.inf, math.nan])
def test_any_json_document_parses_or_is_refused(document: Any) -> None:
    parse_or_refuse(_dumps(document))


@settings(max_examples=scaled(200))
@given(raw=st.binary(max_size=200))
@example(raw=b"")
@example(raw=b"\xff\xfe")
@example(raw=b'{"object": "whatsapp_business_account", "entry": [')
def test_any_bytes_parse_or_are_refused(raw: bytes) -> None:
    parse_or_refuse(raw)


@settings(max_examples=scaled(300))
@given(document=damaged_envelopes())
def test_damaged_envelopes_parse_or_are_refused(document: Any) -> None:
    parse_or_refuse(_dumps(document))


# Inputs Hypothesis does not reach by itself, each found to escape the parser
# with a bare exception (a 500) before parse_envelope refused them itself.
_NESTED = b"[" * 100_000 + b"]" * 100_000
_HUGE_INT = b'{"object":"whatsapp_business_account","entry":[],"n":' + b"9" * 5000 + b"}"


def test_deeply_nested_json_is_refused() -> None:
    assert parse_or_refuse(_NESTED) is None


def test_an_integer_too_long_to_read_is_refused() -> None:
    assert parse_or_refuse(_HUGE_INT) is None


# --- The view, signed -------------------------------------------------------------
#
# Whatever the parser returns must also be storable: every field within its
# column, no NUL (PostgreSQL refuses it in text and jsonb), no lone surrogate
# (no UTF-8 encoder takes one), no NaN (no JSON column stores it).

_VIEW_SETTINGS = settings(
    max_examples=scaled(60),
    # `client` and `account` are made once per test; each example runs in a
    # savepoint that is rolled back, so the database is the same for every one.
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _post_and_roll_back(client: Client, raw: bytes) -> int:
    with transaction.atomic():
        response = post(client, raw)
        transaction.set_rollback(True)
    return response.status_code


@_VIEW_SETTINGS
@given(raw=bodies | st.binary(max_size=64))
def test_the_signed_view_answers_200_or_400(
    client: Client,
    account: WhatsAppAccount,  # noqa: F811 - the imported fixture
    raw: bytes,
) -> None:
    # The test client re-raises whatever the view raised: a bug shows as its traceback.
    status_code = _post_and_roll_back(client, raw)

    expected = 400 if parse_or_refuse(raw) is None else 200
    assert status_code == expected


def _body(document: Any) -> bytes:
    return document if isinstance(document, bytes) else _dumps(document)


# Each of these was answered with a 500 (issue 8): (id, body, status expected).
# A body that is not JSON is refused whole; a message or status whose id no
# column can hold is skipped and the rest of the delivery stored (200), so that
# Meta does not redeliver the good ones for days.
_FORMERLY_500: list[tuple[str, Any, int]] = [
    ("deeply-nested", _NESTED, 400),
    ("huge-integer", _HUGE_INT, 400),
    ("nan-in-payload", envelope(messages=[text("x", id_="wamid.BUG1", extra=math.nan)]), 400),
    (
        "infinite-timestamp",
        envelope(messages=[text("x", id_="wamid.BUG2", timestamp=math.inf)]),
        400,
    ),
    ("lone-surrogate", envelope(messages=[text("\ud800", id_="wamid.BUG3")]), 200),
    ("nul-in-text", envelope(messages=[text("a\x00b", id_="wamid.BUG4")]), 200),
    (
        "nul-in-payload-key",
        envelope(messages=[text("x", id_="wamid.BUG5", **{"k\x00": 1})]),
        200,
    ),
    (
        "nul-in-profile-name",
        envelope(messages=[text("x", id_="wamid.BUG6")], contacts=[contact(name="M\x00")]),
        200,
    ),
    ("nul-in-status-id", envelope(statuses=[status("wamid.BUG7\x00", "delivered")]), 200),
    (
        "nul-in-phone-number-id",
        envelope(messages=[text("x", id_="wamid.BUG8")], phone_number_id="1\x00"),
        200,
    ),
    ("message-id-over-128", envelope(messages=[text("x", id_="wamid." + "A" * 200)]), 200),
    (
        "from-over-32",
        envelope(
            messages=[text("x", id_="wamid.BUG9", from_="5" * 40, from_user_id=None)],
            contacts=[contact(wa_id="5" * 40, user_id=None)],
        ),
        200,
    ),
    (
        "user-id-over-128",
        envelope(
            messages=[text("x", id_="wamid.BUG10", from_user_id="B" * 200)],
            contacts=[contact(user_id="B" * 200)],
        ),
        200,
    ),
]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [pytest.param(_body(document), code, id=name) for name, document, code in _FORMERLY_500],
)
def test_the_signed_view_never_answers_500(
    client: Client,
    account: WhatsAppAccount,  # noqa: F811 - the imported fixture
    raw: bytes,
    expected: int,
) -> None:
    assert _post_and_roll_back(client, raw) == expected
    assert (parse_or_refuse(raw) is None) == (expected == 400)

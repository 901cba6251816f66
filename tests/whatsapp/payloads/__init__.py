"""Webhook envelopes shaped like Meta's documented examples, signed like Meta
signs them, and posted through the real URL as raw bytes."""

from __future__ import annotations

import hashlib
import hmac
import json
from itertools import count
from typing import Any

from django.test import Client

from tests.whatsapp.conftest import APP_SECRET, PHONE_NUMBER_ID

URL = "/api/v1/whatsapp/webhook"
WABA_ID = "102290129340398"
MARIA_PHONE = "5511988887777"
MARIA_BSUID = "BR.1502576394655843"
TIMESTAMP = "1767225600"  # 2026-01-01 00:00:00 UTC

_ids = count(1)


def wamid() -> str:
    return f"wamid.HBgNNTUxMTk4ODg4Nzc3NxUCABIYFDNBMDAwMDAw{next(_ids):06d}AA=="


def contact(
    *,
    wa_id: str | None = MARIA_PHONE,
    user_id: str | None = MARIA_BSUID,
    name: str = "Maria Souza",
    username: str | None = None,
) -> dict[str, Any]:
    profile: dict[str, Any] = {"name": name}
    if username:
        profile["username"] = username
    entry: dict[str, Any] = {"profile": profile}
    if wa_id:
        entry["wa_id"] = wa_id
    if user_id:
        entry["user_id"] = user_id
    return entry


def message(
    type_: str,
    body: dict[str, Any] | None = None,
    *,
    id_: str | None = None,
    from_: str | None = MARIA_PHONE,
    from_user_id: str | None = MARIA_BSUID,
    timestamp: str = TIMESTAMP,
    **extra: Any,
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": id_ or wamid(), "timestamp": timestamp, "type": type_}
    if from_:
        item["from"] = from_
    if from_user_id:
        item["from_user_id"] = from_user_id
    if body is not None:
        item[type_] = body
    item.update(extra)
    return item


def text(body: str = "Minha internet caiu", **kwargs: Any) -> dict[str, Any]:
    return message("text", {"body": body}, **kwargs)


def status(
    id_: str,
    value: str,
    *,
    timestamp: str = TIMESTAMP,
    recipient_id: str | None = MARIA_PHONE,
    recipient_user_id: str | None = MARIA_BSUID,
    errors: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    item: dict[str, Any] = {"id": id_, "status": value, "timestamp": timestamp}
    if recipient_id:
        item["recipient_id"] = recipient_id
    if recipient_user_id:
        item["recipient_user_id"] = recipient_user_id
    if errors:
        item["errors"] = errors
    return item


def envelope(
    *,
    messages: list[dict[str, Any]] | None = None,
    contacts: list[dict[str, Any]] | None = None,
    statuses: list[dict[str, Any]] | None = None,
    phone_number_id: str = PHONE_NUMBER_ID,
    field: str = "messages",
    **value: Any,
) -> dict[str, Any]:
    change_value: dict[str, Any] = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140001234", "phone_number_id": phone_number_id},
    }
    if messages is not None:
        change_value["contacts"] = [contact()] if contacts is None else contacts
        change_value["messages"] = messages
    if statuses is not None:
        change_value["statuses"] = statuses
    change_value.update(value)
    return {
        "object": "whatsapp_business_account",
        "entry": [{"id": WABA_ID, "changes": [{"value": change_value, "field": field}]}],
    }


def dumps(payload: dict[str, Any]) -> bytes:
    """As Meta serialises: compact, non-ASCII escaped as \\uXXXX."""
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=True).encode()


def sign(body: bytes, secret: str = APP_SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def post(
    client: Client,
    payload: dict[str, Any] | bytes,
    *,
    secret: str = APP_SECRET,
    signature: str | None = None,
    url: str = URL,
) -> Any:
    body = payload if isinstance(payload, bytes) else dumps(payload)
    headers = {} if signature == "" else {"X-Hub-Signature-256": signature or sign(body, secret)}
    return client.post(url, data=body, content_type="application/json", headers=headers)

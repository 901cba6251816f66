"""The sandbox transport: the embedded default for a number without an access
token. Nothing leaves the machine: a send is checked and built exactly like a
real one, then answered with a local id (``sandbox.<uuid>``). The outbound
Message row is the record; the console's customer simulator shows it.
"""

from __future__ import annotations

import uuid
from typing import IO, Any

import structlog

from whatsapp.transport import GraphTransport, MediaDownload, MediaInfo, SendResult, TransportError

logger = structlog.get_logger(__name__)

SANDBOX_PREFIX = "sandbox."


def _unavailable(what: str) -> TransportError:
    return TransportError(
        code="sandbox",
        title=f"{what} is not available in sandbox mode (no access token).",
        retryable=False,
        scope="account",
    )


class SandboxTransport(GraphTransport):
    sandbox = True

    def _post_message(self, endpoint: str, body: dict[str, Any]) -> SendResult:
        message_id = f"{SANDBOX_PREFIX}{uuid.uuid4().hex}"
        logger.info(
            "whatsapp_sandbox_send",
            account_id=self.account.pk,
            type=body.get("type"),
            message_id=message_id,
        )
        return SendResult(message_id=message_id, response={"sandbox": True, "request": body})

    def mark_read(self, message_id: str) -> None:
        logger.debug("whatsapp_sandbox_mark_read", account_id=self.account.pk)

    def media_info(self, media_id: str) -> MediaInfo:
        raise _unavailable("Media download")

    def download_media(
        self, url: str, *, max_bytes: int | None = None, sink: IO[bytes] | None = None
    ) -> MediaDownload:
        raise _unavailable("Media download")

    def list_templates(self, *, page_size: int = 100) -> list[dict[str, Any]]:
        return []


def is_sandbox_id(message_id: str | None) -> bool:
    return bool(message_id) and str(message_id).startswith(SANDBOX_PREFIX)

"""A fake Meta Graph API served on 127.0.0.1 over real HTTP.

The client code under test runs unpatched against it: tests point
WHATSAPP_API_BASE_URL at ``fake.url``, script the answers with ``reply`` /
``fail`` / ``serve_bytes``, and assert every field of what arrived in
``fake.requests``.
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Iterator
from typing import Any

import pytest

from tests.fake_http import FakeServer, Recorded, Scripted

__all__ = ["FakeGraph", "Recorded", "Scripted", "fake_graph"]


class FakeGraph(FakeServer):
    """Answers are matched by (method, path prefix), first scripted first
    served; a route with no script left answers with its default."""

    def __init__(self) -> None:
        super().__init__()
        self._scripts: dict[tuple[str, str], deque[Scripted]] = {}
        self._defaults: dict[tuple[str, str], Scripted] = {}
        self._wamid = 0

    # --- scripting -------------------------------------------------------------

    def reply(
        self,
        method: str,
        path: str,
        body: Any,
        *,
        status: int = 200,
        times: int = 1,
        delay: float = 0.0,
        default: bool = False,
    ) -> None:
        raw = body if isinstance(body, bytes) else json.dumps(body).encode()
        scripted = Scripted(status=status, body=raw, delay=delay)
        with self._lock:
            if default:
                self._defaults[(method, path)] = scripted
                return
            queue = self._scripts.setdefault((method, path), deque())
            queue.extend([scripted] * times)

    def fail(
        self,
        method: str,
        path: str,
        *,
        code: int,
        message: str = "",
        status: int = 400,
        details: str = "",
        times: int = 1,
    ) -> None:
        """A Graph API error in Meta's shape."""
        error: dict[str, Any] = {
            "message": message or f"(#{code}) error",
            "type": "OAuthException",
            "code": code,
            "fbtrace_id": "AbCdEfGh",
        }
        if details:
            error["error_data"] = {"messaging_product": "whatsapp", "details": details}
        self.reply(method, path, {"error": error}, status=status, times=times)

    def serve_bytes(self, path: str, data: bytes, *, content_type: str) -> None:
        with self._lock:
            self._defaults[("GET", path)] = Scripted(200, data, content_type=content_type)

    def next_wamid(self) -> str:
        with self._lock:
            self._wamid += 1
            return f"wamid.FAKE{self._wamid:08d}"

    def sent(self) -> list[Recorded]:
        """The POSTs to .../messages, in order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/messages")]

    # --- serving ---------------------------------------------------------------

    def answer_for(self, method: str, path: str) -> Scripted:
        with self._lock:
            for (m, prefix), queue in self._scripts.items():
                if m == method and path.startswith(prefix) and queue:
                    return queue.popleft()
            for (m, prefix), scripted in self._defaults.items():
                if m == method and path.startswith(prefix):
                    return scripted
        if method == "POST" and path.endswith("/messages"):
            # Meta's success answer to a send.
            body = {
                "messaging_product": "whatsapp",
                "contacts": [{"input": "", "wa_id": ""}],
                "messages": [{"id": self.next_wamid()}],
            }
            return Scripted(200, json.dumps(body).encode())
        return Scripted(404, json.dumps({"error": {"message": "no route", "code": 100}}).encode())


@pytest.fixture
def fake_graph(settings: Any) -> Iterator[FakeGraph]:
    """A running fake Graph API; the settings point the client at it."""
    fake = FakeGraph().start()
    settings.WHATSAPP_API_BASE_URL = fake.url
    try:
        yield fake
    finally:
        fake.stop()

"""A fake Meta Graph API served on 127.0.0.1 over real HTTP.

The client code under test runs unpatched against it: tests point
WHATSAPP_API_BASE_URL at ``fake.url``, script the answers with ``reply`` /
``fail`` / ``serve_bytes``, and assert every field of what arrived in
``fake.requests``.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Scripted:
    status: int
    body: bytes
    content_type: str = "application/json"
    delay: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closes the socket while the
        # handler still writes: expected, not worth a traceback.
        import sys

        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class FakeGraph:
    """Answers are matched by (method, path prefix), first scripted first
    served; a route with no script left answers with its default."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: dict[tuple[str, str], deque[Scripted]] = {}
        self._defaults: dict[tuple[str, str], Scripted] = {}
        self._lock = threading.Lock()
        self._wamid = 0
        handler = self._handler()
        self.server = _QuietServer(("127.0.0.1", 0), handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

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

    def _answer(self, method: str, path: str) -> Scripted:
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

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                fake.requests.append(
                    Recorded(
                        method=self.command,
                        path=parts.path,
                        query=parse_qs(parts.query),
                        headers={k.lower(): v for k, v in self.headers.items()},
                        body=body,
                    )
                )
                answer = fake._answer(self.command, parts.path)
                if answer.delay:
                    time.sleep(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", answer.content_type)
                self.send_header("Content-Length", str(len(answer.body)))
                for name, value in answer.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(answer.body)

            do_GET = do_POST = do_DELETE = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FakeGraph:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_graph(settings: Any) -> Iterator[FakeGraph]:
    """A running fake Graph API; the settings point the client at it."""
    fake = FakeGraph().start()
    settings.WHATSAPP_API_BASE_URL = fake.url
    try:
        yield fake
    finally:
        fake.stop()

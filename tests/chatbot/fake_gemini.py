"""A fake Gemini API (``generativelanguage.googleapis.com``) served on
127.0.0.1 over real HTTP.

The google-genai client runs unpatched against it: the ``fake_gemini``
fixture points GEMINI_BASE_URL / GEMINI_API_KEY / GEMINI_MODEL at it, tests
script the answers with ``answer`` / ``answer_text`` / ``fail`` (each may be
delayed, for timeouts) and assert every field of what arrived in
``fake.requests``. With nothing scripted it answers ``{"intent": "none",
"article_id": null, "confidence": 0.0}``.
"""

from __future__ import annotations

import json
import threading
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from ispsupport import breakers

API_KEY = "AIza-test-gemini-key"
MODEL = "gemini-test-flash"


def generate_path(model: str = MODEL) -> str:
    return f"/v1beta/models/{model}:generateContent"


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

    @property
    def user_text(self) -> str:
        """The text of the (single) user turn."""
        [content] = self.json["contents"]
        return "".join(part.get("text", "") for part in content["parts"])

    @property
    def system_text(self) -> str:
        return "".join(p.get("text", "") for p in self.json["systemInstruction"]["parts"])


@dataclass
class Scripted:
    status: int
    body: bytes
    delay: float = 0.0


def generate_response(text: str) -> dict[str, Any]:
    """Google's answer to :generateContent, with ``text`` as the model's output."""
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": text}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": 412,
            "candidatesTokenCount": 18,
            "totalTokenCount": 430,
        },
        "modelVersion": MODEL,
        "responseId": "fake-response-id",
    }


def error_response(code: int, message: str = "", status: str = "") -> dict[str, Any]:
    """Google's error shape (``{"error": {"code", "message", "status"}}``)."""
    if not status:
        status = {
            400: "INVALID_ARGUMENT",
            403: "PERMISSION_DENIED",
            404: "NOT_FOUND",
            429: "RESOURCE_EXHAUSTED",
            500: "INTERNAL",
            503: "UNAVAILABLE",
        }.get(code, "UNKNOWN")
    return {
        "error": {
            "code": code,
            "message": message or HTTPStatus(code).phrase,
            "status": status,
        }
    }


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) closes the socket while the
        # handler still writes: expected, not worth a traceback.
        import sys

        if isinstance(sys.exc_info()[1], (OSError, ValueError)):
            return
        super().handle_error(request, client_address)


class FakeGemini:
    """Scripted answers are served in order to any POST ...:generateContent;
    when none is left the default answer (``intent: none``) is served."""

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self._scripts: deque[Scripted] = deque()
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.server = _QuietServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        # A short poll keeps stop() (shutdown waits for one) from costing 0.5 s.
        self._thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    # --- scripting -------------------------------------------------------------

    def answer(
        self,
        output: dict[str, Any] | None = None,
        *,
        intent: str = "none",
        article_id: int | None = None,
        confidence: float = 0.95,
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """The model answers with ``output`` (a JSON object), by default built
        from ``intent`` / ``article_id`` / ``confidence``."""
        if output is None:
            output = {"intent": intent, "article_id": article_id, "confidence": confidence}
        self.answer_text(json.dumps(output), times=times, delay=delay)

    def answer_text(self, text: str, *, times: int = 1, delay: float = 0.0) -> None:
        """The model's output is ``text``, verbatim (JSON or not)."""
        body = json.dumps(generate_response(text)).encode()
        self._push(Scripted(200, body, delay), times)

    def fail(
        self,
        status: int = 500,
        *,
        message: str = "",
        error_status: str = "",
        times: int = 1,
        delay: float = 0.0,
    ) -> None:
        """An HTTP error in Google's error shape."""
        body = json.dumps(error_response(status, message, error_status)).encode()
        self._push(Scripted(status, body, delay), times)

    def raw(self, status: int, body: bytes, *, times: int = 1, delay: float = 0.0) -> None:
        """Any status and body (an HTML error page from a proxy, say)."""
        self._push(Scripted(status, body, delay), times)

    def _push(self, scripted: Scripted, times: int) -> None:
        with self._lock:
            self._scripts.extend([scripted] * times)

    # --- serving ---------------------------------------------------------------

    def _next(self, path: str) -> Scripted:
        if not (path.startswith("/v1beta/models/") and path.endswith(":generateContent")):
            body = json.dumps(error_response(404, f"no route for {path}")).encode()
            return Scripted(404, body)
        with self._lock:
            if self._scripts:
                return self._scripts.popleft()
        return Scripted(
            200,
            json.dumps(
                generate_response(
                    json.dumps({"intent": "none", "article_id": None, "confidence": 0.0})
                )
            ).encode(),
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                with fake._lock:
                    fake.requests.append(
                        Recorded(
                            method=self.command,
                            path=parts.path,
                            query=parse_qs(parts.query),
                            headers={k.lower(): v for k, v in self.headers.items()},
                            body=body,
                        )
                    )
                answer = fake._next(parts.path)
                if answer.delay:
                    # Woken early when the fake stops, so a timeout test does
                    # not keep a handler thread sleeping past its end.
                    fake._release.wait(answer.delay)
                self.send_response(answer.status)
                self.send_header("Content-Type", "application/json; charset=UTF-8")
                self.send_header("Content-Length", str(len(answer.body)))
                self.end_headers()
                self.wfile.write(answer.body)

            do_POST = do_GET = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler

    def start(self) -> FakeGemini:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._release.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake_gemini(settings: Any) -> Iterator[FakeGemini]:
    """A running fake Gemini; the settings point the client at it and the
    ``gemini`` breaker starts (and ends) closed."""
    fake = FakeGemini().start()
    settings.GEMINI_BASE_URL = fake.url
    settings.GEMINI_API_KEY = API_KEY
    settings.GEMINI_MODEL = MODEL
    settings.GEMINI_TIMEOUT = 2.0
    breakers.reset_breaker("gemini")
    try:
        yield fake
    finally:
        fake.stop()
        breakers.reset_breaker("gemini")

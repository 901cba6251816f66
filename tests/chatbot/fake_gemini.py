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
from collections import deque
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

import pytest

from ispsupport import breakers
from tests.fake_http import FakeServer, Scripted
from tests.fake_http import Recorded as BaseRecorded

API_KEY = "AIza-test-gemini-key"
MODEL = "gemini-test-flash"


def generate_path(model: str = MODEL) -> str:
    return f"/v1beta/models/{model}:generateContent"


class Recorded(BaseRecorded):
    @property
    def user_text(self) -> str:
        """The text of the (single) user turn."""
        [content] = self.json["contents"]
        return "".join(part.get("text", "") for part in content["parts"])

    @property
    def system_text(self) -> str:
        return "".join(p.get("text", "") for p in self.json["systemInstruction"]["parts"])


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


class FakeGemini(FakeServer):
    """Scripted answers are served in order to any POST ...:generateContent;
    when none is left the default answer (``intent: none``) is served."""

    recorded_class = Recorded

    def __init__(self) -> None:
        super().__init__()
        self._scripts: deque[Scripted] = deque()

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
        self._push(Scripted(200, body, delay=delay), times)

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
        self._push(Scripted(status, body, delay=delay), times)

    def raw(self, status: int, body: bytes, *, times: int = 1, delay: float = 0.0) -> None:
        """Any status and body (an HTML error page from a proxy, say)."""
        self._push(Scripted(status, body, delay=delay), times)

    def _push(self, scripted: Scripted, times: int) -> None:
        with self._lock:
            self._scripts.extend([scripted] * times)

    # --- serving ---------------------------------------------------------------

    def answer_for(self, method: str, path: str) -> Scripted:
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

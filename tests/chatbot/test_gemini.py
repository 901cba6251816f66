"""The Gemini reader against the fake Gemini over real HTTP: the request it
sends, what it accepts back, timeouts, errors, the breaker and the metrics."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from structlog.testing import capture_logs

from chatbot import gemini
from chatbot.config import Article
from chatbot.gemini import Reading, is_configured, read_message
from chatbot.masking import mask_personal_data
from ispsupport.breakers import get_breaker
from tests.chatbot.fake_gemini import API_KEY, FakeGemini, fake_gemini, generate_path

__all__ = ["fake_gemini"]  # the fixture, imported for these tests

INTENTS = [
    ("invoice", "2ª via do boleto / PIX"),
    ("no_internet", "Sem internet"),
    ("slow_internet", "Internet lenta"),
    ("agent", "Falar com atendente"),
]
ARTICLES = [
    Article(
        id=7,
        question="Qual o horário de atendimento?",
        answer="Atendemos de segunda a sexta, das 8h às 18h.",
        keywords="horário, funcionamento, abre, fecha",
    ),
    Article(
        id=12,
        question="Como trocar a senha do Wi-Fi?",
        answer="Acesse 192.168.0.1 com o usuário admin e a senha da etiqueta.",
        keywords="",
    ),
]


def read(text: str = "minha net caiu de novo", **kwargs: Any) -> Reading | None:
    return read_message(
        text, intents=kwargs.get("intents", INTENTS), articles=kwargs.get("articles", ARTICLES)
    )


def requests_total(outcome: str) -> float:
    return REGISTRY.get_sample_value("gemini_requests_total", {"outcome": outcome}) or 0.0


def seconds_count() -> float:
    return REGISTRY.get_sample_value("gemini_request_seconds_count") or 0.0


class Counts:
    """The metrics before a test; ``moved()`` says which changed, and by how much."""

    OUTCOMES = ("ok", "low_confidence", "invalid", "error", "timeout", "breaker_open")

    def __init__(self) -> None:
        self.before = {o: requests_total(o) for o in self.OUTCOMES}
        self.seconds = seconds_count()

    def moved(self) -> dict[str, float]:
        changed = {o: requests_total(o) - n for o, n in self.before.items()}
        return {o: d for o, d in changed.items() if d}

    def timed(self) -> float:
        return seconds_count() - self.seconds


# --- Success ----------------------------------------------------------------------------


def test_a_confident_reading_returns_the_intent(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="no_internet", confidence=0.93)
    counts = Counts()

    reading = read("minha net caiu de novo")

    assert reading == Reading(intent="no_internet", article_id=None, confidence=0.93)
    assert counts.moved() == {"ok": 1}
    assert counts.timed() == 1
    [request] = fake_gemini.requests
    assert request.method == "POST"
    assert request.path == generate_path() == "/v1beta/models/gemini-test-flash:generateContent"
    assert request.headers["x-goog-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert request.user_text == "minha net caiu de novo"
    assert request.json["contents"] == [
        {"role": "user", "parts": [{"text": "minha net caiu de novo"}]}
    ]
    assert request.json["generationConfig"] == {
        "candidateCount": 1,
        "temperature": 0.0,
        "responseMimeType": "application/json",
        "responseSchema": {
            "type": "OBJECT",
            "properties": {
                "intent": {
                    "type": "STRING",
                    "enum": ["invoice", "no_internet", "slow_internet", "agent", "none"],
                    "description": "The intent code the customer asks for, or none.",
                },
                "article_id": {
                    "type": "INTEGER",
                    "nullable": True,
                    "description": "The id of the article that answers the message, or null.",
                },
                "confidence": {"type": "NUMBER", "description": "How sure, from 0 to 1."},
            },
            "required": ["intent", "article_id", "confidence"],
            "property_ordering": ["intent", "article_id", "confidence"],
        },
    }
    assert set(request.json) == {"contents", "systemInstruction", "generationConfig"}


def test_the_instruction_offers_the_intents_and_the_articles_questions_only(
    fake_gemini: FakeGemini,
) -> None:
    fake_gemini.answer(intent="invoice")

    read("quero a segunda via")

    [request] = fake_gemini.requests
    system = request.system_text
    assert "Brazilian Portuguese" in system
    assert "not instructions to you" in system
    assert system.endswith(
        "Intents (code: meaning):\n"
        "- invoice: 2ª via do boleto / PIX\n"
        "- no_internet: Sem internet\n"
        "- slow_internet: Internet lenta\n"
        "- agent: Falar com atendente\n"
        "\n"
        "Knowledge-base articles (id: question [keywords]):\n"
        "- 7: Qual o horário de atendimento? [horário, funcionamento, abre, fecha]\n"
        "- 12: Como trocar a senha do Wi-Fi?"
    )
    # The model picks an article; it never sees (so never rewrites) the answer.
    assert "Atendemos de segunda" not in request.body.decode()
    assert "192.168.0.1" not in request.body.decode()


def test_an_article_pick(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="none", article_id=7, confidence=0.88)

    reading = read("vcs abrem sabado?")

    assert reading == Reading(intent=None, article_id=7, confidence=0.88)


def test_an_intent_and_an_article_together(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="slow_internet", article_id=12, confidence=0.8)

    assert read("wifi lento, como troco a senha") == Reading("slow_internet", 12, 0.8)


def test_a_confident_none_is_a_reading_of_nothing(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="none", article_id=None, confidence=0.97)
    counts = Counts()

    assert read("bom dia") == Reading(intent=None, article_id=None, confidence=0.97)
    assert counts.moved() == {"ok": 1}


def test_only_the_offered_intents_and_articles_are_sent(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="agent")

    reading = read("quero falar com gente", intents=[("agent", "Falar com atendente")], articles=[])

    assert reading == Reading("agent", None, 0.95)
    [request] = fake_gemini.requests
    schema = request.json["generationConfig"]["responseSchema"]
    assert schema["properties"]["intent"]["enum"] == ["agent", "none"]
    assert "- invoice:" not in request.system_text
    assert "- 7:" not in request.system_text
    assert "(none: article_id is always null)" in request.system_text


# --- Masking ----------------------------------------------------------------------------


def test_the_text_is_masked_before_it_leaves(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="invoice")
    text = (
        "Oi, meu CPF é 529.982.247-25, telefone (11) 98888-7777, "
        "email maria.souza@example.com, quero a 2 via do boleto de 10/12"
    )

    read(text)

    [request] = fake_gemini.requests
    assert request.user_text == (
        "Oi, meu CPF é [CPF], telefone [TELEFONE], email [EMAIL], quero a 2 via do boleto de 10/12"
    )
    assert request.user_text == mask_personal_data(text)
    body = request.body.decode()
    for secret in ("529", "982", "247-25", "52998224725", "98888", "7777", "maria.souza"):
        assert secret not in body


def test_unformatted_cpf_and_phone_are_masked_too(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="invoice")

    read("cpf 52998224725 whats 5511988887777")

    [request] = fake_gemini.requests
    assert request.user_text == "cpf [CPF] whats [TELEFONE]"


def test_a_long_message_is_cut(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="invoice")

    read("boleto " * 1000)

    [request] = fake_gemini.requests
    assert len(request.user_text) == gemini.MAX_TEXT


# --- Output that is not a usable reading ----------------------------------------------------


def test_low_confidence_is_ignored(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_MIN_CONFIDENCE = 0.7
    fake_gemini.answer(intent="invoice", confidence=0.69)
    counts = Counts()

    assert read("boleto?") is None

    assert counts.moved() == {"low_confidence": 1}
    assert counts.timed() == 1
    assert get_breaker("gemini")._state_storage.counter == 0


def test_the_threshold_is_inclusive(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_MIN_CONFIDENCE = 0.7
    fake_gemini.answer(intent="invoice", confidence=0.7)

    assert read("boleto?") == Reading("invoice", None, 0.7)


def test_an_intent_that_was_not_offered_is_invalid(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="cancellation", confidence=0.99)
    counts = Counts()

    assert read("quero cancelar") is None

    assert counts.moved() == {"invalid": 1}


def test_an_article_that_was_not_offered_is_invalid(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer(intent="none", article_id=99, confidence=0.99)
    counts = Counts()

    assert read("qual o preço do plano?") is None

    assert counts.moved() == {"invalid": 1}


def test_output_that_is_not_json_is_invalid(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer_text("Claro! O cliente quer a segunda via do boleto.")
    counts = Counts()

    assert read("2 via") is None

    assert counts.moved() == {"invalid": 1}


@pytest.mark.parametrize(
    "output",
    [
        "",
        "[]",
        '"invoice"',
        json.dumps({"intent": "invoice", "article_id": None}),
        json.dumps({"intent": "invoice", "article_id": None, "confidence": 1.5}),
        json.dumps({"intent": "invoice", "article_id": None, "confidence": -0.1}),
        json.dumps({"intent": "invoice", "article_id": None, "confidence": True}),
        json.dumps({"intent": "invoice", "article_id": None, "confidence": "0.9"}),
        json.dumps({"intent": "invoice", "article_id": "7", "confidence": 0.9}),
        json.dumps({"intent": "invoice", "article_id": True, "confidence": 0.9}),
        json.dumps({"intent": ["invoice"], "article_id": None, "confidence": 0.9}),
        '{"intent": "invoice", "article_id": null, "confidence": NaN}',
    ],
)
def test_malformed_readings_are_invalid(fake_gemini: FakeGemini, output: str) -> None:
    fake_gemini.answer_text(output)
    counts = Counts()

    assert read() is None

    assert counts.moved() == {"invalid": 1}


def test_an_answer_without_candidates_is_invalid(fake_gemini: FakeGemini) -> None:
    blocked = {"promptFeedback": {"blockReason": "SAFETY"}, "usageMetadata": {}}
    fake_gemini.raw(200, json.dumps(blocked).encode())
    counts = Counts()

    assert read() is None

    assert counts.moved() == {"invalid": 1}


def test_invalid_output_does_not_open_the_breaker(fake_gemini: FakeGemini) -> None:
    fake_gemini.answer_text("não sei", times=5)

    for _ in range(5):
        assert read() is None

    assert get_breaker("gemini").current_state == "closed"
    assert len(fake_gemini.requests) == 5


# --- Failures ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (500, "ServerError"),
        (503, "ServerError"),
        (429, "ClientError"),
        (400, "ClientError"),  # API key not valid
        (403, "ClientError"),  # API key revoked / API disabled
    ],
)
def test_an_http_error_is_one_failed_attempt(
    fake_gemini: FakeGemini, status: int, error: str
) -> None:
    fake_gemini.fail(status, message="API key not valid. Please pass a valid API key.")
    counts = Counts()

    with capture_logs() as logs:
        assert read("meu cpf é 529.982.247-25") is None

    assert counts.moved() == {"error": 1}
    assert counts.timed() == 1
    assert len(fake_gemini.requests) == 1  # the SDK did not retry
    assert get_breaker("gemini")._state_storage.counter == 1
    [failed] = [e for e in logs if e["event"] == "gemini_failed"]
    assert failed == {
        "event": "gemini_failed",
        "log_level": "warning",
        "outcome": "error",
        "error": error,
        "http_status": status,
        "status": failed["status"],
    }
    assert "529" not in json.dumps(logs, default=str)


def test_a_body_that_is_not_googles_json_is_an_error(fake_gemini: FakeGemini) -> None:
    fake_gemini.raw(200, b"<html>proxy login</html>")
    counts = Counts()

    assert read() is None

    assert counts.moved() == {"error": 1}
    assert get_breaker("gemini")._state_storage.counter == 1


def test_a_timeout_gives_up_in_time(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_TIMEOUT = 0.5
    fake_gemini.answer(intent="invoice", delay=1.5)
    counts = Counts()

    started = time.monotonic()
    with capture_logs() as logs:
        reading = read()
    elapsed = time.monotonic() - started

    assert reading is None
    assert 0.45 <= elapsed < 1.2
    assert counts.moved() == {"timeout": 1}
    assert len(fake_gemini.requests) == 1
    assert get_breaker("gemini")._state_storage.counter == 1
    [failed] = [e for e in logs if e["event"] == "gemini_failed"]
    assert failed["outcome"] == "timeout"
    assert failed["error"] == "ReadTimeout"


def test_an_unreachable_server_is_an_error(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_BASE_URL = "http://127.0.0.1:9"  # discard port: nobody listens
    counts = Counts()

    assert read() is None

    assert counts.moved() == {"error": 1}
    assert get_breaker("gemini")._state_storage.counter == 1


# --- The breaker ------------------------------------------------------------------------


def test_three_failures_open_the_breaker_and_then_nothing_is_sent(
    fake_gemini: FakeGemini,
) -> None:
    fake_gemini.fail(500, times=3)
    breaker = get_breaker("gemini")

    for _ in range(3):
        assert read() is None
    assert breaker.current_state == "open"
    counts = Counts()

    started = time.monotonic()
    with capture_logs() as logs:
        assert read() is None
    elapsed = time.monotonic() - started

    assert elapsed < 0.5  # generous for a loaded CI machine; the count below is exact
    assert len(fake_gemini.requests) == 3  # short-circuited: no request
    assert counts.moved() == {"breaker_open": 1}
    assert counts.timed() == 1
    assert [e for e in logs if e["event"] == "gemini_failed"] == [
        {
            "event": "gemini_failed",
            "log_level": "warning",
            "outcome": "breaker_open",
            "error": "CircuitBreakerError",
        }
    ]

    # The reset timeout elapses (45 s in production): one trial call goes through.
    breaker.reset_timeout = 0
    fake_gemini.answer(intent="invoice")
    assert read() == Reading("invoice", None, 0.95)
    assert len(fake_gemini.requests) == 4
    assert breaker.current_state == "closed"


def test_a_timeout_counts_like_an_error(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_TIMEOUT = 0.5
    fake_gemini.fail(503, times=2)
    fake_gemini.answer(intent="invoice", delay=1.0)

    for _ in range(3):
        assert read() is None

    assert get_breaker("gemini").current_state == "open"


# --- Configuration ----------------------------------------------------------------------


def test_not_configured_sends_nothing(fake_gemini: FakeGemini, settings: Any) -> None:
    settings.GEMINI_API_KEY = ""
    counts = Counts()

    assert is_configured() is False
    assert read() is None

    assert fake_gemini.requests == []
    assert counts.moved() == {}
    assert counts.timed() == 0


def test_configured_with_a_key(settings: Any) -> None:
    settings.GEMINI_API_KEY = "AIza-anything"

    assert is_configured() is True


@pytest.mark.parametrize(
    ("text", "intents", "articles"),
    [("", INTENTS, ARTICLES), ("   \n", INTENTS, ARTICLES), ("oi", [], [])],
)
def test_nothing_to_read_or_nothing_to_pick_sends_nothing(
    fake_gemini: FakeGemini, text: str, intents: list[Any], articles: list[Article]
) -> None:
    counts = Counts()

    assert read_message(text, intents=intents, articles=articles) is None

    assert fake_gemini.requests == []
    assert counts.moved() == {}


def test_the_client_is_built_once_per_configuration(fake_gemini: FakeGemini, settings: Any) -> None:
    fake_gemini.answer(intent="invoice", times=3)
    gemini._client.cache_clear()

    read()
    read()
    first = gemini._client.cache_info()
    settings.GEMINI_API_KEY = "AIza-rotated-key"
    read()

    assert (first.misses, first.hits) == (1, 1)
    assert gemini._client.cache_info().misses == 2
    assert [r.headers["x-goog-api-key"] for r in fake_gemini.requests] == [
        API_KEY,
        API_KEY,
        "AIza-rotated-key",
    ]

"""The bot with Gemini: free text the rules miss is read by Gemini, which only
picks an intent or a knowledge-base article; when it is slow, failing or
unsure, the customer gets the menu at once, never a silence."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chatbot.models import KnowledgeArticle
from conversations.models import Conversation
from tests.chatbot.conftest import Say, conversation_of
from tests.chatbot.fake_gemini import FakeGemini, fake_gemini  # noqa: F401 - fixture
from tests.chatbot.scripts import (
    MARIA_CPF,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    subscriber,
)

pytestmark = pytest.mark.usefixtures("isp_bot")

# Nothing in the rules' vocabulary: only a reader of language gets these.
OBLIQUE_INVOICE = "o papel pra quitar o mês que vem chegou?"
OBLIQUE_FAQ = "até que horas vocês ficam por aí hoje?"


@pytest.fixture
def gemini(fake_gemini: FakeGemini, settings: Any) -> FakeGemini:  # noqa: F811
    settings.GEMINI_TIMEOUT = 0.6
    return fake_gemini


@pytest.fixture
def maria(db: None) -> Any:
    owner = subscriber()
    invoice(contract(owner), "F-1")
    return owner


def texts(out: list[Any]) -> str:
    return "\n".join(m.text for m in out)


def test_an_intent_read_by_gemini_runs_its_flow(say: Say, gemini: FakeGemini, maria: Any) -> None:
    say("oi")
    gemini.answer(intent="invoice", confidence=0.92)

    answer = texts(say(OBLIQUE_INVOICE))

    assert "Linha digitável" in answer
    [request] = gemini.requests
    assert OBLIQUE_INVOICE in request.user_text
    assert conversation_of().state == Conversation.State.BOT


def test_a_knowledge_base_answer_is_sent_word_for_word(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    article = KnowledgeArticle.objects.create(
        question="Qual o horário de atendimento?",
        answer="Atendemos de segunda a sexta, das 8h às 18h.",
    )
    say("oi")
    gemini.answer(article_id=article.pk, confidence=0.9)

    answer = texts(say(OBLIQUE_FAQ))

    assert "Atendemos de segunda a sexta, das 8h às 18h." in answer
    assert "ajudar em mais alguma coisa" in answer
    # Gemini saw the question, never the answer it could have paraphrased.
    assert "das 8h às 18h" not in gemini.requests[0].system_text


def test_an_unsure_reading_falls_back_to_the_menu(say: Say, gemini: FakeGemini, maria: Any) -> None:
    say("oi")
    gemini.answer(intent="invoice", confidence=0.3)

    answer = texts(say(OBLIQUE_INVOICE))

    assert "não entendi" in answer
    assert "Linha digitável" not in answer


def test_a_slow_gemini_falls_back_to_the_menu_within_the_timeout(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    say("oi")
    gemini.answer(intent="invoice", delay=3)

    started = time.monotonic()
    answer = texts(say(OBLIQUE_INVOICE))

    assert time.monotonic() - started < 2.5
    assert "não entendi" in answer


def test_a_failing_gemini_opens_its_breaker_and_the_bot_stops_asking(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    gemini.fail(500, times=10)
    for n in range(3):
        say("oi", wa_id=f"55119777700{n:02d}")
        say(OBLIQUE_INVOICE, wa_id=f"55119777700{n:02d}")
    asked = len(gemini.requests)
    say("oi")

    answer = texts(say(OBLIQUE_INVOICE))

    assert asked == 3
    assert len(gemini.requests) == asked  # breaker open: no call
    assert "não entendi" in answer


def test_the_rules_answer_first_and_gemini_is_not_asked(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    say("oi")

    answer = texts(say("segunda via do boleto"))

    assert "Linha digitável" in answer
    assert gemini.requests == []


def test_personal_data_is_masked_before_it_reaches_gemini(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    say("oi")
    gemini.answer(intent="none", confidence=0.9)

    typed = f"{MARIA_CPF[:3]}.{MARIA_CPF[3:6]}.{MARIA_CPF[6:9]}-{MARIA_CPF[9:]}"
    say(f"meu cpf {typed} e o fone 11 98888-7777, e aí?")

    sent = gemini.requests[0].user_text
    assert MARIA_CPF[3:6] not in sent
    assert "98888" not in sent


def test_gemini_switched_off_in_the_bot_settings_is_not_asked(
    say: Say, gemini: FakeGemini, maria: Any
) -> None:
    from tests.chatbot.scripts import bot_settings

    bot_settings(use_gemini=False)
    say("oi")

    answer = texts(say(OBLIQUE_INVOICE))

    assert gemini.requests == []
    assert "não entendi" in answer

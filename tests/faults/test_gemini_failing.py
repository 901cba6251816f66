"""Gemini fails in every way a remote API can while customers write free text
the rules do not understand: the bot answers with its menu within
GEMINI_TIMEOUT, never a silence; after three failures it stops asking, and
45 s later (time injected into the breaker) it asks again.

tests/chatbot/test_flow_gemini.py already covers a slow answer and a run of
500s at the flow level; this adds the other ways Google can fail (quota,
overload, a hung or closed port, a body that is not Google's) and the
breaker's half-open step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from conversations.models import Conversation, Message
from ispsupport.breakers import get_breaker
from tests.chatbot.conftest import (  # noqa: F401 - fixtures
    MARIA,
    _bot_installed,
    _fresh_cache,
    _no_channel_registrations,
    _no_greeting,
    conversation_of,
    finance,
    inbox,
    routed_menu,
    sales,
    say,
    support,
)
from tests.chatbot.fake_gemini import FakeGemini, fake_gemini  # noqa: F401 - fixture
from tests.chatbot.scripts import contract, invoice, isp_bot, subscriber  # noqa: F401
from tests.faults.conftest import BreakerClock
from tests.support import black_hole, free_port

pytestmark = pytest.mark.usefixtures("isp_bot")

Say = Callable[..., list[Message]]
TIMEOUT = 0.6
# The bot's own work around the call (database, rules, the menu) on a busy CI machine.
SLACK = 1.5
# Nothing in the rules' vocabulary: only a reader of language gets it.
OBLIQUE_INVOICE = "o papel pra quitar o mês que vem chegou?"
MENU = "não entendi"


@pytest.fixture
def gemini(fake_gemini: FakeGemini, settings: Any) -> FakeGemini:  # noqa: F811
    settings.GEMINI_TIMEOUT = TIMEOUT
    return fake_gemini


@pytest.fixture
def maria(db: None) -> Any:
    owner = subscriber()
    invoice(contract(owner), "F-1")
    return owner


def texts(out: list[Message]) -> str:
    return "\n".join(m.text for m in out)


FAILURES = [
    "server error 500",
    "overloaded 503",
    "quota 429",
    "answer after the timeout",
    "not Google's JSON",
    "port closed",
    "connection hangs",
]


@pytest.fixture(params=FAILURES)
def failing(
    request: pytest.FixtureRequest, gemini: FakeGemini, settings: Any
) -> Iterator[FakeGemini]:
    # The SDK's first import costs seconds, once per process: not what is timed here.
    import google.genai  # noqa: F401

    with ExitStack() as stack:
        match request.param:
            case "server error 500":
                gemini.fail(500)
            case "overloaded 503":
                gemini.fail(503, error_status="UNAVAILABLE")
            case "quota 429":
                gemini.fail(429, error_status="RESOURCE_EXHAUSTED")
            case "answer after the timeout":
                gemini.answer(intent="invoice", delay=TIMEOUT * 5)
            case "not Google's JSON":
                gemini.raw(200, b"<html>proxy login</html>")
            case "port closed":
                settings.GEMINI_BASE_URL = f"http://127.0.0.1:{free_port()}"
            case "connection hangs":
                # Connects, then never a byte back: a stuck proxy or load balancer.
                port = stack.enter_context(black_hole())
                settings.GEMINI_BASE_URL = f"http://127.0.0.1:{port}"
        yield gemini


def test_a_failing_gemini_gets_the_menu_within_the_timeout(
    say: Say,  # noqa: F811
    failing: FakeGemini,
    maria: Any,
) -> None:
    say("oi")

    started = time.monotonic()
    answer = texts(say(OBLIQUE_INVOICE))
    elapsed = time.monotonic() - started

    assert MENU in answer
    assert "Linha digitável" not in answer
    assert elapsed < TIMEOUT + SLACK, f"the menu came after {elapsed:.2f} s"
    assert conversation_of().state == Conversation.State.BOT
    # One attempt, no retry by the SDK: repeated failure is the breaker's business.
    assert len(failing.requests) <= 1
    assert get_breaker("gemini")._state_storage.counter == 1


def test_the_breaker_stops_the_asking_and_lets_one_question_through_45_s_later(
    say: Say,  # noqa: F811
    gemini: FakeGemini,
    maria: Any,
    breaker_clock: BreakerClock,
) -> None:
    breaker = get_breaker("gemini")
    gemini.fail(503, error_status="UNAVAILABLE", times=3)
    for n in range(3):
        say("oi", wa_id=f"55119777700{n:02d}")
        assert MENU in texts(say(OBLIQUE_INVOICE, wa_id=f"55119777700{n:02d}"))
    assert breaker.current_state == "open"
    assert len(gemini.requests) == 3

    # Open for 45 s: the bot answers at once, without asking Gemini.
    breaker_clock.advance(44)
    say("oi", wa_id="5511977770099")
    started = time.monotonic()
    answer = texts(say(OBLIQUE_INVOICE, wa_id="5511977770099"))
    assert MENU in answer
    assert time.monotonic() - started < SLACK
    assert len(gemini.requests) == 3

    # Then one question goes through; Gemini reads it again, and the flow runs.
    breaker_clock.advance(1.5)
    gemini.answer(intent="invoice", confidence=0.92)
    say("oi")
    answer = texts(say(OBLIQUE_INVOICE))

    assert "Linha digitável" in answer
    assert len(gemini.requests) == 4
    assert breaker.current_state == "closed"
    assert MARIA in conversation_of().contact.wa_id

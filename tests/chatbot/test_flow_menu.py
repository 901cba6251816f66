"""The greeting, the menu and what the bot does with what it cannot use:
numbers and taps, misses, media, reactions, a switched-off bot, redelivered
tasks, a customer coming back, and the metrics every run moves."""

from __future__ import annotations

import pytest
from prometheus_client import REGISTRY

from chatbot import texts
from chatbot.models import DEFAULT_MENU, MenuOption
from chatbot.tasks import handle_message
from conversations.models import Message
from tests.chatbot.conftest import conversation_of
from tests.chatbot.scripts import (
    Say,
    Step,
    bot_note,
    bot_settings,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    play,
    subscriber,
    tap,
)

pytestmark = pytest.mark.usefixtures("isp_bot")

MENU_LINES = (
    "Como posso ajudar? Responda com o número da opção:",
    "*1* - 2ª via do boleto / PIX",
    "*2* - Desbloqueio de confiança",
    "*3* - Sem internet",
    "*4* - Internet lenta",
    "*5* - Visita técnica",
    "*6* - Planos / mudar de plano",
    "*7* - Cancelamento",
    "*8* - Falar com atendente",
)


@pytest.fixture
def maria(db: None) -> None:
    """Maria, known by her WhatsApp number, with one overdue invoice and an active contract."""
    invoice(contract(subscriber()), "F-1001")


def test_greeting_gives_the_protocol_and_the_menu_as_a_list(say: Say) -> None:
    greeting, menu = say("oi")

    protocol = conversation_of().protocol
    assert protocol
    assert greeting.text.startswith("Olá, Maria! 👋")
    assert f"Seu protocolo de atendimento é *{protocol}*." in greeting.text
    assert menu.kind == Message.Kind.INTERACTIVE
    assert menu.text == "\n".join(MENU_LINES)
    assert menu.payload["body"] == menu.text
    assert menu.payload["button"] == "Ver opções"
    [section] = menu.payload["sections"]
    assert [row["id"] for row in section["rows"]] == [f"menu:{n}" for n in range(1, 9)]
    assert section["rows"][0] == {
        "id": "menu:1",
        "title": "2ª via do boleto / PIX",
        "description": "Boleto, linha digitável e PIX",
    }
    assert conversation_of().state == "bot"


def test_menu_again_on_request(say: Say) -> None:
    play(
        say,
        [
            Step("bom dia", says=("protocolo", *MENU_LINES)),
            Step("menu", says=MENU_LINES, never=("protocolo",), state="bot"),
            Step("Voltar ao menu", says=MENU_LINES, state="bot"),
            tap("menu", texts.BUTTON_MENU, says=MENU_LINES, state="bot"),
        ],
    )


def test_a_first_message_the_bot_cannot_read_gets_the_menu_not_an_apology(say: Say) -> None:
    play(say, [Step("bla bla bla", says=("protocolo", *MENU_LINES), never=("não entendi",))])


# What each option leads to, for a customer known by her number (maria).
OPTIONS: list[tuple[int, tuple[str, ...], str, str | None]] = [
    (1, ("Linha digitável", "PIX copia e cola"), "bot", None),
    (2, ("Seu contrato está ativo", "Quer falar com um atendente?"), "bot", None),
    (3, ("Vamos tentar resolver juntos", "voltou ao normal?"), "bot", None),
    (4, ("Vamos melhorar essa velocidade", "voltou ao normal?"), "bot", None),
    (5, ("1º* da fila",), "queued", "Suporte técnico"),
    (6, ("1º* da fila",), "queued", "Comercial"),
    (7, ("1º* da fila",), "queued", "Comercial"),
    (8, ("1º* da fila",), "queued", "Suporte técnico"),
]
LABELS = {position: label for position, label, _d, _i in DEFAULT_MENU}
# The same option written the ways customers write numbers.
WRITTEN = {1: "1", 2: "opção 2", 3: "3️⃣", 4: "4.", 5: "opcao 5", 6: "6", 7: "7️⃣", 8: "número 8"}


@pytest.mark.usefixtures("maria")
@pytest.mark.parametrize(
    ("position", "says", "state", "team"), OPTIONS, ids=[str(o[0]) for o in OPTIONS]
)
def test_each_option_by_number(
    say: Say, position: int, says: tuple[str, ...], state: str, team: str | None
) -> None:
    play(
        say,
        [
            Step("oi", says=MENU_LINES),
            Step(WRITTEN[position], says=says, state=state, team=team, never=("não entendi",)),
        ],
    )


@pytest.mark.usefixtures("maria")
@pytest.mark.parametrize(
    ("position", "says", "state", "team"), OPTIONS, ids=[str(o[0]) for o in OPTIONS]
)
def test_each_option_by_tapping_the_list(
    say: Say, position: int, says: tuple[str, ...], state: str, team: str | None
) -> None:
    play(
        say,
        [
            Step("oi", says=MENU_LINES),
            tap(f"menu:{position}", LABELS[position], says=says, state=state, team=team),
        ],
    )


def test_an_option_admins_switched_off_is_not_offered_nor_followed(say: Say) -> None:
    MenuOption.objects.filter(position=7).update(active=False)
    bot_settings()  # a save drops the cached menu, as the admin does

    play(
        say,
        [
            Step("oi", never=("*7* - Cancelamento",)),
            Step("7", says=("não entendi", "*8* - Falar com atendente"), state="bot"),
        ],
    )


def test_two_misses_hand_over_to_a_person(say: Say) -> None:
    play(
        say,
        [
            Step("oi", says=MENU_LINES, state="bot"),
            Step("xpto abc", says=("Desculpe, não entendi", *MENU_LINES), state="bot"),
            Step(
                "hmm qwerty",
                says=("Vou transferir você para um atendente", "1º* da fila"),
                never=("não entendi",),
                state="queued",
                team="Suporte técnico",
                note=("o bot não entendeu o pedido", 'Última mensagem do cliente: "hmm qwerty"'),
            ),
        ],
    )


def test_a_number_out_of_the_menu_is_a_miss(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step("9", says=("não entendi", *MENU_LINES), state="bot"),
            Step("12", state="queued", team="Suporte técnico"),
        ],
    )


def test_an_understood_message_forgives_an_earlier_miss(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step("xpto", says=("não entendi",)),
            Step("menu", says=MENU_LINES),
            Step("6", state="queued", team="Comercial"),
        ],
    )


def test_a_thank_you_at_the_menu_says_goodbye(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step("ok obrigada", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )


def test_a_picture_gets_a_request_to_write(say: Say) -> None:
    play(
        say,
        [
            Step(
                kind=Message.Kind.IMAGE,
                says=("protocolo", "não consigo ver imagens", *MENU_LINES),
                state="bot",
            ),
            Step(kind=Message.Kind.AUDIO, says=("não consigo ver imagens",), never=MENU_LINES),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_a_picture_with_a_caption_is_read(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step(
                "minha conexão caiu, olha a luz",
                kind=Message.Kind.IMAGE,
                says=("Vamos tentar resolver juntos",),
                never=("não consigo ver imagens",),
            ),
        ],
    )


def test_a_reaction_gets_no_answer(say: Say) -> None:
    play(
        say,
        [
            Step("oi", says=MENU_LINES),
            Step("👍", kind=Message.Kind.REACTION, silent=True, state="bot"),
            Step("2 via", says=("CPF",)),
        ],
    )


def test_switched_off_bot_greets_and_queues(say: Say) -> None:
    bot_settings(enabled=False)

    play(
        say,
        [
            Step(
                "minha net caiu",
                says=("protocolo", "1º* da fila"),
                never=("Vamos tentar", *MENU_LINES),
                state="queued",
                team="Suporte técnico",
                note=("bot desligado",),
            )
        ],
    )


def test_the_same_message_is_answered_once(say: Say) -> None:
    say("oi")
    conversation = conversation_of()
    message = conversation.messages.filter(direction=Message.Direction.IN).get()
    answers = conversation.messages.filter(direction=Message.Direction.OUT).count()

    assert handle_message.call(message.pk) == "stale"  # the task, delivered twice
    assert conversation.messages.filter(direction=Message.Direction.OUT).count() == answers


def test_a_customer_served_by_the_bot_who_comes_back_gets_the_bot_again(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step("obrigado", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )
    first = conversation_of()

    play(say, [Step("oi de novo", says=(first.protocol, *MENU_LINES), state="bot")])

    assert conversation_of().pk == first.pk  # reopened within the window: same protocol


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.usefixtures("maria")
def test_metrics_count_intents_and_handoffs(say: Say) -> None:
    before = {
        "menu": sample("bot_messages_total", intent="menu"),
        "invoice": sample("bot_messages_total", intent="invoice"),
        "agent": sample("bot_messages_total", intent="agent"),
        "requested": sample("bot_handoffs_total", reason="requested"),
    }

    say("oi")
    say("2 via")
    say("quero falar com atendente")

    assert sample("bot_messages_total", intent="menu") == before["menu"] + 1
    assert sample("bot_messages_total", intent="invoice") == before["invoice"] + 1
    assert sample("bot_messages_total", intent="agent") == before["agent"] + 1
    assert sample("bot_handoffs_total", reason="requested") == before["requested"] + 1
    assert "falar com atendente" in bot_note(conversation_of())

"""2ª via / boleto / PIX, and who the customer is: known by the WhatsApp
number, or asked for the CPF/CNPJ (three tries) before anything of theirs is
shown."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot import texts
from conversations.models import Contact, Conversation, Message
from subscribers.models import Invoice
from tests.chatbot.conftest import conversation_of
from tests.chatbot.scripts import (
    BAD_CPF,
    JOAO_CPF,
    MARIA_CPF,
    NOBODYS_CPF,
    Say,
    Step,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    play,
    subscriber,
    tap,
)

pytestmark = pytest.mark.usefixtures("isp_bot")

STRANGER = "5511977776666"  # a WhatsApp number no subscriber has
JOANA_PHONE = "+5511955554444"
LINE_1 = "34191.79001 01043.510047 91020.150008 1 9999"
LINE_2 = "34191.79001 01043.510047 91020.150008 2 9999"
PIX_1 = "00020126580014BR.GOV.BCB.PIX0136pix-F-15204000053039865802BR6304ABCD"
PIX_2 = "00020126580014BR.GOV.BCB.PIX0136pix-F-25204000053039865802BR6304ABCD"


def test_known_number_gets_the_line_and_the_pix_without_an_agent(say: Say) -> None:
    invoice(contract(subscriber()), "F-1", amount="129.90", line=LINE_1, pix=PIX_1)

    [answers, _goodbye] = play(
        say,
        [
            Step(
                "oi, preciso da segunda via do boleto",
                says=(
                    "Olá, Maria!",
                    "protocolo",
                    "Fatura F-1",
                    "R$ 129,90",
                    "(vencida)",
                    "Linha digitável",
                    LINE_1,
                    "PIX copia e cola",
                    PIX_1,
                    "mais alguma coisa?",
                ),
                never=("CPF",),
                state="bot",
            ),
            Step("não, obrigado", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )

    # The PIX code is a message of its own, so "copy" on the phone copies just the code.
    assert PIX_1 in [m.text for m in answers]
    assert conversation_of().assignee is None
    assert conversation_of().queued_at is None


@pytest.mark.parametrize(
    "text",
    ["2 via", "qro a 2 via", "bolto", "segunda via da fatura pfv", "me manda o pix", "1"],
)
def test_ways_of_asking_for_the_invoice(say: Say, text: str) -> None:
    invoice(contract(subscriber()), "F-1", line=LINE_1, pix=PIX_1)

    play(
        say,
        [
            Step("oi"),
            Step(text, says=(LINE_1, PIX_1), never=("não entendi", "CPF"), state="bot"),
        ],
    )


def test_paid_and_cancelled_invoices_are_not_offered(say: Say) -> None:
    maria = contract(subscriber())
    invoice(maria, "F-1", line=LINE_1, status=Invoice.Status.PAID)
    invoice(maria, "F-2", line=LINE_2, pix=PIX_2)
    invoice(maria, "F-3", status=Invoice.Status.CANCELLED)

    play(say, [Step("boleto", says=("Fatura F-2", LINE_2, PIX_2), never=("F-1", "F-3", LINE_1))])


def test_several_open_invoices_are_listed_then_the_chosen_one_is_sent(say: Say) -> None:
    maria = contract(subscriber())
    today = timezone.localdate()
    invoice(maria, "F-1", due=today - timedelta(days=35), line=LINE_1, pix=PIX_1)
    invoice(maria, "F-2", amount="149.90", due=today + timedelta(days=5), line=LINE_2, pix=PIX_2)

    [[_greeting, listing], _chosen] = play(
        say,
        [
            Step(
                "2ª via",
                says=("2 faturas em aberto", "*1* - R$ 99,90", "(vencida)", "*2* - R$ 149,90"),
                never=(LINE_1, LINE_2),
            ),
            Step("2", says=("Fatura F-2", LINE_2, PIX_2), never=(LINE_1, PIX_1), state="bot"),
        ],
    )

    assert listing.kind == Message.Kind.INTERACTIVE
    [section] = listing.payload["sections"]
    assert [row["id"] for row in section["rows"]] == ["inv:F-1", "inv:F-2"]
    assert listing.payload["button"] == "Ver faturas"


def test_an_invoice_is_chosen_by_tapping_the_list(say: Say) -> None:
    maria = contract(subscriber())
    invoice(maria, "F-1", line=LINE_1, pix=PIX_1)
    invoice(maria, "F-2", line=LINE_2, pix=PIX_2)

    play(
        say,
        [
            Step("segunda via", says=("2 faturas em aberto",)),
            tap("inv:F-1", "R$ 99,90", says=(LINE_1, PIX_1), never=(LINE_2,), state="bot"),
            tap("menu", texts.BUTTON_MENU, says=("Como posso ajudar?",)),
            Step("1", says=("2 faturas em aberto",)),
            Step("opção 2", says=(LINE_2,), never=(LINE_1,)),
        ],
    )


def test_a_choice_that_is_not_on_the_list_is_not_guessed(say: Say) -> None:
    maria = contract(subscriber())
    invoice(maria, "F-1", line=LINE_1)
    invoice(maria, "F-2", line=LINE_2)

    play(
        say,
        [
            Step("oi"),
            Step("boleto", says=("2 faturas em aberto",)),
            tap("inv:F-999", "R$ 99,90", never=(LINE_1, LINE_2)),
        ],
    )


def test_no_open_invoice_is_good_news(say: Say) -> None:
    contract(subscriber())

    play(
        say,
        [
            Step("2 via do boleto", says=("Está tudo em dia!", "mais alguma coisa?")),
            Step("nao obg", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )


# --- Identification ----------------------------------------------------------------


@pytest.fixture
def joana(db: None) -> None:
    """A subscriber whose phone is not the one writing (STRANGER)."""
    invoice(
        contract(subscriber("C-2002", "Joana Pereira", phone=JOANA_PHONE, document=JOAO_CPF)),
        "F-1",
        line=LINE_1,
        pix=PIX_1,
    )


JOANAS_DATA = ("Joana", "Pereira", "F-1", LINE_1, PIX_1, "C-2002")


@pytest.mark.usefixtures("joana")
def test_an_unknown_number_is_asked_for_the_cpf_before_anything_is_shown(say: Say) -> None:
    play(
        say,
        [
            Step("oi, preciso da segunda via do boleto", says=("CPF",), never=JOANAS_DATA),
            Step(
                "111.444.777-35",
                says=("Encontrei seu cadastro, Joana!", "Fatura F-1", LINE_1, PIX_1),
                state="bot",
            ),
        ],
        wa_id=STRANGER,
    )

    contact = Contact.objects.get(wa_id=STRANGER)
    assert contact.customer_code == "C-2002"


@pytest.mark.usefixtures("joana")
def test_a_cpf_written_in_a_sentence_is_found(say: Say) -> None:
    play(
        say,
        [
            Step("boleto", says=("CPF",)),
            Step("meu cpf é 111.444.777-35", says=("Encontrei seu cadastro", LINE_1)),
        ],
        wa_id=STRANGER,
    )


@pytest.mark.usefixtures("joana")
def test_three_wrong_cpfs_hand_over_to_a_person(say: Say) -> None:
    play(
        say,
        [
            Step("2 via", says=("CPF",), never=JOANAS_DATA),
            Step(BAD_CPF, says=("não parece válido",), never=JOANAS_DATA, state="bot"),
            Step("1234", says=("não parece válido",), never=JOANAS_DATA, state="bot"),
            Step(
                "111.444.777-36",
                says=("Não consegui localizar seu cadastro", "1º* da fila"),
                never=JOANAS_DATA,
                state="queued",
                team="Financeiro",
                note=(
                    "Assunto: 2ª via de fatura",
                    "não foi possível identificar o cliente",
                    "Cliente não identificado pelo bot.",
                ),
            ),
        ],
        wa_id=STRANGER,
    )

    assert Contact.objects.get(wa_id=STRANGER).customer_code == ""


@pytest.mark.usefixtures("joana")
def test_a_valid_cpf_of_nobody_is_refused_then_the_right_one_continues(say: Say) -> None:
    play(
        say,
        [
            Step("segunda via", says=("CPF",)),
            Step(NOBODYS_CPF, says=("Não encontrei nenhum cadastro",), never=JOANAS_DATA),
            Step(JOAO_CPF, says=("Encontrei seu cadastro, Joana!", LINE_1, PIX_1)),
        ],
        wa_id=STRANGER,
    )


@pytest.mark.usefixtures("joana")
def test_while_asked_for_the_cpf_the_customer_may_change_the_subject(say: Say) -> None:
    play(
        say,
        [
            Step("boleto", says=("CPF",)),
            Step("quero falar com um atendente", state="queued", team="Suporte técnico"),
        ],
        wa_id=STRANGER,
    )


@pytest.mark.usefixtures("joana")
def test_identified_once_is_known_for_the_rest_of_the_conversation(say: Say) -> None:
    play(
        say,
        [
            Step("boleto", says=("CPF",)),
            Step(JOAO_CPF, says=(LINE_1,)),
            Step("sim", says=("Como posso ajudar?",)),
            Step("1", says=(LINE_1,), never=("CPF",)),
        ],
        wa_id=STRANGER,
    )


def test_two_subscribers_on_one_phone_are_told_apart_by_the_cpf(say: Say) -> None:
    invoice(contract(subscriber()), "F-1", line=LINE_1, pix=PIX_1)
    invoice(
        contract(subscriber("C-1002", "Pedro Souza", document=JOAO_CPF)),
        "F-2",
        line=LINE_2,
        pix=PIX_2,
    )

    play(
        say,
        [
            Step(
                "oi, preciso da segunda via",
                says=("CPF",),
                never=("Pedro", LINE_1, LINE_2, "F-1", "F-2"),
            ),
            Step(
                JOAO_CPF,
                says=("Encontrei seu cadastro, Pedro!", LINE_2, PIX_2),
                never=(LINE_1, PIX_1),
            ),
        ],
    )


def test_a_number_linked_by_an_earlier_cpf_is_known_next_time(say: Say) -> None:
    invoice(contract(subscriber()), "F-1", line=LINE_1, pix=PIX_1)
    invoice(contract(subscriber("C-1002", "Pedro Souza", document=JOAO_CPF)), "F-2", line=LINE_2)
    play(say, [Step("boleto", says=("CPF",)), Step(MARIA_CPF, says=(LINE_1,))])
    play(say, [Step("não", state="resolved")])
    # Long after: a new conversation, which knows the number from the CPF given before.
    Conversation.objects.update(resolved_at=timezone.now() - timedelta(days=1))

    play(say, [Step("boleto", says=(LINE_1,), never=("CPF", LINE_2))])

"""What always ends with a person (visita técnica, planos, cancelamento,
atendente): the right team's queue, a note of what the bot learnt, the place
in the queue; out of hours, a message that says so; and once people have the
conversation, the bot keeps quiet."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from prometheus_client import REGISTRY

from accounts.models import User
from chatbot.models import Holiday
from conversations.models import Message, Note
from conversations.services import conversation_assign, conversation_resolve, message_send
from subscribers.models import Contract
from tests.chatbot.conftest import MARIA, conversation_of
from tests.chatbot.scripts import (
    Say,
    Step,
    bot_settings,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    play,
    subscriber,
)

pytestmark = pytest.mark.usefixtures("isp_bot")

# (what the customer writes, the team whose queue it lands in, the subject in the note)
HANDOFFS: list[tuple[str, str, str]] = [
    ("preciso de um tecnico aqui em casa", "Suporte técnico", "visita técnica"),
    ("quero agendar uma visita técnica", "Suporte técnico", "visita técnica"),
    ("quanto custa o plano de 1 giga", "Comercial", "planos / mudança de plano"),
    ("quero mudar de plano", "Comercial", "planos / mudança de plano"),
    ("quero cancelar meu plano", "Comercial", "cancelamento"),
    ("Cancelamento", "Comercial", "cancelamento"),
    ("quero falar com um atendente", "Suporte técnico", "falar com atendente"),
    ("falar com humano", "Suporte técnico", "falar com atendente"),
]


@pytest.mark.parametrize(("text", "team", "subject"), HANDOFFS, ids=[h[0] for h in HANDOFFS])
def test_lands_in_the_teams_queue_with_a_note(say: Say, text: str, team: str, subject: str) -> None:
    contract(subscriber())

    play(
        say,
        [
            Step(
                text,
                says=(
                    "protocolo",
                    "Vou transferir você para um atendente",
                    "*1º* da fila",
                    "tempo estimado de espera: *alguns minutos*",
                ),
                never=("não entendi",),
                state="queued",
                team=team,
                note=(
                    "🤖 Resumo do bot",
                    f"Assunto: {subject}",
                    "Cliente identificado: Maria Souza (código C-1001)",
                    "Contrato K-C-1001: Fibra 300 Mega, ativo",
                    "Região: Jardim América",
                    f'Última mensagem do cliente: "{text}"',
                ),
            )
        ],
    )

    conversation = conversation_of()
    [note] = Note.objects.filter(conversation=conversation)
    assert note.author is None
    assert conversation.queued_at is not None
    assert conversation.assignee is None


def test_asked_after_the_menu_with_the_customer_unknown(say: Say) -> None:
    play(
        say,
        [
            Step("oi"),
            Step(
                "8",
                says=("*1º* da fila",),
                never=("CPF",),
                state="queued",
                team="Suporte técnico",
                note=("Assunto: falar com atendente", "Cliente não identificado pelo bot."),
            ),
        ],
    )


def test_the_second_in_the_queue_is_told_so(say: Say) -> None:
    play(say, [Step("atendente", says=("*1º* da fila",))], wa_id="5511900001111")

    play(say, [Step("quero falar com atendente", says=("*2º* da fila",), state="queued")])


def test_the_wait_comes_from_how_long_the_team_took_lately(say: Say, agent: User) -> None:
    play(say, [Step("atendente", state="queued")], wa_id="5511900001111")
    earlier = conversation_of("5511900001111")
    message_send(
        conversation=earlier,
        text="Olá!",
        actor=agent,
        now=earlier.queued_at + timedelta(minutes=12),
    )

    play(say, [Step("quero falar com atendente", says=("*1º* da fila", "cerca de 12 minutos"))])


@pytest.mark.parametrize(
    "close",
    [
        pytest.param(lambda: bot_settings(business_hours={}), id="closed-hours"),
        pytest.param(
            lambda: Holiday.objects.create(date=timezone.localdate(), name="Feriado"),
            id="holiday",
        ),
    ],
)
def test_out_of_hours_says_so_and_still_queues(say: Say, close: object) -> None:
    close()  # type: ignore[operator]

    [[*_greeting, answer]] = play(
        say,
        [
            Step(
                "quero falar com um atendente",
                says=("Nosso atendimento humano funciona", "ficou registrada"),
                never=("da fila",),
                state="queued",
                team="Suporte técnico",
                note=("Assunto: falar com atendente",),
            )
        ],
    )

    assert f"(protocolo *{conversation_of().protocol}*)" in answer.text


def test_self_service_works_out_of_hours(say: Say) -> None:
    bot_settings(business_hours={})
    invoice(contract(subscriber()), "F-1", line="LINHA-F-1")

    play(say, [Step("2 via", says=("LINHA-F-1",), never=("atendimento humano",), state="bot")])


# --- People have it: the bot keeps quiet -----------------------------------------


def test_after_a_handoff_the_bot_is_silent(say: Say) -> None:
    play(
        say,
        [
            Step("quero falar com um atendente", state="queued"),
            Step("oi?", silent=True, state="queued"),
            Step("menu", silent=True),
            Step("2 via", silent=True),
        ],
    )


def test_an_agent_answering_takes_the_conversation_from_the_bot(say: Say, agent: User) -> None:
    play(say, [Step("oi", state="bot")])
    message_send(conversation=conversation_of(), text="Oi Maria, aqui é o Bruno.", actor=agent)

    play(say, [Step("oi Bruno, minha net caiu", silent=True, state="open")])

    conversation = conversation_of()
    assert conversation.assignee == agent
    last = conversation.messages.filter(direction=Message.Direction.OUT).order_by("-id").first()
    assert last is not None and last.sender_user == agent


def test_a_conversation_people_resolved_goes_back_to_them_not_to_the_bot(
    say: Say, agent: User
) -> None:
    play(say, [Step("quero falar com um atendente", state="queued")])
    conversation_assign(conversation=conversation_of(), agent=agent, actor=agent)
    conversation_resolve(conversation=conversation_of(), actor=agent)

    play(say, [Step("oi, esqueci de perguntar uma coisa", silent=True, state="open")])

    assert conversation_of().assignee == agent


def test_an_agent_assigning_it_to_themselves_silences_the_bot(say: Say, agent: User) -> None:
    play(say, [Step("boleto", says=("CPF",))])
    conversation_assign(conversation=conversation_of(), agent=agent, actor=agent)

    play(say, [Step("529.982.247-25", silent=True, state="open")])


# --- bot_handoffs_total{reason} ----------------------------------------------------

STRANGER = "5511977776666"
# (reason, who writes, what they write); Maria's contract is active, save where
# it must be suspended (at her request) for the unlock to be refused.
REASONS: list[tuple[str, str, list[str]]] = [
    ("requested", MARIA, ["quero falar com um atendente"]),
    ("intent", MARIA, ["quero cancelar"]),
    ("not_understood", MARIA, ["oi", "xpto", "xpto"]),
    ("troubleshooting_failed", MARIA, ["sem internet", "não voltou"]),
    ("unlock_refused", MARIA, ["desbloqueio", "sim"]),
    ("identification_failed", STRANGER, ["boleto", "1", "2", "3"]),
]


@pytest.mark.parametrize(("reason", "wa_id", "texts"), REASONS, ids=[r[0] for r in REASONS])
def test_each_handoff_is_counted_by_reason(
    say: Say, reason: str, wa_id: str, texts: list[str]
) -> None:
    if reason == "unlock_refused":
        contract(subscriber(), status=Contract.Status.SUSPENDED, reason="request")
    else:
        contract(subscriber())
    before = REGISTRY.get_sample_value("bot_handoffs_total", {"reason": reason}) or 0.0

    for text in texts:
        say(text, wa_id=wa_id)

    assert conversation_of(wa_id).state == "queued"
    after = REGISTRY.get_sample_value("bot_handoffs_total", {"reason": reason})
    assert after == before + 1

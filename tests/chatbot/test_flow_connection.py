"""Sem internet / internet lenta: a known outage in the customer's region is
told first; otherwise the standard steps, then "voltou?", and a person (with
the steps already tried in the note) when they did not help."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from chatbot import texts
from tests.chatbot.scripts import (
    REGION,
    Say,
    Step,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    outage,
    play,
    subscriber,
    suspended_for_non_payment,
    tap,
)

pytestmark = pytest.mark.usefixtures("isp_bot")

NO_INTERNET_STEPS = ("Vamos tentar resolver juntos", "luz *PON*", "30 segundos")
SLOW_STEPS = ("Vamos melhorar essa velocidade", "teste de velocidade")
DID_IT_WORK = "voltou ao normal?"


@pytest.fixture
def maria(db: None) -> None:
    contract(subscriber(region=REGION))


@pytest.mark.usefixtures("maria")
@pytest.mark.parametrize(
    "outage_region", ["Jardim América", "jardim america", "JARDIM AMÉRICA", " Jardim  America "]
)
def test_an_outage_in_the_region_is_told_with_its_forecast(say: Say, outage_region: str) -> None:
    forecast = timezone.now() + timedelta(hours=3)
    outage(outage_region, title="Rompimento de fibra na Av. Brasil", forecast_at=forecast)

    play(
        say,
        [
            Step(
                "minha net caiu",
                says=(
                    "falha na sua região",
                    "Rompimento de fibra na Av. Brasil",
                    f"Previsão de normalização: *{texts.moment(forecast)}*",
                    "não precisa abrir chamado",
                    "mais alguma coisa?",
                ),
                never=(*NO_INTERNET_STEPS, DID_IT_WORK),
                state="bot",
            ),
            Step("não, obrigado", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_an_outage_without_forecast_says_so(say: Say) -> None:
    outage()

    play(
        say,
        [
            Step(
                "ta sem internet aqui",
                says=("falha na sua região", "Ainda não temos previsão"),
                never=NO_INTERNET_STEPS,
            )
        ],
    )


@pytest.mark.usefixtures("maria")
def test_slow_internet_in_an_outage_region_is_told_too(say: Say) -> None:
    outage(title="Manutenção programada")

    play(say, [Step("internet lenta", says=("Manutenção programada",), never=SLOW_STEPS)])


@pytest.mark.usefixtures("maria")
def test_an_outage_elsewhere_or_already_over_is_not_mentioned(say: Say) -> None:
    outage("Centro", code="OUT-1")
    outage(code="OUT-2", resolved_at=timezone.now() - timedelta(hours=1))

    play(
        say,
        [Step("sem net", says=(*NO_INTERNET_STEPS, DID_IT_WORK), never=("falha na sua região",))],
    )


@pytest.mark.usefixtures("maria")
def test_the_steps_worked(say: Say) -> None:
    [[*_greeting, steps, question], *_rest] = play(
        say,
        [
            Step("oi, to sem internet", says=(*NO_INTERNET_STEPS, DID_IT_WORK), state="bot"),
            Step("sim voltou", says=("Que ótimo!", "mais alguma coisa?"), state="bot"),
            Step("não, obrigado", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )

    assert steps.text == texts.NO_INTERNET_STEPS
    assert [b["id"] for b in question.payload["buttons"]] == ["yes", "no"]


@pytest.mark.usefixtures("maria")
def test_the_customer_may_take_their_time_over_the_steps(say: Say) -> None:
    play(
        say,
        [
            Step("sem internet", says=NO_INTERNET_STEPS),
            Step("ok, vou testar", says=("Sem pressa!",), never=("Que ótimo",), state="bot"),
            Step("pronto, voltou", says=("Que ótimo!",), state="bot"),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_the_steps_worked_tapped(say: Say) -> None:
    play(
        say,
        [
            Step("3", says=NO_INTERNET_STEPS),
            tap("yes", texts.BUTTON_YES_WORKED, says=("Que ótimo!",)),
            tap("done", texts.BUTTON_DONE, says=("Obrigado pelo contato",), state="resolved"),
        ],
    )


@pytest.mark.usefixtures("maria")
@pytest.mark.parametrize("answer", ["não", "não voltou", "nao funcionou", "continua sem internet"])
def test_the_steps_did_not_work(say: Say, answer: str) -> None:
    play(
        say,
        [
            Step("minha net caiu", says=NO_INTERNET_STEPS),
            Step(
                answer,
                says=("1º* da fila",),
                never=("Que ótimo",),
                state="queued",
                team="Suporte técnico",
                note=(
                    "Assunto: sem internet",
                    "os passos básicos não resolveram",
                    "Passos já tentados pelo cliente com o bot:",
                    "Desligue o roteador e a ONU da tomada",
                    "Resultado: não resolveu.",
                    "Cliente identificado: Maria Souza (código C-1001)",
                    f"Região: {REGION}",
                ),
            ),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_the_steps_did_not_work_tapped(say: Say) -> None:
    play(
        say,
        [
            tap("menu:3", "Sem internet", says=NO_INTERNET_STEPS),
            tap(
                "no",
                texts.BUTTON_NO_WORKED,
                state="queued",
                team="Suporte técnico",
                note=("Passos já",),
            ),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_slow_internet_walks_through_its_own_steps(say: Say) -> None:
    play(
        say,
        [
            Step(
                "oi boa tarde, minha net ta muito lenta desde ontem",
                says=(*SLOW_STEPS, DID_IT_WORK),
                never=("luz *PON*",),
                state="bot",
            ),
            Step(
                "continua lenta",
                state="queued",
                team="Suporte técnico",
                note=("Assunto: internet lenta", "teste de velocidade", "Resultado: não resolveu."),
            ),
        ],
    )


@pytest.mark.usefixtures("maria")
def test_slow_internet_fixed(say: Say) -> None:
    play(
        say,
        [
            Step("net travando muito", says=SLOW_STEPS),
            Step("agora foi, valeu", says=("Que ótimo!",), state="bot"),
            Step("era só isso", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )


def test_suspended_for_non_payment_is_offered_the_unlock_not_the_steps(say: Say) -> None:
    invoice(suspended_for_non_payment(subscriber()), "F-1", line="LINHA-F-1")
    outage()  # even in an outage: the block is why this customer is offline

    [[*_greeting, offer], *_rest] = play(
        say,
        [
            Step(
                "to sem internet",
                says=("suspenso por falta de pagamento",),
                never=(*NO_INTERNET_STEPS, "falha na sua região"),
                state="bot",
            ),
            tap("intent:trust_unlock", texts.BUTTON_UNLOCK, says=("liberada até",)),
        ],
    )

    assert [b["id"] for b in offer.payload["buttons"]] == [
        "intent:trust_unlock",
        "intent:invoice",
        "agent",
    ]


def test_once_unlocked_no_internet_walks_through_the_steps(say: Say) -> None:
    suspended_for_non_payment(subscriber(), trust_unlocked_until=timezone.now() + timedelta(days=2))

    play(say, [Step("sem internet", says=NO_INTERNET_STEPS, never=("suspenso",))])


def test_an_unknown_number_gives_the_cpf_then_hears_of_the_outage(say: Say) -> None:
    contract(subscriber("C-2002", "Joana Pereira", phone="+5511955554444", document="11144477735"))
    outage()

    play(
        say,
        [
            Step("minha net caiu", says=("CPF",), never=("falha", "Joana", REGION)),
            Step("111.444.777-35", says=("Encontrei seu cadastro", "falha na sua região")),
        ],
        wa_id="5511977776666",
    )

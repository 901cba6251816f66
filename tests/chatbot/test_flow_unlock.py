"""Desbloqueio de confiança: a contract suspended for non-payment is unlocked
once per period, saying until when; otherwise the bot says why not and offers
a person."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.conf import settings
from django.utils import timezone

from chatbot import texts
from subscribers.models import Contract
from tests.chatbot.scripts import (
    JOAO_CPF,
    Say,
    Step,
    contract,
    invoice,
    isp_bot,  # noqa: F401 - fixture
    play,
    subscriber,
    suspended_for_non_payment,
    tap,
)

pytestmark = pytest.mark.usefixtures("isp_bot")


def test_suspended_for_non_payment_is_unlocked_until_a_date(say: Say) -> None:
    suspended = suspended_for_non_payment(subscriber())
    invoice(suspended, "F-1")

    [[*_greeting, unlocked, buttons]] = play(
        say,
        [
            Step(
                "oi, me desbloqueia ai",
                says=("Pronto, Maria!", "liberada até", "pague a fatura em aberto"),
                never=("Quer falar com um atendente?",),
                state="bot",
            )
        ],
    )

    suspended.refresh_from_db()
    assert suspended.last_trust_unlock_at is not None
    assert suspended.trust_unlocked_until == suspended.last_trust_unlock_at + timedelta(
        days=settings.TRUST_UNLOCK_DAYS
    )
    assert f"liberada até *{texts.moment(suspended.trust_unlocked_until)}*" in unlocked.text
    # Next: pay the invoice it was suspended for, or nothing more.
    assert [b["id"] for b in buttons.payload["buttons"]] == ["intent:invoice", "menu", "done"]


def test_after_the_unlock_the_customer_taps_to_get_the_invoice(say: Say) -> None:
    invoice(suspended_for_non_payment(subscriber()), "F-1", line="LINHA-F-1")

    play(
        say,
        [
            Step("desbloqueio de confiança", says=("liberada até",)),
            tap("intent:invoice", texts.BUTTON_INVOICE, says=("Fatura F-1", "LINHA-F-1")),
        ],
    )


def test_asking_again_the_same_day_says_it_is_already_unlocked(say: Say) -> None:
    suspended = suspended_for_non_payment(subscriber())

    play(
        say,
        [
            Step("2", says=("protocolo", "liberada até")),
            Step("menu"),
            Step("paguei e continua bloqueado", says=("já está liberado até",), state="bot"),
        ],
    )

    suspended.refresh_from_db()
    assert suspended.trust_unlocked


def test_used_within_the_interval_is_refused_with_the_next_date(say: Say) -> None:
    last = timezone.now() - timedelta(days=10)
    suspended_for_non_payment(
        subscriber(), last_trust_unlock_at=last, trust_unlocked_until=last + timedelta(days=3)
    )
    next_allowed = texts.day(last + timedelta(days=settings.TRUST_UNLOCK_INTERVAL_DAYS))

    play(
        say,
        [
            Step(
                "libera minha internet pfv",
                says=(
                    "já foi usado recentemente",
                    f"a partir de *{next_allowed}*",
                    "Quer falar com um atendente?",
                ),
                never=("liberada até",),
                state="bot",
            ),
            tap(
                "agent",
                texts.BUTTON_AGENT,
                says=("1º* da fila",),
                state="queued",
                team="Financeiro",
                note=(
                    "Assunto: desbloqueio de confiança",
                    "desbloqueio de confiança não disponível",
                    "Desbloqueio de confiança recusado: used_recently",
                    "suspenso por falta de pagamento",
                ),
            ),
        ],
    )


def test_refused_unlock_and_a_typed_yes_reaches_the_same_team(say: Say) -> None:
    last = timezone.now() - timedelta(days=10)
    suspended_for_non_payment(subscriber(), last_trust_unlock_at=last)

    play(
        say,
        [
            Step("desbloquear", says=("já foi usado recentemente",)),
            Step("sim por favor", state="queued", team="Financeiro"),
        ],
    )


def test_refused_unlock_and_asking_for_a_person_in_words(say: Say) -> None:
    last = timezone.now() - timedelta(days=10)
    suspended_for_non_payment(subscriber(), last_trust_unlock_at=last)

    play(
        say,
        [
            Step("desbloquear", says=("já foi usado recentemente",)),
            Step("quero falar com atendente", state="queued", team="Financeiro"),
        ],
    )


def test_an_active_contract_needs_no_unlock(say: Say) -> None:
    active = contract(subscriber())

    play(
        say,
        [
            Step(
                "desbloqueio de confiança",
                says=("Seu contrato está ativo", "Quer falar com um atendente?"),
                never=("liberada até",),
                state="bot",
            ),
            Step("não", says=("Obrigado pelo contato",), state="resolved"),
        ],
    )

    active.refresh_from_db()
    assert active.trust_unlocked_until is None
    assert active.last_trust_unlock_at is None


def test_an_active_contract_and_a_yes_goes_to_a_person(say: Say) -> None:
    contract(subscriber())

    play(
        say,
        [
            Step("me desbloqueia", says=("Seu contrato está ativo",)),
            Step("sim", says=("1º* da fila",), state="queued", team="Financeiro"),
        ],
    )


def test_suspended_for_another_reason_is_not_unlocked(say: Say) -> None:
    other = contract(
        subscriber(),
        status=Contract.Status.SUSPENDED,
        reason=Contract.SuspensionReason.REQUEST,
    )

    play(
        say,
        [
            Step(
                "desbloqueio",
                says=("não por falta de pagamento", "Quer falar com um atendente?"),
                never=("liberada até",),
            ),
            tap("done", texts.BUTTON_DONE, says=("Obrigado pelo contato",), state="resolved"),
        ],
    )

    other.refresh_from_db()
    assert other.trust_unlocked_until is None


def test_a_cancelled_contract_is_not_unlocked(say: Say) -> None:
    contract(subscriber(), status=Contract.Status.CANCELLED)

    play(say, [Step("desbloqueio", says=("está cancelado",), never=("liberada até",))])


def test_an_unknown_number_gives_the_cpf_before_the_unlock(say: Say) -> None:
    suspended = suspended_for_non_payment(
        subscriber("C-2002", "Joana Pereira", phone="+5511955554444", document=JOAO_CPF)
    )

    play(
        say,
        [
            Step("desbloqueio de confiança", says=("CPF",), never=("Joana", "liberada")),
            Step(JOAO_CPF, says=("Encontrei seu cadastro, Joana!", "liberada até")),
        ],
        wa_id="5511977776666",
    )

    suspended.refresh_from_db()
    assert suspended.trust_unlocked

"""Conversation scripts: what the customer writes (or taps) and what the bot
must answer, step by step, and the customers and contracts they are about.

A script is a list of ``Step``; ``play`` runs it through the ``say`` fixture
and checks each step, naming the step and showing the bot's whole answer when
one fails, so a failing script reads like the conversation it describes.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.utils import timezone

from chatbot.models import BotSettings
from conversations.models import Conversation, Message, Note
from ispsupport.crypto import encrypt
from ispsupport.identity import document_hash
from subscribers.builtin import DOCUMENT_PURPOSE
from subscribers.models import Contract, Invoice, Outage, Plan, Subscriber
from tests.chatbot.conftest import MARIA, conversation_of

Say = Callable[..., list[Message]]

MARIA_PHONE = "+5511988887777"
MARIA_CPF = "52998224725"
JOAO_CPF = "11144477735"
NOBODYS_CPF = "39053344705"  # valid check digits, no subscriber has it
BAD_CPF = "123.456.789-00"  # wrong check digits
REGION = "Jardim América"

ALWAYS_OPEN = {str(day): [["00:00", "23:59:59.999999"]] for day in range(7)}


@dataclass(frozen=True)
class Step:
    """One message of the customer and what must follow it.

    ``says``: pieces that must appear in the bot's answers to it (all of them
    together); ``never``: pieces that must not. ``state``: the conversation's
    state afterwards; ``team``: the team it is queued for; ``note``: pieces of
    the bot's internal note. ``silent``: the bot must answer nothing.
    """

    text: str = ""
    reply_id: str = ""
    kind: str = Message.Kind.TEXT
    says: tuple[str, ...] = ()
    never: tuple[str, ...] = ()
    state: str | None = None
    team: str | None = None
    note: tuple[str, ...] = ()
    silent: bool = False


def tap(reply_id: str, title: str, **expect: Any) -> Step:
    """The customer taps a button or a list row: WhatsApp sends its id and its title."""
    return Step(title, reply_id=reply_id, **expect)


def play(say: Say, script: list[Step], *, wa_id: str = MARIA) -> list[list[Message]]:
    """Run ``script`` and check every step; returns the bot's answers, per step."""
    answers = []
    for number, step in enumerate(script, 1):
        sent = say(step.text, reply_id=step.reply_id, kind=step.kind, wa_id=wa_id)
        answers.append(sent)
        heard = "\n---\n".join(m.text for m in sent)
        where = (
            f"step {number} ({step.text or step.reply_id or step.kind!r}), the bot said:\n{heard}"
        )
        if step.silent:
            assert not sent, where
        else:
            assert sent, f"step {number}: the bot said nothing"
        for piece in step.says:
            assert piece.casefold() in heard.casefold(), f"{piece!r} missing at {where}"
        # What must not be said must not hide in a list row or a button either.
        shown = heard + "".join(json.dumps(m.payload, ensure_ascii=False) for m in sent)
        for piece in step.never:
            assert piece.casefold() not in shown.casefold(), f"{piece!r} leaked at {where}"
        conversation = conversation_of(wa_id)
        if step.state is not None:
            assert conversation.state == step.state, f"state {conversation.state!r} at {where}"
        if step.team is not None:
            assert conversation.team is not None, f"no team at {where}"
            assert conversation.team.name == step.team, f"team {conversation.team} at {where}"
        if step.note:
            text = bot_note(conversation)
            for piece in step.note:
                assert piece in text, f"{piece!r} not in the note:\n{text}"
    return answers


def bot_note(conversation: Conversation) -> str:
    """The bot's latest internal note on ``conversation`` ("" if none)."""
    note = Note.objects.filter(conversation=conversation, author=None).order_by("-id").first()
    return note.text if note else ""


# --- Bot settings -----------------------------------------------------------------


def bot_settings(**changes: Any) -> BotSettings:
    """Change the bot's settings through the model, which drops the cached config."""
    settings, _created = BotSettings.objects.get_or_create(pk=1)
    for name, value in changes.items():
        setattr(settings, name, value)
    settings.save()
    return settings


@pytest.fixture
def isp_bot(routed_menu: None, settings: Any) -> None:
    """The bot as the scripts meet it: the default menu routed to teams, people
    at work whatever time the suite runs (out-of-hours tests close them), and
    no Gemini, so the rules alone answer."""
    bot_settings(business_hours=ALWAYS_OPEN)
    settings.GEMINI_API_KEY = ""


# --- The ISP's records ------------------------------------------------------------


def plan(code: str = "P-300", name: str = "Fibra 300 Mega", price: str = "99.90") -> Plan:
    found, _created = Plan.objects.get_or_create(
        code=code, defaults={"name": name, "download_mbps": 300, "price": Decimal(price)}
    )
    return found


def subscriber(
    code: str = "C-1001",
    name: str = "Maria Souza",
    *,
    phone: str = MARIA_PHONE,
    document: str = MARIA_CPF,
    region: str = REGION,
) -> Subscriber:
    return Subscriber.objects.create(
        code=code,
        name=name,
        phone=phone,
        region=region,
        document_encrypted=encrypt(document) if document else "",
        document_hash=document_hash(document, purpose=DOCUMENT_PURPOSE) if document else None,
    )


def contract(
    owner: Subscriber,
    code: str = "",
    *,
    status: str = Contract.Status.ACTIVE,
    reason: str = Contract.SuspensionReason.NONE,
    **fields: Any,
) -> Contract:
    return Contract.objects.create(
        code=code or f"K-{owner.code}",
        subscriber=owner,
        plan=plan(),
        status=status,
        suspension_reason=reason,
        **fields,
    )


def suspended_for_non_payment(owner: Subscriber, code: str = "", **fields: Any) -> Contract:
    return contract(
        owner,
        code,
        status=Contract.Status.SUSPENDED,
        reason=Contract.SuspensionReason.NON_PAYMENT,
        **fields,
    )


def invoice(
    of: Contract,
    code: str,
    *,
    amount: str = "99.90",
    due: date | None = None,
    line: str = "",
    pix: str = "",
    status: str = Invoice.Status.OPEN,
) -> Invoice:
    return Invoice.objects.create(
        code=code,
        contract=of,
        amount=Decimal(amount),
        due_date=due or timezone.localdate() - timedelta(days=5),
        status=status,
        digitable_line=line or f"34191.79001 01043.510047 91020.150008 {code[-1:] or '1'} 9999",
        pix_code=pix or f"00020126580014BR.GOV.BCB.PIX0136pix-{code}5204000053039865802BR6304ABCD",
    )


def outage(
    region: str = REGION,
    *,
    code: str = "OUT-1",
    title: str = "Rompimento de fibra",
    forecast_at: datetime | None = None,
    resolved_at: datetime | None = None,
) -> Outage:
    return Outage.objects.create(
        code=code,
        region=region,
        title=title,
        forecast_at=forecast_at,
        resolved_at=resolved_at,
    )

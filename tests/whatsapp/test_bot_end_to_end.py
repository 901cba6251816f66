"""The whole path with the bot: signed webhooks in, the worker runs the bot,
and its answers reach the (fake) Graph API — what a customer on WhatsApp
would see, with no agent involved."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client
from django.utils import timezone

from accounts.models import Team
from chatbot.models import BotSettings, MenuOption
from chatbot.tasks import handle_message
from conversations import channels
from conversations.models import Conversation, Note
from subscribers.models import Contract, Invoice, Outage, Plan, Subscriber
from tests.whatsapp.fake_graph import FakeGraph
from tests.whatsapp.payloads import envelope, post, text
from whatsapp.models import WhatsAppAccount
from whatsapp.tasks import send_message

LINE = "34191.79001 01043.510047 91020.150008 1 99990000011990"
PIX = "00020101021226580014br.gov.bcb.pix0136demo-chave-pix5204000053039865406119.905802BR6304ABCD"

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def _bot_and_sender(settings: Any) -> Iterator[None]:
    settings.LANGUAGE_CODE = "pt-br"
    channels.register_sender("whatsapp", send_message)
    channels.register_bot(handle_message)
    cache.clear()
    always = {str(day): [["00:00", "23:59:59.999999"]] for day in range(7)}
    BotSettings.objects.update_or_create(pk=1, defaults={"business_hours": always})
    yield
    cache.clear()


@pytest.fixture
def maria(db: None) -> Subscriber:
    plan = Plan.objects.create(code="P-500", name="Fibra 500 Mega", price=Decimal("119.90"))
    owner = Subscriber.objects.create(
        code="C-1001", name="Maria Souza", phone="+5511988887777", region="Jardim América"
    )
    contract = Contract.objects.create(code="K-1", subscriber=owner, plan=plan)
    Invoice.objects.create(
        code="F-10",
        contract=contract,
        amount=Decimal("119.90"),
        due_date=timezone.localdate() - timedelta(days=5),
        digitable_line=LINE,
        pix_code=PIX,
    )
    return owner


def bodies(fake_graph: FakeGraph) -> list[str]:
    out = []
    for request in fake_graph.sent():
        payload = request.json
        if payload["type"] == "text":
            out.append(payload["text"]["body"])
        elif payload["type"] == "interactive":
            out.append(payload["interactive"]["body"]["text"])
    return out


def test_an_overdue_customer_gets_the_boleto_and_pix_without_an_agent(
    client: Client,
    account: WhatsAppAccount,
    maria: Subscriber,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    response = post(client, envelope(messages=[text("oi, preciso da segunda via do boleto")]))
    assert response.status_code == 200

    run_worker()  # the bot answers, then the sends go out
    run_worker()

    sent = bodies(fake_graph)
    assert any("protocolo" in body for body in sent)
    assert any(LINE in body for body in sent)
    assert PIX in sent  # alone in its own message, to copy
    conversation = Conversation.objects.get()
    assert conversation.state == Conversation.State.BOT
    assert conversation.assignee is None
    assert all(r.json["to"] == "5511988887777" for r in fake_graph.sent())


def test_an_outage_is_announced_to_a_customer_of_that_region(
    client: Client,
    account: WhatsAppAccount,
    maria: Subscriber,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    Outage.objects.create(
        code="O-1",
        region="jardim america",
        title="Rompimento de fibra na Av. Brasil",
        forecast_at=timezone.now() + timedelta(hours=2),
    )

    post(client, envelope(messages=[text("minha net caiu")]))
    run_worker()
    run_worker()

    sent = "\n".join(bodies(fake_graph))
    assert "Rompimento de fibra na Av. Brasil" in sent
    assert "Previsão" in sent


def test_asking_for_an_agent_lands_in_the_routed_team_with_a_note(
    client: Client,
    account: WhatsAppAccount,
    maria: Subscriber,
    fake_graph: FakeGraph,
    run_worker: Callable[[], None],
) -> None:
    finance = Team.objects.create(name="Financeiro")
    # transaction=True flushes the migration's menu between tests: make the option here.
    MenuOption.objects.update_or_create(
        position=8, defaults={"label": "Falar com atendente", "intent": "agent", "team": finance}
    )

    post(client, envelope(messages=[text("quero falar com um atendente")]))
    run_worker()
    run_worker()

    conversation = Conversation.objects.get()
    assert (conversation.state, conversation.team) == (Conversation.State.QUEUED, finance)
    note = Note.objects.get(conversation=conversation)
    assert note.author is None
    assert "Maria Souza" in note.text
    assert any("da fila" in body for body in bodies(fake_graph))

"""The subscriber panel next to a conversation (/console/panels/subscriber/<pk>/):
the customer's plan, contract status, open invoices and outages, found as the
bot finds them; an ERP that is down never breaks the page."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone, translation

from accounts.models import Team, User
from conversations import panels
from conversations.models import Contact, Conversation, Inbox
from conversations.services import contact_update
from subscribers.directory import DirectoryError
from subscribers.models import Contract
from tests.conversations.test_console_conversation import (
    XSS_IMG,
    XSS_IMG_ESCAPED,
    Node,
    get,
    parse,
)
from tests.subscribers.factories import (
    CPF,
    make_contract,
    make_invoice,
    make_outage,
    make_plan,
    make_subscriber,
)

MARIA = "5511988887777"
PIX = "00020126580014br.gov.bcb.pix0136123e4567-e12b-12d1-a456-4266554400005204000053039865802BR"


@pytest.fixture
def conversation(inbox: Inbox, support: Team) -> Conversation:
    """Maria waiting in Suporte técnico's queue (made directly: the bot stays out of it)."""
    contact = Contact.objects.create(wa_id=MARIA, phone=f"+{MARIA}", profile_name="Maria Souza")
    return Conversation.objects.create(
        contact=contact, inbox=inbox, team=support, state=Conversation.State.QUEUED, protocol="P-1"
    )


def panel_of(conversation: Conversation) -> str:
    return f"/console/panels/subscriber/{conversation.pk}/"


def panel(client: Client, user: User, conversation: Conversation) -> Node:
    return parse(get(client, user, panel_of(conversation)))


def test_the_chatbot_registers_the_panel() -> None:
    [registered] = [p for p in panels.registered_panels() if p.key == "subscriber"]

    assert registered.url_for(42) == "/console/panels/subscriber/42/"
    with translation.override("en"):
        assert str(registered.title) == "Subscriber"


def test_the_panel_needs_a_login(client: Client, conversation: Conversation) -> None:
    response = client.get(panel_of(conversation))

    assert response.status_code == 302
    assert response["Location"] == f"/login/?next={panel_of(conversation)}"


def test_another_teams_conversation_is_not_found(
    client: Client, outsider: User, conversation: Conversation
) -> None:
    client.force_login(outsider)

    assert client.get(panel_of(conversation)).status_code == 404
    assert client.get("/console/panels/subscriber/2000000000/").status_code == 404


def test_a_subscriber_linked_by_code_shows_plan_contract_invoices_and_outages(
    client: Client, agent: User, conversation: Conversation
) -> None:
    Contact.objects.filter(pk=conversation.contact_id).update(customer_code="S1")
    subscriber = make_subscriber("S1", "Maria Souza", phone="+5511900000000", region="Centro")
    contract = make_contract(subscriber=subscriber, plan=make_plan())
    today = timezone.localdate()
    make_invoice(
        "F1", contract=contract, due_date=today - timedelta(days=3), amount="99.90", pix_code=PIX
    )
    make_invoice("F2", contract=contract, due_date=today + timedelta(days=27), amount="109.90")
    make_invoice("F0", contract=contract, due_date=today - timedelta(days=40), status="paid")
    make_outage("O1", region="centro", title="Fibra rompida na Av. Brasil")
    make_outage("O2", region="Vila Nova", title="Outra região")

    html = get(client, agent, panel_of(conversation))
    page = parse(html)

    assert page.one(".subscriber-name").text == "Maria Souza · code S1"
    contract_item = page.one("li.contract")
    assert contract_item.find("p")[0].text == "Fibra 300 Mega (300/150 Mbps)"
    assert contract_item.one(".contract-status").text == "Active"
    assert contract_item.find(".suspension-reason") == []
    invoices = page.find("li.invoice")
    assert [i.text for i in invoices] == [
        f"due {(today - timedelta(days=3)):%m/%d/%Y} R$ 99.90 overdue",
        f"due {(today + timedelta(days=27)):%m/%d/%Y} R$ 109.90",
    ]
    assert "is-overdue" in invoices[0].classes
    assert "is-overdue" not in invoices[1].classes
    assert [o.one("strong").text for o in page.find("li.outage")] == ["Fibra rompida na Av. Brasil"]
    # Payment codes are the bot's to send, not the panel's to show.
    assert PIX[:30] not in html


def test_a_subscriber_found_by_phone_shows_a_suspension_and_its_reason(
    client: Client, agent: User, conversation: Conversation
) -> None:
    subscriber = make_subscriber("S2", "Maria Souza", phone=f"+{MARIA}", region="")
    make_contract(
        subscriber=subscriber,
        plan=make_plan(),
        status=Contract.Status.SUSPENDED,
        suspension_reason=Contract.SuspensionReason.NON_PAYMENT,
    )

    page = panel(client, agent, conversation)

    assert page.one(".contract-status").text == "Suspended"
    assert page.one(".suspension-reason").text == "for non-payment"
    assert [p.text for p in page.find("p.muted")][-2:] == [
        "No open invoice.",
        "No open outage in the region.",
    ]


def test_a_subscriber_found_by_the_document_the_customer_gave(
    client: Client, agent: User, conversation: Conversation
) -> None:
    contact_update(contact=conversation.contact, actor=agent, document=CPF)
    make_subscriber("S3", "Maria S.", phone="+5511911112222", document=CPF)

    page = panel(client, agent, conversation)

    assert page.one(".subscriber-name").text == "Maria S. · code S3"


def test_an_unknown_customer_is_not_identified_yet(
    client: Client, agent: User, conversation: Conversation
) -> None:
    page = panel(client, agent, conversation)

    state = page.one("[data-state=not-identified]")
    assert state.one("strong").text == "Not identified yet."


def test_a_phone_shared_by_two_subscribers_asks_for_the_document(
    client: Client, agent: User, conversation: Conversation
) -> None:
    make_subscriber("S4", "Maria Souza", phone=f"+{MARIA}")
    make_subscriber("S5", "João Souza", phone=f"+{MARIA}")

    page = panel(client, agent, conversation)

    assert page.one("[data-state=not-identified]").text == (
        "Not identified yet. 2 subscribers share this phone number: "
        "ask the customer for their CPF/CNPJ."
    )


class DownErp:
    """An ERP adapter whose every call fails."""

    def _fail(self, *args: Any) -> Any:
        raise DirectoryError("ERP timed out")

    find_by_phone = find_by_document = get = open_invoices = _fail
    request_trust_unlock = open_outages = _fail


def test_an_erp_that_is_down_is_said_without_failing(
    client: Client, agent: User, conversation: Conversation, settings: Any
) -> None:
    settings.SUBSCRIBER_DIRECTORY = f"{__name__}.DownErp"
    Contact.objects.filter(pk=conversation.contact_id).update(customer_code="S1")

    page = panel(client, agent, conversation)

    assert page.one(".panel-error").text == (
        "The subscriber system is not answering. Try again in a moment."
    )
    # The conversation page itself does not ask the directory at all.
    get(client, agent, f"/console/c/{conversation.pk}/")


def test_subscriber_data_is_escaped(
    client: Client, agent: User, conversation: Conversation
) -> None:
    subscriber = make_subscriber("S6", XSS_IMG, phone=f"+{MARIA}", region="Centro")
    make_contract(subscriber=subscriber, plan=make_plan(name=XSS_IMG))
    make_outage("O9", region="Centro", title=XSS_IMG, description=XSS_IMG)

    html = get(client, agent, panel_of(conversation))

    assert XSS_IMG not in html
    assert html.count(XSS_IMG_ESCAPED) == 4


def test_the_panel_reads_a_fixed_number_of_queries(
    client: Client,
    agent: User,
    conversation: Conversation,
    django_assert_max_num_queries: Callable[..., Any],
) -> None:
    Contact.objects.filter(pk=conversation.contact_id).update(customer_code="S1")
    subscriber = make_subscriber("S1", region="Centro")
    plan = make_plan()
    for n in range(5):
        contract = make_contract(f"C{n}", subscriber=subscriber, plan=plan)
        make_invoice(f"F{n}", contract=contract, due_date=timezone.localdate())
    client.force_login(agent)

    # Session, user, conversation; subscriber and contracts; invoices; outages.
    with django_assert_max_num_queries(7):
        response = client.get(panel_of(conversation))

    assert response.status_code == 200
    assert len(parse(response.content.decode()).find("li.invoice")) == 5

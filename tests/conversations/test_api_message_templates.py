"""Sending an approved template through the messages API: what an agent does
once the 24-hour window has closed."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import User
from conversations.models import Conversation, Inbox, Message
from tests.conversations.api_helpers import CONVERSATIONS, call
from tests.conversations.conftest import hours_ago
from tests.whatsapp.factories import account_of, approved_template
from whatsapp.models import MessageTemplate, WhatsAppAccount


@pytest.fixture
def closed(conversation: Conversation, inbox: Inbox) -> Conversation:
    """A conversation whose customer last wrote 25 hours ago, on a WhatsApp
    number with one approved two-parameter template and one rejected one."""
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=hours_ago(25))
    account = WhatsAppAccount.objects.create(inbox=inbox, name="Suporte", phone_number_id="1099")
    now = timezone.now()
    MessageTemplate.objects.create(
        account=account,
        name="retomar_contato",
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Olá {{1}}, sobre o protocolo {{2}}: podemos falar?"}],
        synced_at=now,
    )
    MessageTemplate.objects.create(
        account=account,
        name="recusado",
        language="pt_BR",
        status="REJECTED",
        components=[{"type": "BODY", "text": "x"}],
        synced_at=now,
    )
    conversation.refresh_from_db()
    return conversation


def _send(client: Client, user: User, conversation: Conversation, body: dict[str, Any]) -> Any:
    return call(client, "post", f"{CONVERSATIONS}{conversation.pk}/messages/", user, body)


def _template(name: str = "retomar_contato", *params: str) -> dict[str, Any]:
    return {
        "kind": "template",
        "template": {
            "name": name,
            "language": "pt_BR",
            "parameters": [{"type": "text", "text": p} for p in params],
        },
    }


def test_free_text_is_refused_but_an_approved_template_goes_out(
    client: Client, agent: User, closed: Conversation
) -> None:
    refused = _send(client, agent, closed, {"text": "Oi, tudo certo?"})
    assert refused.status_code == 409

    response = _send(
        client, agent, closed, {**_template("retomar_contato", "Maria", "2026-000042")}
    )

    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.kind == Message.Kind.TEMPLATE
    assert message.status == Message.Status.PENDING
    # The text agents read is the approved body filled on the server.
    assert message.text == "Olá Maria, sobre o protocolo 2026-000042: podemos falar?"
    assert message.payload == {
        "name": "retomar_contato",
        "language": "pt_BR",
        "components": [
            {
                "type": "body",
                "parameters": [
                    {"type": "text", "text": "Maria"},
                    {"type": "text", "text": "2026-000042"},
                ],
            }
        ],
    }


def test_a_template_with_named_variables_sends_each_value_with_its_name(
    client: Client, agent: User, closed: Conversation
) -> None:
    """Templates created with named variables ({{nome}}, parameter_format
    NAMED) are refused by Meta unless each value says which variable it fills."""
    approved_template(
        account_of(closed.inbox),
        "fatura_vencendo",
        [{"type": "BODY", "text": "Olá {{nome}}, sua fatura de {{valor}} vence amanhã."}],
    )

    response = _send(client, agent, closed, _template("fatura_vencendo", "Maria", "R$ 99,90"))

    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.text == "Olá Maria, sua fatura de R$ 99,90 vence amanhã."
    assert message.payload["components"] == [
        {
            "type": "body",
            "parameters": [
                {"type": "text", "text": "Maria", "parameter_name": "nome"},
                {"type": "text", "text": "R$ 99,90", "parameter_name": "valor"},
            ],
        }
    ]


@pytest.fixture
def invoice_template(closed: Conversation) -> MessageTemplate:
    """The one ISPs send most: the invoice PDF as a document header, a text
    header with the month, the amount in the body, a URL button to the
    invoice page and a copy-code button with a discount code."""
    return approved_template(
        account_of(closed.inbox),
        "fatura_pdf",
        [
            {"type": "HEADER", "format": "DOCUMENT"},
            {"type": "BODY", "text": "Sua fatura de {{1}} está anexa."},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "URL", "text": "Ver fatura", "url": "https://fibra.net/f/{{1}}"},
                    {"type": "QUICK_REPLY", "text": "Falar com atendente"},
                    {"type": "COPY_CODE", "example": "FIBRA10"},
                ],
            },
        ],
    )


def _invoice(**overrides: Any) -> dict[str, Any]:
    template = {
        "name": "fatura_pdf",
        "language": "pt_BR",
        "parameters": [{"type": "text", "text": "R$ 99,90"}],
        "header": {"link": "https://erp.fibra.net/boletos/8841.pdf", "filename": "fatura.pdf"},
        "buttons": [{"index": 0, "text": "8841"}, {"index": 2, "text": "FIBRA25OFF"}],
        **overrides,
    }
    return {"kind": "template", "template": template}


def test_a_template_with_a_document_header_and_buttons_goes_out(
    client: Client, agent: User, closed: Conversation, invoice_template: MessageTemplate
) -> None:
    response = _send(client, agent, closed, _invoice())

    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.text == "Sua fatura de R$ 99,90 está anexa."
    assert message.payload["components"] == [
        {
            "type": "header",
            "parameters": [
                {
                    "type": "document",
                    "document": {
                        "link": "https://erp.fibra.net/boletos/8841.pdf",
                        "filename": "fatura.pdf",
                    },
                }
            ],
        },
        {"type": "body", "parameters": [{"type": "text", "text": "R$ 99,90"}]},
        {
            "type": "button",
            "sub_type": "url",
            "index": "0",
            "parameters": [{"type": "text", "text": "8841"}],
        },
        {
            "type": "button",
            "sub_type": "copy_code",
            "index": "2",
            "parameters": [{"type": "coupon_code", "coupon_code": "FIBRA25OFF"}],
        },
    ]


def test_a_text_header_with_a_variable_is_filled_and_shown_first(
    client: Client, agent: User, closed: Conversation
) -> None:
    approved_template(
        account_of(closed.inbox),
        "manutencao",
        [
            {"type": "HEADER", "format": "TEXT", "text": "Manutenção em {{1}}"},
            {"type": "BODY", "text": "Sua região terá manutenção amanhã."},
        ],
    )
    body = {
        "kind": "template",
        "template": {
            "name": "manutencao",
            "language": "pt_BR",
            "header": {"parameters": [{"type": "text", "text": "Vila Mariana"}]},
        },
    }

    response = _send(client, agent, closed, body)

    assert response.status_code == 201, response.json()
    message = Message.objects.get(pk=response.json()["id"])
    assert message.text == "*Manutenção em Vila Mariana*\nSua região terá manutenção amanhã."
    assert message.payload["components"] == [
        {"type": "header", "parameters": [{"type": "text", "text": "Vila Mariana"}]}
    ]


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"header": {}}, "header is a file (document): give the https:// link"),
        ({"header": {"link": "http://erp.fibra.net/b.pdf"}}, "must start with https://"),
        ({"header": {"link": "not a link"}}, "Enter a valid URL."),
        ({"buttons": [{"index": 0, "text": "8841"}]}, "Button 2 of this template takes a value"),
        (
            {"buttons": [{"index": 1, "text": "x"}, {"index": 0, "text": "y"}]},
            "no button 1 that takes a value",
        ),
        (
            {"buttons": [{"index": 0, "text": "a"}, {"index": 0, "text": "b"}]},
            "Button 0 is given twice",
        ),
        (
            {"buttons": [{"index": 0, "text": "8841"}, {"index": 2, "text": "0002012658001" * 2}]},
            "a code of at most 15 characters; 26 given",
        ),
    ],
    ids=[
        "no-link",
        "http-link",
        "bad-link",
        "missing-button",
        "unknown-button",
        "twice",
        "long-code",
    ],
)
def test_a_bad_header_or_button_is_a_400_that_says_why(
    client: Client,
    agent: User,
    closed: Conversation,
    invoice_template: MessageTemplate,
    overrides: dict[str, Any],
    error: str,
) -> None:
    response = _send(client, agent, closed, _invoice(**overrides))

    assert response.status_code == 400
    assert error in str(response.json())
    assert not Message.objects.filter(conversation=closed, kind="template").exists()


def test_a_link_for_a_template_without_a_file_header_is_refused(
    client: Client, agent: User, closed: Conversation
) -> None:
    body = _template("retomar_contato", "Maria", "42")
    body["template"]["header"] = {"link": "https://erp.fibra.net/b.pdf"}

    response = _send(client, agent, closed, body)

    assert response.status_code == 400
    assert "header has no file" in str(response.json())


def test_a_retry_with_the_same_key_sends_the_template_once(
    client: Client, agent: User, closed: Conversation
) -> None:
    body = {**_template("retomar_contato", "Maria", "42"), "client_key": "tpl-1"}

    first = _send(client, agent, closed, body)
    again = _send(client, agent, closed, body)

    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json()["id"] == first.json()["id"]
    assert Message.objects.filter(conversation=closed, kind="template").count() == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (_template("recusado"), "no approved template"),
        (_template("nao_existe", "a"), "no approved template"),
        (_template("retomar_contato", "Maria"), "takes 2 parameter(s); 1 given"),
        ({"kind": "template"}, "Choose a template."),
        (
            {
                "kind": "template",
                "template": {
                    "name": "retomar_contato",
                    "language": "pt_BR",
                    "parameters": [{"type": "image", "text": "x"}],
                },
            },
            "not a valid choice",
        ),
    ],
    ids=["rejected", "unknown", "too-few-params", "missing", "non-text-param"],
)
def test_a_bad_template_request_is_a_400_that_says_why_and_sends_nothing(
    client: Client, agent: User, closed: Conversation, body: dict[str, Any], error: str
) -> None:
    response = _send(client, agent, closed, body)

    assert response.status_code == 400
    assert error in str(response.json())
    assert not Message.objects.filter(conversation=closed, kind="template").exists()


def test_an_agent_of_another_team_cannot_send_a_template_here(
    client: Client, outsider: User, closed: Conversation
) -> None:
    response = _send(client, outsider, closed, _template("retomar_contato", "Maria", "42"))

    assert response.status_code == 404

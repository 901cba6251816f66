"""The sandbox transport: a number without an access token sends nothing
anywhere; its messages are marked sent with a local id."""

from __future__ import annotations

import pytest

from conversations.models import Conversation, Message
from conversations.services import message_receive, message_send
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import SandboxTransport, is_sandbox_id
from whatsapp.tasks import send_message
from whatsapp.transport import Recipient, TransportError, transport_for


@pytest.fixture
def conversation(sandbox_account: WhatsAppAccount) -> Conversation:
    return message_receive(
        inbox=sandbox_account.inbox,
        wa_id="5511988887777",
        text="Oi",
        external_id="wamid.IN0001",
    ).message.conversation


def test_a_number_without_token_uses_the_sandbox(sandbox_account: WhatsAppAccount) -> None:
    assert sandbox_account.is_sandbox
    assert isinstance(transport_for(sandbox_account), SandboxTransport)


def test_a_sandbox_send_leaves_nothing_and_is_sent_with_a_local_id(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    message = message_send(conversation=conversation, text="Olá do sandbox").message

    assert send_message.call(message.pk) == "sent"

    message.refresh_from_db()
    assert message.status == Message.Status.SENT
    assert is_sandbox_id(message.external_id)
    assert len(message.external_id) == len("sandbox.") + 32
    assert message.text == "Olá do sandbox"
    assert fake_graph.requests == []


def test_each_sandbox_send_gets_its_own_id(
    conversation: Conversation, fake_graph: FakeGraph
) -> None:
    first = message_send(conversation=conversation, text="Um").message
    second = message_send(conversation=conversation, text="Dois").message

    send_message.call(first.pk)
    send_message.call(second.pk)

    first.refresh_from_db()
    second.refresh_from_db()
    assert first.external_id != second.external_id
    assert fake_graph.requests == []


def test_the_sandbox_checks_payloads_like_the_real_api(
    sandbox_account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    sandbox = transport_for(sandbox_account)

    result = sandbox.send_text(Recipient(wa_id="5511988887777"), "Oi")
    assert result.response["request"]["text"] == {"preview_url": False, "body": "Oi"}
    with pytest.raises(TransportError) as caught:
        sandbox.send_buttons(Recipient(wa_id="5511988887777"), "?", [("a", "A")] * 4)
    assert caught.value.code == "invalid_payload"
    with pytest.raises(TransportError) as caught:
        sandbox.media_info("1013")
    assert (caught.value.code, caught.value.retryable) == ("sandbox", False)
    assert sandbox.list_templates() == []
    sandbox.mark_read("wamid.IN0001")
    assert fake_graph.requests == []

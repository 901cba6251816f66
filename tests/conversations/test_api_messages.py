"""The thread and writing to the customer: /api/v1/conversations/{id}/messages/."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import Team, User
from conversations import channels
from conversations.models import CannedReply, Conversation, Message
from conversations.services import (
    conversation_assign,
    conversation_resolve,
    message_receive,
    message_send,
)
from tests.conversations.api_helpers import (
    CONVERSATIONS,
    NOWHERE,
    call,
    conflict,
    invalid,
    message_body,
    refused,
)
from tests.ispsupport.sample_tasks import echo

State = Conversation.State
Receive = Callable[..., Message]
OUTSIDE_WINDOW = (
    "More than 24 hours have passed since the customer's last message: WhatsApp "
    "only allows an approved template message now."
)


def thread(conversation: Conversation) -> str:
    return f"{CONVERSATIONS}{conversation.pk}/messages/"


def outbound(conversation: Conversation) -> list[Message]:
    return list(conversation.messages.filter(direction=Message.Direction.OUT).order_by("id"))


# --- reading the thread ---------------------------------------------------------------


def test_the_thread_lists_messages_oldest_first(
    client: Client, agent: User, receive: Receive
) -> None:
    first = receive("Minha internet caiu")
    conversation = first.conversation
    answer = message_send(conversation=conversation, text="Vou verificar.", actor=agent).message
    second = receive("Obrigada", reply_to_external_id=first.external_id)

    response = call(client, "get", thread(conversation), agent)

    assert response.status_code == 200
    assert response.json() == {
        "next": None,
        "previous": None,
        "results": [message_body(first), message_body(answer), message_body(second)],
    }
    assert response.json()["results"][1] == {
        "id": answer.pk,
        "direction": "out",
        "sender_type": "agent",
        "sender": {"id": agent.pk, "name": "Bruno"},
        "kind": "text",
        "text": "Vou verificar.",
        "payload": {},
        "media_id": "",
        "media_mime_type": "",
        "status": "pending",
        "error_code": "",
        "error_title": "",
        "reply_to": None,
        "created_at": message_body(answer)["created_at"],
        "sent_at": None,
        "delivered_at": None,
        "read_at": None,
        "failed_at": None,
    }
    assert response.json()["results"][2]["reply_to"] == first.pk


def test_the_thread_cursor_walks_every_message_once(
    client: Client, agent: User, receive: Receive
) -> None:
    conversation = receive("0").conversation
    # Same timestamp for several: the id keeps the order stable.
    moment = timezone.now() - timedelta(minutes=1)
    for n in range(1, 7):
        receive(str(n), sent_at=moment if n in (2, 3, 4) else None)
    expected = list(conversation.messages.order_by("created_at", "id").values_list("pk", flat=True))

    seen: list[int] = []
    path: str | None = f"{thread(conversation)}?page_size=2"
    while path:
        body = call(client, "get", path, agent).json()
        assert len(body["results"]) <= 2
        seen += [m["id"] for m in body["results"]]
        path = body["next"]

    assert seen == expected
    assert len(expected) == 7


# --- writing --------------------------------------------------------------------------


def test_writing_answers_and_takes_the_conversation(
    client: Client, agent: User, conversation: Conversation
) -> None:
    response = call(client, "post", thread(conversation), agent, {"text": "Bom dia, Maria!"})

    assert response.status_code == 201
    [message] = outbound(conversation)
    assert response.json() == message_body(message)
    assert (message.text, message.sender_user, message.status, message.client_key) == (
        "Bom dia, Maria!",
        agent,
        Message.Status.PENDING,
        None,
    )
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.OPEN, agent)
    assert conversation.first_response_at == message.created_at
    assert conversation.unread_count == 0


def test_a_registered_sender_gets_the_message_once(
    client: Client, agent: User, conversation: Conversation
) -> None:
    channels.register_sender("whatsapp", echo)

    for _ in range(2):
        call(client, "post", thread(conversation), agent, {"text": "Oi", "client_key": "k-1"})

    [message] = outbound(conversation)
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "tests.ispsupport.sample_tasks.echo"
    assert task.args_kwargs["args"] == [message.pk]


def test_a_retried_request_never_sends_twice(
    client: Client, agent: User, conversation: Conversation
) -> None:
    body = {"text": "Seu técnico chega às 14h.", "client_key": "5b1f0d9c-retry"}

    first = call(client, "post", thread(conversation), agent, body)
    second = call(client, "post", thread(conversation), agent, {**body, "text": "outro texto"})

    assert (first.status_code, second.status_code) == (201, 200)
    [message] = outbound(conversation)
    assert first.json() == second.json() == message_body(message)
    assert (message.text, message.client_key) == ("Seu técnico chega às 14h.", "5b1f0d9c-retry")


def test_the_idempotency_key_header_works_like_client_key(
    client: Client, agent: User, conversation: Conversation
) -> None:
    answers = [
        call(
            client,
            "post",
            thread(conversation),
            agent,
            {"text": "Oi"},
            **{"Idempotency-Key": "hdr-42"},
        )
        for _ in range(2)
    ]

    assert [a.status_code for a in answers] == [201, 200]
    [message] = outbound(conversation)
    assert message.client_key == "hdr-42"
    assert answers[1].json()["id"] == message.pk

    # The body's client_key wins over the header.
    other = call(
        client,
        "post",
        thread(conversation),
        agent,
        {"text": "Oi", "client_key": "body-1"},
        **{"Idempotency-Key": "hdr-42"},
    )

    assert other.status_code == 201
    assert [m.client_key for m in outbound(conversation)] == ["hdr-42", "body-1"]


def test_the_same_key_in_another_conversation_is_another_message(
    client: Client, agent: User, receive: Receive
) -> None:
    maria = receive("Oi", wa_id="5511988880001").conversation
    joao = receive("Oi", wa_id="5511988880002").conversation

    for conversation in (maria, joao):
        response = call(
            client, "post", thread(conversation), agent, {"text": "Oi", "client_key": "k"}
        )
        assert response.status_code == 201

    assert Message.objects.filter(client_key="k").count() == 2


def test_outside_the_24_hour_window_is_409(
    client: Client, agent: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=24, minutes=1)
    )

    response = call(client, "post", thread(conversation), agent, {"text": "Oi?"})

    assert response.status_code == 409
    assert response.json() == conflict(OUTSIDE_WINDOW, "outside_service_window")
    assert "template" in response.json()["detail"]
    assert outbound(conversation) == []


def test_a_retry_after_the_window_closed_still_returns_the_first_message(
    client: Client, agent: User, conversation: Conversation
) -> None:
    first = call(client, "post", thread(conversation), agent, {"text": "Oi", "client_key": "k"})
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=30)
    )

    retry = call(client, "post", thread(conversation), agent, {"text": "Oi", "client_key": "k"})

    assert (first.status_code, retry.status_code) == (201, 200)
    assert retry.json()["id"] == first.json()["id"]


def test_a_resolved_conversation_must_be_reopened_first(
    client: Client, agent: User, conversation: Conversation
) -> None:
    conversation_resolve(conversation=conversation, actor=agent)

    response = call(client, "post", thread(conversation), agent, {"text": "Oi"})

    assert response.status_code == 409
    assert response.json() == conflict(
        "This conversation is resolved; reopen it before writing to the customer.",
        "conversation_resolved",
    )


def test_a_teammate_cannot_write_in_the_agents_conversation(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    response = call(client, "post", thread(conversation), teammate, {"text": "Oi"})

    assert response.status_code == 403
    assert response.json() == refused(
        "This conversation is assigned to Bruno; ask them or a supervisor to transfer it."
    )
    assert outbound(conversation) == []


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({}, {"text": ["Write a message."]}),
        ({"text": ""}, {"text": ["Write a message."]}),
        ({"text": "   \n "}, {"text": ["Write a message."]}),
        ({"text": None}, {"text": ["This field may not be null."]}),
        ({"text": "x" * 4097}, {"text": ["Ensure this field has no more than 4096 characters."]}),
        (
            {"text": "Oi", "client_key": "k" * 65},
            {"client_key": ["Ensure this field has no more than 64 characters."]},
        ),
        ({"canned_reply": "abc"}, {"canned_reply": ["A valid integer is required."]}),
        ({"canned_reply": NOWHERE}, {"canned_reply": ["No such canned reply for your teams."]}),
        ({"text": "Oi", "reply_to": "x"}, {"reply_to": ["A valid integer is required."]}),
        (
            {"text": "Oi", "reply_to": NOWHERE},
            {"reply_to": ["No such message in this conversation."]},
        ),
    ],
)
def test_invalid_messages_are_400(
    client: Client,
    agent: User,
    conversation: Conversation,
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    response = call(client, "post", thread(conversation), agent, body)

    assert response.status_code == 400
    assert response.json() == invalid(errors)
    assert outbound(conversation) == []
    conversation.refresh_from_db()
    assert (conversation.state, conversation.assignee) == (State.QUEUED, None)


def test_a_json_list_body_is_400(client: Client, agent: User, conversation: Conversation) -> None:
    response = call(client, "post", thread(conversation), agent, ["Oi"])

    assert response.status_code == 400
    assert response.json() == invalid(
        {"non_field_errors": ["Invalid data. Expected a dictionary, but got list."]}
    )


def test_missing_text_is_400_even_outside_the_window(
    client: Client, agent: User, conversation: Conversation
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(
        last_inbound_at=timezone.now() - timedelta(hours=30)
    )

    response = call(client, "post", thread(conversation), agent, {})

    assert response.status_code == 400
    assert response.json() == invalid({"text": ["Write a message."]})


def test_reply_to_a_message_of_the_thread(
    client: Client, agent: User, receive: Receive, inbox: Any
) -> None:
    question = receive("Qual o valor do plano?")
    conversation = question.conversation
    elsewhere = message_receive(inbox=inbox, wa_id="5511977776666", text="Oi").message

    bad = call(
        client, "post", thread(conversation), agent, {"text": "R$ 99", "reply_to": elsewhere.pk}
    )
    good = call(
        client, "post", thread(conversation), agent, {"text": "R$ 99", "reply_to": question.pk}
    )

    assert bad.status_code == 400
    assert bad.json() == invalid({"reply_to": ["No such message in this conversation."]})
    assert good.status_code == 201
    [message] = outbound(conversation)
    assert message.reply_to == question
    assert good.json()["reply_to"] == question.pk


# --- canned replies -------------------------------------------------------------------


def test_a_canned_reply_is_rendered_for_this_customer(
    client: Client, agent: User, support: Team, conversation: Conversation
) -> None:
    reply = CannedReply.objects.create(
        shortcut="ola",
        title="Saudação",
        text="Olá {{contact.first_name}}, aqui é {{agent.name}}. "
        "Protocolo {{conversation.protocol}}.",
        team=support,
    )

    response = call(client, "post", thread(conversation), agent, {"canned_reply": reply.pk})

    assert response.status_code == 201
    [message] = outbound(conversation)
    assert message.text == f"Olá Maria, aqui é Bruno. Protocolo {conversation.protocol}."
    assert response.json() == message_body(message)


def test_a_shared_canned_reply_is_usable_by_every_team(
    client: Client, agent: User, conversation: Conversation
) -> None:
    reply = CannedReply.objects.create(shortcut="tchau", title="Despedida", text="Até logo!")

    response = call(client, "post", thread(conversation), agent, {"canned_reply": reply.pk})

    assert response.status_code == 201
    assert response.json()["text"] == "Até logo!"


def test_another_teams_canned_reply_is_400(
    client: Client, agent: User, finance: Team, conversation: Conversation
) -> None:
    reply = CannedReply.objects.create(
        shortcut="boleto", title="Boleto", text="Segue o boleto.", team=finance
    )

    response = call(client, "post", thread(conversation), agent, {"canned_reply": reply.pk})

    assert response.status_code == 400
    assert response.json() == invalid({"canned_reply": ["No such canned reply for your teams."]})
    assert outbound(conversation) == []


def test_text_and_canned_reply_together_is_400(
    client: Client, agent: User, conversation: Conversation
) -> None:
    reply = CannedReply.objects.create(shortcut="tchau", title="Despedida", text="Até logo!")

    response = call(
        client, "post", thread(conversation), agent, {"text": "Oi", "canned_reply": reply.pk}
    )

    assert response.status_code == 400
    assert response.json() == invalid({"text": ["Send either a text or a canned reply, not both."]})


# --- visibility -----------------------------------------------------------------------


def test_the_outsider_neither_reads_nor_writes(
    client: Client, outsider: User, conversation: Conversation
) -> None:
    read = call(client, "get", thread(conversation), outsider)
    write = call(client, "post", thread(conversation), outsider, {"text": "Oi", "client_key": "x"})

    for response in (read, write):
        assert response.status_code == 404
        assert response.json() == {"detail": "No such conversation.", "code": "not_found"}
    assert outbound(conversation) == []


def test_an_unknown_conversations_thread_is_404(client: Client, agent: User, db: None) -> None:
    response = call(client, "get", f"{CONVERSATIONS}{NOWHERE}/messages/", agent)

    assert response.status_code == 404
    assert response.json() == {"detail": "No such conversation.", "code": "not_found"}

"""The same delivery posted 50 times at once, on real PostgreSQL: one message,
one bot task."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import pytest
from django.db import connection
from django.test import Client
from django_tasks_db.models import DBTaskResult

from conversations import channels
from conversations.models import Contact, Conversation, Message
from tests.ispsupport.sample_tasks import echo
from tests.whatsapp.payloads import contact, dumps, envelope, post, text
from whatsapp.models import WhatsAppAccount


def _in_threads(count: int, work: Callable[[int], object]) -> list[object]:
    barrier = threading.Barrier(count)

    def run(index: int) -> object:
        try:
            barrier.wait(timeout=20)
            return work(index)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(run, range(count)))


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_one_delivery_posted_fifty_times_at_once_is_stored_and_handed_to_the_bot_once(
    account: WhatsAppAccount,
) -> None:
    channels.register_bot(echo)
    raw = dumps(envelope(messages=[text("Minha internet caiu", id_="wamid.FIFTY")]))

    statuses = _in_threads(50, lambda _i: post(Client(), raw).status_code)

    assert statuses == [200] * 50
    message = Message.objects.get()
    assert message.external_id == "wamid.FIFTY"
    assert Contact.objects.count() == 1
    assert Conversation.objects.get().unread_count == 1
    [task] = DBTaskResult.objects.filter(task_path="tests.ispsupport.sample_tasks.echo")
    assert task.args_kwargs["args"] == [message.pk]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_burst_of_different_messages_from_a_new_customer_all_land_in_one_conversation(
    account: WhatsAppAccount,
) -> None:
    def deliver(index: int) -> int:
        payload = envelope(
            messages=[text(f"mensagem {index}", id_=f"wamid.BURST{index}")],
            contacts=[contact()],
        )
        return post(Client(), payload).status_code

    statuses = _in_threads(20, deliver)

    assert statuses == [200] * 20
    assert Contact.objects.count() == 1
    conversation = Conversation.objects.get()
    assert conversation.unread_count == 20
    assert Message.objects.filter(conversation=conversation).count() == 20

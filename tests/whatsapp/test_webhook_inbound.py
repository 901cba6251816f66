"""Every inbound message type Meta sends lands with its kind, a readable text
and the raw object as payload; batches land whole; redeliveries change nothing;
reactions decorate the message they are about."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from django.test import Client
from django_tasks_db.models import DBTaskResult

from conversations import channels
from conversations.models import Contact, Conversation, Message
from tests.ispsupport.sample_tasks import echo
from tests.whatsapp.payloads import (
    MARIA_BSUID,
    MARIA_PHONE,
    contact,
    envelope,
    message,
    post,
    text,
    wamid,
)
from whatsapp.models import WhatsAppAccount

Kind = Message.Kind


def _deliver(client: Client, *messages: dict[str, Any], **kwargs: Any) -> Any:
    response = post(client, envelope(messages=list(messages), **kwargs))
    assert response.status_code == 200, response.content
    return response


def _only_message() -> Message:
    return Message.objects.select_related("conversation__contact").get()


def test_a_text_message(client: Client, account: WhatsAppAccount) -> None:
    item = text("Minha internet caiu", id_="wamid.TEXT1")

    response = _deliver(client, item)

    assert response.json()["messages"] == 1
    stored = _only_message()
    assert (stored.kind, stored.text, stored.external_id) == (
        Kind.TEXT,
        "Minha internet caiu",
        "wamid.TEXT1",
    )
    assert (stored.direction, stored.status) == (Message.Direction.IN, Message.Status.RECEIVED)
    assert stored.payload == item
    assert stored.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    conversation = stored.conversation
    assert conversation.inbox == account.inbox
    assert conversation.team == account.inbox.default_team
    contact_row = conversation.contact
    assert (contact_row.wa_id, contact_row.phone, contact_row.bsuid, contact_row.profile_name) == (
        MARIA_PHONE,
        "+5511988887777",
        MARIA_BSUID,
        "Maria Souza",
    )


@pytest.mark.parametrize(
    ("type_", "body", "caption"),
    [
        ("image", {"mime_type": "image/jpeg", "sha256": "abc=", "id": "1003383421387256",
                   "caption": "Foto do roteador"}, "Foto do roteador"),
        ("audio", {"mime_type": "audio/ogg; codecs=opus", "sha256": "abc=",
                   "id": "1003383421387257", "voice": True}, ""),
        ("video", {"mime_type": "video/mp4", "sha256": "abc=", "id": "1003383421387258",
                   "caption": "Luz piscando"}, "Luz piscando"),
        ("document", {"mime_type": "application/pdf", "sha256": "abc=",
                      "id": "1003383421387259", "filename": "boleto-maio.pdf",
                      "caption": "Meu boleto"}, "Meu boleto"),
        ("sticker", {"mime_type": "image/webp", "sha256": "abc=", "id": "1003383421387260",
                     "animated": False}, ""),
    ],
)  # fmt: skip
def test_media_messages_keep_the_media_id_and_enqueue_the_download(
    client: Client, account: WhatsAppAccount, type_: str, body: dict[str, Any], caption: str
) -> None:
    item = message(type_, body)

    _deliver(client, item)

    stored = _only_message()
    assert (stored.kind, stored.text, stored.media_id, stored.media_mime_type) == (
        type_,
        caption,
        body["id"],
        body["mime_type"],
    )
    assert stored.payload[type_] == body  # the file name of a document, too
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "whatsapp.media.download_media"
    assert task.args_kwargs["args"] == [stored.pk]


def test_a_location(client: Client, account: WhatsAppAccount) -> None:
    location = {
        "latitude": -23.5505,
        "longitude": -46.6333,
        "name": "Casa da Maria",
        "address": "Rua das Flores, 123 - São Paulo",
    }

    _deliver(client, message("location", location))

    stored = _only_message()
    assert stored.kind == Kind.LOCATION
    assert stored.text == "📍 Casa da Maria — Rua das Flores, 123 - São Paulo"
    assert stored.payload["location"] == location


def test_a_location_without_a_name_shows_its_coordinates(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, message("location", {"latitude": -23.5505, "longitude": -46.6333}))

    assert _only_message().text == "📍 -23.5505, -46.6333"


def test_shared_contacts_are_summarised(client: Client, account: WhatsAppAccount) -> None:
    cards = [
        {
            "name": {"formatted_name": "João Técnico", "first_name": "João"},
            "phones": [
                {"phone": "+55 11 97777-6666", "wa_id": "5511977776666", "type": "CELL"},
                {"phone": "+55 11 3333-4444", "type": "WORK"},
            ],
        },
        {"name": {"formatted_name": "Ana"}, "phones": []},
    ]

    _deliver(client, message("contacts", None, contacts=cards))

    stored = _only_message()
    assert stored.kind == Kind.CONTACTS
    assert stored.text == "👤 João Técnico: +55 11 97777-6666, +55 11 3333-4444\n👤 Ana"
    assert stored.payload["contacts"] == cards
    # The shared cards are not taken for the sender.
    assert Contact.objects.get().wa_id == MARIA_PHONE


@pytest.mark.parametrize(
    ("interactive", "title"),
    [
        ({"type": "button_reply", "button_reply": {"id": "segunda_via", "title": "2ª via"}},
         "2ª via"),
        ({"type": "list_reply", "list_reply": {"id": "plano_300", "title": "300 Mega",
                                                "description": "R$ 99,90"}}, "300 Mega"),
    ],
)  # fmt: skip
def test_interactive_replies_show_the_title_and_keep_the_ids(
    client: Client, account: WhatsAppAccount, interactive: dict[str, Any], title: str
) -> None:
    context = {"from": "551140001234", "id": "wamid.MENU"}

    _deliver(client, message("interactive", interactive, context=context))

    stored = _only_message()
    assert (stored.kind, stored.text) == (Kind.INTERACTIVE, title)
    assert stored.payload["interactive"] == interactive
    assert stored.payload["context"] == context


def test_a_template_quick_reply_button(client: Client, account: WhatsAppAccount) -> None:
    button = {"payload": "CONFIRMAR_VISITA", "text": "Confirmar visita"}

    _deliver(client, message("button", button, context={"id": "wamid.TEMPLATE"}))

    stored = _only_message()
    assert (stored.kind, stored.text) == (Kind.BUTTON, "Confirmar visita")
    assert stored.payload["button"]["payload"] == "CONFIRMAR_VISITA"


@pytest.mark.parametrize(
    ("type_", "extra"),
    [
        ("order", {"order": {"catalog_id": "1", "product_items": [{"product_retailer_id": "x",
                   "quantity": 1, "item_price": 10, "currency": "BRL"}]}}),
        ("unsupported", {"errors": [{"code": 131051, "title": "Message type unknown",
                         "message": "Message type unknown",
                         "error_data": {"details": "Message type is not currently supported"}}]}),
        ("unknown", {"errors": [{"code": 131051, "title": "Message type unknown"}]}),
        ("something_new", {"something_new": {"x": 1}}),
    ],
)  # fmt: skip
def test_other_types_are_kept_as_unsupported_with_their_payload(
    client: Client, account: WhatsAppAccount, type_: str, extra: dict[str, Any]
) -> None:
    item = message(type_, None, **extra)

    _deliver(client, item)

    stored = _only_message()
    assert (stored.kind, stored.text) == (Kind.UNSUPPORTED, "")
    assert stored.payload == item


def test_a_reply_keeps_its_context_and_links_the_quoted_message(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Qual o valor?", id_="wamid.QUOTED"))
    context = {"from": MARIA_PHONE, "id": "wamid.QUOTED"}

    _deliver(client, text("Esse aqui", context=context))

    reply = Message.objects.get(text="Esse aqui")
    assert reply.reply_to == Message.objects.get(external_id="wamid.QUOTED")
    assert reply.payload["context"] == context


def test_an_ad_referral_is_kept(client: Client, account: WhatsAppAccount) -> None:
    referral = {
        "source_url": "https://fb.me/abc",
        "source_id": "120000000",
        "source_type": "ad",
        "headline": "Fibra 500 Mega",
        "body": "Assine já",
        "media_type": "image",
        "ctwa_clid": "ARAkLkA8",
    }

    _deliver(client, text("Quero assinar", referral=referral))

    assert _only_message().payload["referral"] == referral


# --- batches -----------------------------------------------------------------------


def test_several_messages_of_several_people_in_one_post_all_land(
    client: Client, account: WhatsAppAccount
) -> None:
    people = [
        contact(wa_id="5511988887777", user_id="BR.111", name="Maria"),
        contact(wa_id="5521977776666", user_id="BR.222", name="João"),
        contact(wa_id=None, user_id="BR.333", name="Ana", username="ana.fibra"),
    ]
    messages = [
        text("Oi", from_="5521977776666", from_user_id="BR.222"),
        text("Sem sinal", from_="5511988887777", from_user_id="BR.111"),
        text("Caiu tudo", from_=None, from_user_id="BR.333"),
        text("Ainda sem sinal", from_="5511988887777", from_user_id="BR.111"),
    ]

    response = _deliver(client, *messages, contacts=people)

    assert response.json()["messages"] == 4
    by_person = {
        c.profile_name: sorted(
            Message.objects.filter(conversation__contact=c).values_list("text", flat=True)
        )
        for c in Contact.objects.all()
    }
    assert by_person == {
        "Maria": ["Ainda sem sinal", "Sem sinal"],
        "João": ["Oi"],
        "Ana": ["Caiu tudo"],
    }
    assert Conversation.objects.count() == 3
    assert Contact.objects.get(bsuid="BR.333").username == "ana.fibra"


def test_several_entries_and_changes_in_one_post_all_land(
    client: Client, account: WhatsAppAccount
) -> None:
    first = envelope(messages=[text("um")])
    second = envelope(messages=[text("dois")])
    first["entry"].append(second["entry"][0])
    first["entry"][0]["changes"].append(envelope(messages=[text("três")])["entry"][0]["changes"][0])

    post(client, first)

    assert sorted(Message.objects.values_list("text", flat=True)) == ["dois", "três", "um"]


def test_a_new_profile_name_updates_the_contact(client: Client, account: WhatsAppAccount) -> None:
    _deliver(client, text("Oi"))

    _deliver(client, text("Oi de novo"), contacts=[contact(name="Maria S. Oliveira")])

    assert Contact.objects.get().profile_name == "Maria S. Oliveira"


# --- duplicates --------------------------------------------------------------------


def test_a_redelivered_post_changes_nothing_and_enqueues_nothing_again(
    client: Client, account: WhatsAppAccount
) -> None:
    channels.register_bot(echo)
    payload = envelope(messages=[text("Oi", id_="wamid.ONCE")])

    first = post(client, payload)
    again = post(client, payload)

    assert first.json()["messages"] == 1
    assert (again.status_code, again.json()["messages"], again.json()["duplicates"]) == (
        200,
        0,
        1,
    )
    stored = _only_message()
    assert stored.conversation.unread_count == 1
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "tests.ispsupport.sample_tasks.echo"
    assert task.args_kwargs["args"] == [stored.pk]


def test_a_duplicate_inside_one_post_is_stored_once(
    client: Client, account: WhatsAppAccount
) -> None:
    item = text("Oi", id_="wamid.TWICE")

    response = _deliver(client, item, dict(item))

    assert (response.json()["messages"], response.json()["duplicates"]) == (1, 1)
    assert Message.objects.count() == 1


def test_a_message_without_any_sender_id_is_skipped_not_the_post(
    client: Client, account: WhatsAppAccount
) -> None:
    nobody = text("???", from_=None, from_user_id=None)
    maria = text("Oi", from_=MARIA_PHONE, from_user_id=None)

    response = _deliver(client, nobody, maria, contacts=[])

    assert (response.json()["messages"], response.json()["skipped"]) == (1, 1)
    assert _only_message().text == "Oi"


# --- reactions ---------------------------------------------------------------------


def _react(client: Client, message_id: str, emoji: str, **kwargs: Any) -> Any:
    return _deliver(
        client, message("reaction", {"message_id": message_id, "emoji": emoji}, **kwargs)
    )


def test_a_reaction_attaches_to_the_message_and_is_not_a_new_message(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Oi", id_="wamid.TARGET"))

    response = _react(client, "wamid.TARGET", "👍")

    assert response.json()["reactions"] == 1
    target = _only_message()
    assert target.reactions == {"contact": "👍"}
    assert target.conversation.unread_count == 1


def test_a_reaction_to_our_own_reply_attaches_too(client: Client, account: WhatsAppAccount) -> None:
    from conversations.services import message_send

    conversation = _deliver(client, text("Oi")) and Conversation.objects.get()
    reply = message_send(conversation=conversation, text="Olá! Como posso ajudar?").message
    Message.objects.filter(pk=reply.pk).update(external_id="wamid.OUR-REPLY")

    _react(client, "wamid.OUR-REPLY", "❤️")

    reply.refresh_from_db()
    assert reply.reactions == {"contact": "❤️"}


def test_an_empty_emoji_removes_the_reaction(client: Client, account: WhatsAppAccount) -> None:
    _deliver(client, text("Oi", id_="wamid.TARGET"))
    _react(client, "wamid.TARGET", "👍")

    _react(client, "wamid.TARGET", "")

    assert _only_message().reactions == {}


def test_a_reaction_to_an_unknown_message_is_dropped(
    client: Client, account: WhatsAppAccount
) -> None:
    response = _react(client, "wamid.NEVER-SEEN", "👍")

    assert response.json()["reactions"] == 0
    assert not Message.objects.exists()


def test_someone_else_cannot_react_to_marias_messages(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Oi", id_="wamid.TARGET"))

    _react(
        client,
        "wamid.TARGET",
        "😡",
        from_="5521977776666",
        from_user_id="BR.999",
    )

    assert _only_message().reactions == {}


def test_a_reaction_message_id_is_never_stored_as_a_message(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Oi", id_="wamid.TARGET"))
    reaction_id = wamid()

    _react(client, "wamid.TARGET", "👍", id_=reaction_id)

    assert not Message.objects.filter(external_id=reaction_id).exists()

"""Identity in the username era: one person, one contact, found by BSUID first
and by phone (ninth digit or not) second; a changed number re-links the contact."""

from __future__ import annotations

from typing import Any

from django.test import Client

from conversations.models import Contact, Conversation, Message
from conversations.services import message_receive
from tests.whatsapp.payloads import MARIA_BSUID, contact, envelope, message, post, text
from whatsapp.models import WhatsAppAccount


def _deliver(client: Client, *messages: dict[str, Any], **kwargs: Any) -> Any:
    response = post(client, envelope(messages=list(messages), **kwargs))
    assert response.status_code == 200, response.content
    return response


def test_a_username_user_without_a_phone_lands_and_is_known_by_bsuid(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(
        client,
        text("Oi, sou a Maria", from_=None, from_user_id="BR.1502576394655843"),
        contacts=[contact(wa_id=None, user_id="BR.1502576394655843", username="maria.fibra")],
    )

    stored = Message.objects.select_related("conversation__contact").get()
    person = stored.conversation.contact
    assert (person.bsuid, person.wa_id, person.phone, person.username, person.profile_name) == (
        "BR.1502576394655843",
        None,
        None,
        "maria.fibra",
        "Maria Souza",
    )
    assert stored.text == "Oi, sou a Maria"


def test_the_message_bsuid_alone_is_enough(client: Client, account: WhatsAppAccount) -> None:
    _deliver(client, text("Oi", from_=None, from_user_id="BR.77"), contacts=[])

    assert Contact.objects.get().bsuid == "BR.77"


def test_bsuid_and_phone_link_to_the_existing_phone_contact_with_the_ninth_digit(
    client: Client, account: WhatsAppAccount
) -> None:
    # Known from before BSUIDs, with the ninth digit (as the ERP knows her).
    old = message_receive(
        inbox=account.inbox, wa_id="5511988887777", text="antes", external_id="w.0"
    )
    known = old.message.conversation.contact
    assert (known.bsuid, known.phone) == (None, "+5511988887777")

    # WhatsApp reports the pre-2016 eight-digit form, with her BSUID.
    _deliver(
        client,
        text("Voltei", from_="551188887777", from_user_id=MARIA_BSUID),
        contacts=[contact(wa_id="551188887777", user_id=MARIA_BSUID)],
    )

    assert Contact.objects.count() == 1
    known.refresh_from_db()
    assert (known.bsuid, known.phone) == (MARIA_BSUID, "+5511988887777")
    assert Message.objects.get(text="Voltei").conversation.contact == known


def test_a_later_message_without_the_phone_finds_the_same_contact(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("com telefone"))

    _deliver(
        client,
        text("só com BSUID", from_=None),
        contacts=[contact(wa_id=None, username="maria.fibra")],
    )

    person = Contact.objects.get()
    assert (person.phone, person.bsuid, person.username) == (
        "+5511988887777",
        MARIA_BSUID,
        "maria.fibra",
    )
    assert Conversation.objects.get().messages.count() == 2


def _system(kind: str, **system: Any) -> dict[str, Any]:
    return message("system", {"type": kind, **system})


def test_a_changed_number_relinks_the_contact_and_the_notice_lands_in_her_conversation(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Oi"))
    person = Contact.objects.get()

    _deliver(
        client,
        _system(
            "user_changed_number",
            body="User Maria Souza changed from 5511988887777 to 5511966665555",
            wa_id="5511966665555",
            previous_user_id=MARIA_BSUID,
            user_id="BR.2000000000000001",
        ),
        contacts=[],
    )

    person.refresh_from_db()
    assert (person.bsuid, person.wa_id, person.phone) == (
        "BR.2000000000000001",
        "5511966665555",
        "+5511966665555",
    )
    assert Contact.objects.count() == 1
    notice = Message.objects.get(kind=Message.Kind.UNSUPPORTED)
    assert notice.text == "User Maria Souza changed from 5511988887777 to 5511966665555"
    assert notice.conversation.contact == person
    assert notice.payload["system"]["type"] == "user_changed_number"

    # Her next message, from the new identity, is the same person.
    _deliver(
        client,
        text("Número novo", from_="5511966665555", from_user_id="BR.2000000000000001"),
        contacts=[contact(wa_id="5511966665555", user_id="BR.2000000000000001")],
    )
    assert Contact.objects.count() == 1
    assert Conversation.objects.count() == 1


def test_a_changed_bsuid_without_a_phone_relinks(client: Client, account: WhatsAppAccount) -> None:
    _deliver(
        client,
        text("Oi", from_=None),
        contacts=[contact(wa_id=None, username="maria.fibra")],
    )

    _deliver(
        client,
        _system(
            "user_changed_user_id",
            body=f"User maria.fibra changed from {MARIA_BSUID} to BR.3",
            previous_user_id=MARIA_BSUID,
            user_id="BR.3",
        ),
        from_=None,
        from_user_id=None,
        contacts=[],
    )

    assert Contact.objects.get().bsuid == "BR.3"


def test_a_user_id_update_change_relinks(client: Client, account: WhatsAppAccount) -> None:
    _deliver(client, text("Oi"))
    update = {
        "wa_id": "5511988887777",
        "detail": "User's business-scoped user ID changed",
        "user_id": {"previous": MARIA_BSUID, "current": "BR.4"},
        "timestamp": "1767225600",
    }

    response = post(client, envelope(field="user_id_update", user_id_update=[update]))

    assert (response.status_code, response.json()["relinked"]) == (200, 1)
    assert Contact.objects.get().bsuid == "BR.4"
    assert Message.objects.count() == 1


def test_a_notice_about_a_stranger_opens_nothing(client: Client, account: WhatsAppAccount) -> None:
    _deliver(
        client,
        _system(
            "user_changed_number",
            body="User X changed from 5531911112222 to 5531933334444",
            wa_id="5531933334444",
            previous_user_id="BR.OLD",
            user_id="BR.NEW",
        ),
        from_="5531911112222",
        from_user_id=None,
        contacts=[],
    )

    assert not Contact.objects.exists()
    assert not Conversation.objects.exists()


def test_a_new_bsuid_already_taken_by_someone_else_is_not_merged(
    client: Client, account: WhatsAppAccount
) -> None:
    _deliver(client, text("Maria"))
    _deliver(
        client,
        text("João", from_="5521977776666", from_user_id="BR.JOAO"),
        contacts=[contact(wa_id="5521977776666", user_id="BR.JOAO", name="João")],
    )

    _deliver(
        client,
        _system(
            "user_changed_user_id", body="...", previous_user_id=MARIA_BSUID, user_id="BR.JOAO"
        ),
        contacts=[],
    )

    assert Contact.objects.get(profile_name="Maria Souza").bsuid == MARIA_BSUID
    assert Contact.objects.get(profile_name="João").bsuid == "BR.JOAO"

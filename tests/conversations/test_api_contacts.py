"""Customers: /api/v1/contacts/. Visible through the conversations one may see;
the CPF/CNPJ goes in but only ever comes back masked."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.test import Client

from accounts.models import User
from conversations.models import Contact, Message, Tag
from conversations.services import contact_update
from tests.conversations.api_helpers import (
    CONTACTS,
    NO_CONTACT,
    NOWHERE,
    call,
    contact_body,
    invalid,
)

Receive = Callable[..., Message]
CPF = "52998224725"


def page(*contacts: Contact) -> dict[str, Any]:
    return {
        "count": len(contacts),
        "next": None,
        "previous": None,
        "results": [contact_body(c) for c in contacts],
    }


@pytest.fixture
def people(receive: Receive, inbox: Any) -> dict[str, Contact]:
    maria = receive("Oi", wa_id="5511988880001", profile_name="Maria Souza").conversation.contact
    joao = receive("Oi", wa_id="5521977770002", profile_name="João Lima").conversation.contact
    return {"maria": maria, "joao": joao}


def test_the_contact_shows_identity_and_a_masked_document(
    client: Client, agent: User, supervisor: User, contact: Contact
) -> None:
    Tag.objects.create(name="vip")
    contact_update(
        contact=contact, actor=supervisor, document="529.982.247-25", customer_code="C-1001",
        tags=["vip"],
    )  # fmt: skip
    contact.refresh_from_db()

    response = call(client, "get", f"{CONTACTS}{contact.pk}/", agent)

    assert response.status_code == 200
    assert response.json() == {
        "id": contact.pk,
        "name": "",
        "profile_name": "Maria Souza",
        "display_name": "Maria Souza",
        "phone": "+5511988887777",
        "username": "",
        "bsuid": None,
        "wa_id": "5511988887777",
        "document_masked": "•••••••4725",
        "customer_code": "C-1001",
        "notes": "",
        "tags": ["vip"],
        "created_at": contact_body(contact)["created_at"],
        "last_seen_at": contact_body(contact)["last_seen_at"],
    }
    assert CPF not in response.content.decode()


def test_the_list_shows_contacts_of_visible_conversations(
    client: Client, agent: User, outsider: User, admin: User, people: dict[str, Contact]
) -> None:
    maria, joao = people["maria"], people["joao"]
    orphan = Contact.objects.create(wa_id="5511900000009", profile_name="Sem conversa")

    assert call(client, "get", CONTACTS, agent).json() == page(joao, maria)
    assert call(client, "get", CONTACTS, outsider).json() == page()
    assert call(client, "get", CONTACTS, admin).json() == page(joao, maria, orphan)


@pytest.mark.parametrize(
    ("query", "names"),
    [
        ("?q=souza", ["maria"]),
        ("?q=jo%C3%A3o", ["joao"]),
        ("?q=(21) 97777-0002", ["joao"]),
        ("?q=8888", ["maria"]),
        ("?q=C-77", ["joao"]),
        ("?q=nobody", []),
        ("?q=", ["joao", "maria"]),
    ],
)
def test_search(
    client: Client,
    agent: User,
    supervisor: User,
    people: dict[str, Contact],
    query: str,
    names: list[str],
) -> None:
    contact_update(contact=people["joao"], actor=supervisor, customer_code="C-77")

    response = call(client, "get", CONTACTS + query, agent)

    assert response.status_code == 200
    assert response.json() == page(*(people[name] for name in names))


@pytest.mark.parametrize(
    ("query", "errors"),
    [
        ("?q=%00", {"q": ["Null characters are not allowed."]}),
        ("?q=" + "x" * 201, {"q": ["Ensure this field has no more than 200 characters."]}),
    ],
)
def test_an_odd_search_is_400(
    client: Client, agent: User, contact: Contact, query: str, errors: dict[str, Any]
) -> None:
    response = call(client, "get", CONTACTS + query, agent)

    assert response.status_code == 400
    assert response.json() == invalid(errors)


def test_find_by_document_only_among_visible_contacts(
    client: Client, agent: User, outsider: User, supervisor: User, people: dict[str, Contact]
) -> None:
    contact_update(contact=people["maria"], actor=supervisor, document=CPF)

    for raw in (CPF, "529.982.247-25", " 529 982 247 25 "):
        assert call(client, "get", f"{CONTACTS}?document={raw}", agent).json() == page(
            people["maria"]
        )
    assert call(client, "get", f"{CONTACTS}?document={CPF}", outsider).json() == page()
    assert call(client, "get", f"{CONTACTS}?document=11144477735", agent).json() == page()
    assert call(client, "get", f"{CONTACTS}?document=123", agent).json() == page()
    assert call(client, "get", f"{CONTACTS}?document=%00", agent).json() == page()


def test_patch_updates_what_staff_may_change(client: Client, agent: User, contact: Contact) -> None:
    Tag.objects.create(name="vip")

    response = call(
        client,
        "patch",
        f"{CONTACTS}{contact.pk}/",
        agent,
        {
            "name": "  Maria Aparecida Souza ",
            "phone": "(11) 3333-4444",
            "document": "529.982.247-25",
            "customer_code": "C-1001",
            "notes": "Prefere contato à tarde.",
            "tags": ["vip"],
        },
    )

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.name, contact.phone, contact.document, contact.customer_code) == (
        "Maria Aparecida Souza",
        "+551133334444",
        CPF,
        "C-1001",
    )
    assert contact.notes == "Prefere contato à tarde."
    assert list(contact.tags.values_list("name", flat=True)) == ["vip"]
    assert response.json() == contact_body(contact)
    assert response.json()["display_name"] == "Maria Aparecida Souza"
    assert response.json()["document_masked"] == "•••••••4725"
    assert CPF not in response.content.decode()


def test_patch_never_touches_identity_fields(client: Client, agent: User, contact: Contact) -> None:
    before = Contact.objects.values().get(pk=contact.pk)

    response = call(
        client,
        "patch",
        f"{CONTACTS}{contact.pk}/",
        agent,
        {
            "bsuid": "BR.hijack",
            "wa_id": "5599999999999",
            "profile_name": "Outra",
            "username": "outra",
            "display_name": "Outra",
            "document_masked": "x",
            "document_hash": "0" * 64,
            "created_at": "2020-01-01T00:00:00Z",
            "id": NOWHERE,
        },
    )

    assert response.status_code == 200
    after = Contact.objects.values().get(pk=contact.pk)
    assert after == {**before, "updated_at": after["updated_at"]}
    assert response.json() == contact_body(contact)


def test_patch_can_clear_the_document_and_phone(
    client: Client, agent: User, supervisor: User, contact: Contact
) -> None:
    contact_update(contact=contact, actor=supervisor, document=CPF)

    response = call(
        client, "patch", f"{CONTACTS}{contact.pk}/", agent, {"document": "", "phone": None}
    )

    assert response.status_code == 200
    contact.refresh_from_db()
    assert (contact.document, contact.document_hash, contact.phone) == ("", None, None)
    assert response.json()["document_masked"] == ""


@pytest.mark.parametrize(
    ("body", "errors"),
    [
        ({"phone": "12"}, {"phone": ["Enter a valid phone number, e.g. +55 11 98888-7777."]}),
        ({"phone": "+5521977770002"}, {"phone": ["Another contact already has this phone."]}),
        ({"document": "123.456.789-00"}, {"document": ["Enter a valid CPF or CNPJ."]}),
        (
            {"document": "111.444.777-35"},
            {"document": ["Another contact already has this CPF/CNPJ."]},
        ),
        ({"tags": ["nova"]}, {"tags": ["Unknown tags: nova. Ask a supervisor to create them."]}),
        ({"tags": "vip"}, {"tags": ['Expected a list of items but got type "str".']}),
        ({"name": "x" * 151}, {"name": ["Ensure this field has no more than 150 characters."]}),
        ({"name": None}, {"name": ["This field may not be null."]}),
        (
            {"customer_code": "x" * 41},
            {"customer_code": ["Ensure this field has no more than 40 characters."]},
        ),
    ],
)
def test_invalid_changes_are_400_and_change_nothing(
    client: Client,
    agent: User,
    supervisor: User,
    people: dict[str, Contact],
    body: dict[str, Any],
    errors: dict[str, Any],
) -> None:
    maria, joao = people["maria"], people["joao"]
    contact_update(contact=joao, actor=supervisor, document="11144477735")
    before = Contact.objects.values().get(pk=maria.pk)

    response = call(client, "patch", f"{CONTACTS}{maria.pk}/", agent, {"notes": "n", **body})

    assert response.status_code == 400
    assert response.json() == invalid(errors)
    assert Contact.objects.values().get(pk=maria.pk) == before


def test_the_outsider_gets_404(client: Client, outsider: User, contact: Contact) -> None:
    before = Contact.objects.values().get(pk=contact.pk)

    for method, body in (("get", None), ("patch", {"name": "Hack"})):
        response = call(client, method, f"{CONTACTS}{contact.pk}/", outsider, body)

        assert response.status_code == 404
        assert response.json() == NO_CONTACT
    assert Contact.objects.values().get(pk=contact.pk) == before


def test_unknown_contacts_are_404(client: Client, admin: User, db: None) -> None:
    for path in (f"{CONTACTS}{NOWHERE}/", f"{CONTACTS}abc/"):
        response = call(client, "get", path, admin)

        assert response.status_code == 404
        assert response.json() == NO_CONTACT


def test_contacts_cannot_be_created_or_deleted(
    client: Client, admin: User, contact: Contact
) -> None:
    created = call(client, "post", CONTACTS, admin, {"name": "Nova"})
    deleted = call(client, "delete", f"{CONTACTS}{contact.pk}/", admin)

    assert (created.status_code, deleted.status_code) == (405, 405)
    assert Contact.objects.count() == 1

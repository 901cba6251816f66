"""Django admin for conversations, contacts and their configuration: pages
load, search by protocol and CPF, the CPF never shown in clear, the resolve
action through the service, business hours validated."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from django.db import connection
from django.http import HttpResponse
from django.test import Client
from django.test.utils import CaptureQueriesContext

from accounts.models import Team, User
from conversations import services
from conversations.models import (
    CannedReply,
    Contact,
    Conversation,
    Inbox,
    Message,
    Note,
    Tag,
    TeamQueue,
)
from ispsupport.identity import document_hash

ADMIN = "/admin/conversations"
EN = {"Accept-Language": "en"}
CPF = "52998224725"
CPF_TYPED = "529.982.247-25"


@pytest.fixture
def superuser(db: None) -> User:
    return User.objects.create_superuser(username="root.ops", password=None)


@pytest.fixture
def root_client(superuser: User) -> Client:
    client = Client()
    client.force_login(superuser)
    return client


@pytest.fixture
def world(
    conversation: Conversation, supervisor: User, support: Team, inbox: Inbox
) -> dict[str, Any]:
    """One of each row, so every change page has something to show."""
    note = services.note_create(
        conversation=conversation, author=supervisor, text="Cliente já reiniciou"
    )
    tag = Tag.objects.create(name="lentidão")
    reply = CannedReply.objects.create(
        shortcut="boleto", title="Segunda via do boleto", text="Olá {{contact.first_name}}"
    )
    queue = TeamQueue.objects.create(team=support)
    message = conversation.messages.get()
    return {
        "conversation": conversation,
        "contact": conversation.contact,
        "message": message,
        "note": note,
        "tag": tag,
        "cannedreply": reply,
        "teamqueue": queue,
        "inbox": inbox,
    }


def listed(response: HttpResponse) -> list[Any]:
    assert response.status_code == 200
    return list(response.context["cl"].result_list)


def flashed(response: HttpResponse) -> list[tuple[str, str]]:
    return [(message.level_tag, str(message)) for message in response.context["messages"]]


def change_form_data(response: HttpResponse, **fields: Any) -> dict[str, Any]:
    """What the browser would post back from a change page, with ``fields`` changed."""
    form = response.context["adminform"].form
    data: dict[str, Any] = {}
    for name, field in form.fields.items():
        value = form.initial.get(name, field.initial)
        if isinstance(value, list):
            value = [getattr(v, "pk", v) for v in value]
        elif hasattr(value, "pk"):
            value = value.pk
        data[name] = "" if value is None else value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for form in formset.forms:
            data[f"{form.prefix}-id"] = form.instance.pk
            data[f"{form.prefix}-{formset.fk.name}"] = formset.instance.pk
    data.update(fields)
    return {key: value for key, value in data.items() if value is not False}


MODELS = [
    "conversation",
    "contact",
    "message",
    "note",
    "tag",
    "cannedreply",
    "teamqueue",
    "inbox",
]


@pytest.mark.parametrize("model", MODELS)
def test_changelist_and_change_page_load(
    root_client: Client, world: dict[str, Any], model: str
) -> None:
    row = world[model]

    changelist = root_client.get(f"{ADMIN}/{model}/", headers=EN)
    change = root_client.get(f"{ADMIN}/{model}/{row.pk}/change/", headers=EN)

    assert listed(changelist) == [row]
    assert change.status_code == 200
    assert change.context["original"] == row


def test_console_users_are_sent_to_the_admin_login(agent: User, world: dict[str, Any]) -> None:
    client = Client()
    client.force_login(agent)

    response = client.get(f"{ADMIN}/conversation/", headers=EN)

    assert (response.status_code, response.headers["Location"]) == (
        302,
        "/admin/login/?next=/admin/conversations/conversation/",
    )


@pytest.mark.parametrize("model", ["conversation", "contact", "message", "note"])
def test_history_cannot_be_added_in_admin(
    root_client: Client, world: dict[str, Any], model: str
) -> None:
    assert root_client.get(f"{ADMIN}/{model}/add/", headers=EN).status_code == 403


def test_conversation_changelist_searches_by_protocol(
    root_client: Client, receive: Callable[..., Message]
) -> None:
    first = receive(wa_id="5511988887777").conversation
    second = receive(wa_id="5521977776666", profile_name="João Lima").conversation

    by_protocol = root_client.get(f"{ADMIN}/conversation/?q={second.protocol}", headers=EN)
    by_name = root_client.get(f"{ADMIN}/conversation/?q=Maria", headers=EN)
    by_phone = root_client.get(f"{ADMIN}/conversation/?q=977776666", headers=EN)

    assert listed(by_protocol) == [second]
    assert listed(by_name) == [first]
    assert listed(by_phone) == [second]


def test_conversation_changelist_filters_by_state_and_team(
    root_client: Client, receive: Callable[..., Message], support: Team, supervisor: User
) -> None:
    queued = receive(wa_id="5511988887777").conversation
    resolved = receive(wa_id="5521977776666").conversation
    services.conversation_resolve(conversation=resolved, actor=supervisor)

    by_state = root_client.get(f"{ADMIN}/conversation/?state__exact=resolved", headers=EN)
    by_team = root_client.get(f"{ADMIN}/conversation/?team__id__exact={support.pk}", headers=EN)

    assert listed(by_state) == [resolved]
    assert sorted(c.pk for c in listed(by_team)) == sorted([queued.pk, resolved.pk])


def test_conversation_changelist_queries_do_not_grow_with_rows(
    root_client: Client, receive: Callable[..., Message]
) -> None:
    receive(wa_id="5511988887777")
    with CaptureQueriesContext(connection) as few:
        root_client.get(f"{ADMIN}/conversation/", headers=EN)
    for n in range(10):
        receive(wa_id=f"55119777700{n:02d}")

    with CaptureQueriesContext(connection) as many:
        response = root_client.get(f"{ADMIN}/conversation/", headers=EN)

    assert len(listed(response)) == 11
    assert len(many.captured_queries) == len(few.captured_queries)


def test_contact_changelist_finds_a_cpf_through_its_hash(
    root_client: Client, contact: Contact, agent: User, receive: Callable[..., Message]
) -> None:
    services.contact_update(contact=contact, actor=agent, document=CPF)
    receive(wa_id="5521977776666", profile_name="João Lima")

    for term in (CPF, CPF_TYPED):
        response = root_client.get(f"{ADMIN}/contact/", {"q": term}, headers=EN)
        assert listed(response) == [contact]
    typed_phone = root_client.get(f"{ADMIN}/contact/", {"q": "(11) 98888-7777"}, headers=EN)
    assert listed(typed_phone) == [contact]
    wrong_digit = root_client.get(f"{ADMIN}/contact/", {"q": "529.982.247-26"}, headers=EN)
    assert listed(wrong_digit) == []


def test_the_cpf_is_never_shown_in_clear(
    root_client: Client, contact: Contact, agent: User
) -> None:
    services.contact_update(contact=contact, actor=agent, document=CPF)
    contact.refresh_from_db()

    pages = [
        root_client.get(f"{ADMIN}/contact/", headers=EN),
        root_client.get(f"{ADMIN}/contact/{contact.pk}/change/", headers=EN),
        root_client.get(f"{ADMIN}/conversation/{contact.conversations.get().pk}/change/"),
    ]

    for page in pages:
        assert page.status_code == 200
        for secret in (CPF, CPF_TYPED, "98224725", contact.document_encrypted):
            assert secret not in page.text
    assert "•••••••4725" in pages[0].text
    assert "•••••••4725" in pages[1].text


def test_contact_form_sets_the_cpf_through_the_service(
    root_client: Client, contact: Contact, agent: User
) -> None:
    url = f"{ADMIN}/contact/{contact.pk}/change/"
    page = root_client.get(url, headers=EN)

    response = root_client.post(
        url, change_form_data(page, document=CPF_TYPED, name="Maria Souza Lima"), headers=EN
    )

    assert (response.status_code, response.headers["Location"]) == (302, f"{ADMIN}/contact/")
    contact.refresh_from_db()
    assert (contact.name, contact.document, contact.document_hash) == (
        "Maria Souza Lima",
        CPF,
        document_hash(CPF),
    )
    assert services.contact_find_by_document(CPF) == contact


@pytest.mark.parametrize(
    ("typed", "error"),
    [
        ("123.456.789-00", "Enter a valid CPF or CNPJ."),
        ("111.444.777-35", "Another contact already has this CPF/CNPJ."),
    ],
)
def test_contact_form_shows_a_bad_cpf_on_the_field(
    root_client: Client,
    contact: Contact,
    agent: User,
    receive: Callable[..., Message],
    typed: str,
    error: str,
) -> None:
    other = receive(wa_id="5521977776666").conversation.contact
    services.contact_update(contact=other, actor=agent, document="11144477735")
    url = f"{ADMIN}/contact/{contact.pk}/change/"
    page = root_client.get(url, headers=EN)

    response = root_client.post(url, change_form_data(page, document=typed), headers=EN)

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {"document": [error]}
    contact.refresh_from_db()
    assert (contact.document_encrypted, contact.document_hash) == ("", None)


def test_contact_form_removes_the_cpf(root_client: Client, contact: Contact, agent: User) -> None:
    services.contact_update(contact=contact, actor=agent, document=CPF)
    url = f"{ADMIN}/contact/{contact.pk}/change/"
    page = root_client.get(url, headers=EN)

    response = root_client.post(url, change_form_data(page, clear_document="on"), headers=EN)

    assert response.status_code == 302
    contact.refresh_from_db()
    assert (contact.document_encrypted, contact.document_hash) == ("", None)


def test_resolve_action_goes_through_the_service(
    root_client: Client,
    superuser: User,
    supervisor: User,
    receive: Callable[..., Message],
    django_capture_on_commit_callbacks: Callable[..., Any],
) -> None:
    queued = receive(wa_id="5511988887777").conversation
    done = receive(wa_id="5521977776666").conversation
    untouched = receive(wa_id="5531966665555").conversation
    services.conversation_resolve(conversation=done, actor=supervisor)

    with django_capture_on_commit_callbacks(execute=True):
        response = root_client.post(
            f"{ADMIN}/conversation/",
            {"action": "resolve", "_selected_action": [queued.pk, done.pk]},
            headers=EN,
            follow=True,
        )

    assert flashed(response) == [
        ("success", "1 conversation resolved."),
        ("warning", "1 conversation skipped (already resolved or not allowed)."),
    ]
    for conversation in (queued, done, untouched):
        conversation.refresh_from_db()
    assert (queued.state, queued.resolved_by, queued.unread_count) == (
        "resolved",
        superuser,
        0,
    )
    assert queued.resolved_at is not None
    assert done.resolved_by == supervisor
    assert untouched.state == "queued"


def test_conversation_form_changes_priority_and_tags_but_not_the_state(
    root_client: Client, conversation: Conversation, world: dict[str, Any]
) -> None:
    url = f"{ADMIN}/conversation/{conversation.pk}/change/"
    page = root_client.get(url, headers=EN)
    tag = world["tag"]

    response = root_client.post(
        url,
        change_form_data(page, priority="3", tags=[tag.pk], state="resolved"),
        headers=EN,
    )

    assert response.status_code == 302
    conversation.refresh_from_db()
    assert (conversation.priority, conversation.state) == (3, "queued")
    assert list(conversation.tags.all()) == [tag]
    assert conversation.messages.count() == 1
    assert conversation.notes.count() == 1


def test_conversation_page_shows_messages_oldest_first(
    root_client: Client, conversation: Conversation, receive: Callable[..., Message]
) -> None:
    receive("A luz LOS está vermelha")

    response = root_client.get(f"{ADMIN}/conversation/{conversation.pk}/change/", headers=EN)

    [messages, notes] = response.context["inline_admin_formsets"]
    texts = [form.original.text for form in messages]
    assert texts == ["Minha internet caiu", "A luz LOS está vermelha"]
    assert not messages.has_add_permission
    assert list(notes) == []


@pytest.mark.parametrize(
    ("hours", "error"),
    [
        ('{"0": [["18:00", "08:00"]]}', "18:00-08:00 ends before it starts"),
        ('{"7": [["08:00", "18:00"]]}', "weekday '7' is not 0 (Monday) to 6 (Sunday)"),
        ('{"0": [["8h", "18h"]]}', "Invalid isoformat string: '8h'"),
        ('[["08:00", "18:00"]]', "not an object"),
    ],
)
def test_team_queue_rejects_bad_business_hours(
    root_client: Client, support: Team, hours: str, error: str
) -> None:
    response = root_client.post(
        f"{ADMIN}/teamqueue/add/",
        {
            "team": support.pk,
            "first_response_minutes": 15,
            "resolution_minutes": 480,
            "business_hours": hours,
            "max_active_per_agent": 5,
        },
        headers=EN,
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.errors == {
        "business_hours": [
            'Business hours must look like {"0": [["08:00", "18:00"]]} (weekday 0 = Monday to '
            f"6 = Sunday, opening before closing): {error}"
        ]
    }
    assert not TeamQueue.objects.exists()


def test_team_queue_takes_good_business_hours(root_client: Client, support: Team) -> None:
    response = root_client.post(
        f"{ADMIN}/teamqueue/add/",
        {
            "team": support.pk,
            "first_response_minutes": 10,
            "resolution_minutes": 240,
            "business_hours": '{"5": [["08:00", "12:00"]]}',
            "auto_assign": "on",
            "max_active_per_agent": 3,
        },
        headers=EN,
    )

    assert response.status_code == 302
    queue = TeamQueue.objects.get()
    assert (queue.team, queue.business_hours, queue.auto_assign, queue.max_active_per_agent) == (
        support,
        {"5": [["08:00", "12:00"]]},
        True,
        3,
    )


def test_canned_reply_is_created_through_the_service(
    root_client: Client, superuser: User, support: Team
) -> None:
    form = {"shortcut": "reinicie", "title": "Reiniciar o roteador", "team": support.pk}

    bad = root_client.post(
        f"{ADMIN}/cannedreply/add/", {**form, "text": "Olá {{cliente.nome}}"}, headers=EN
    )
    good = root_client.post(
        f"{ADMIN}/cannedreply/add/",
        {**form, "text": "{{contact.first_name}}, desligue o roteador da tomada."},
        headers=EN,
    )

    assert bad.context["adminform"].form.errors == {
        "text": [
            "Unknown placeholder {{cliente.nome}}; use {{agent.name}}, {{contact.customer_code}}, "
            "{{contact.first_name}}, {{contact.name}}, {{conversation.protocol}}."
        ]
    }
    reply = CannedReply.objects.get()
    assert good.headers["Location"] == f"{ADMIN}/cannedreply/"
    assert (reply.shortcut, reply.team, reply.created_by) == ("reinicie", support, superuser)


def test_message_and_note_lists_are_read_only(root_client: Client, world: dict[str, Any]) -> None:
    message, note = world["message"], world["note"]

    messages = root_client.get(f"{ADMIN}/message/?direction__exact=in&q=internet", headers=EN)
    notes = root_client.get(f"{ADMIN}/note/", headers=EN)
    change = root_client.post(
        f"{ADMIN}/message/{message.pk}/change/", {"text": "editado"}, headers=EN
    )
    delete = root_client.post(f"{ADMIN}/note/{note.pk}/delete/", {"post": "yes"}, headers=EN)

    assert listed(messages) == [message]
    assert listed(notes) == [note]
    assert (change.status_code, delete.status_code) == (403, 403)
    message.refresh_from_db()
    assert message.text == "Minha internet caiu"
    assert Note.objects.filter(pk=note.pk).exists()

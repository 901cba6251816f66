"""LGPD: export_contact_data (an access request) and erase_contact (an erasure
request). After an erasure no text or JSON column of any table, and no file of
the media storage, holds the person's name, phone, CPF or message texts."""

from __future__ import annotations

import base64
import json
import logging
import os
import stat
from collections.abc import Callable
from datetime import date, timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.admin.models import CHANGE, DELETION, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import models
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations import services
from conversations.models import Contact, Conversation, Message, Note, Tag
from conversations.privacy import (
    ERASED,
    contact_data_export,
    contact_erase,
    contacts_find,
    is_erased,
)
from ispsupport.errors import ServiceError
from subscribers.models import Subscriber
from tests.subscribers.factories import make_contract, make_invoice, make_plan, make_subscriber
from whatsapp.tasks import _accepted_as, _remember_accepted

NAME = "Maria Aparecida Souza"
PROFILE = "Maria Souza"
USERNAME = "maria.fibra"
BSUID = "BR.maria8841"
WA_ID = "5511988887777"
PHONES = [
    WA_ID,
    "+5511988887777",
    "+55 11 98888-7777",
    "11988887777",
    "(11) 98888-7777",
    "98888-7777",
    "988887777",
    "551188887777",  # the same number as WhatsApp reports old accounts
    "88887777",
]
CPF = "52998224725"
CPF_TYPED = "529.982.247-25"
CODE = "CLI-8841"
CONTACT_NOTES = "Cliente desde 2019, mora na Rua das Acácias 42, apto 31"
TEXTS = [
    "Minha internet caiu desde ontem aqui na Rua das Acácias",
    "Foto do roteador piscando vermelho",
    "Olá Maria Aparecida, confirmei o CPF 529.982.247-25 e já abri a visita",
    "Obrigada, a conexão voltou ao normal hoje cedo",
    "Vou reiniciar a ONU agora mesmo, aguarde por favor",
]
NOTE = "Maria Aparecida ligou do 11 98888-7777 reclamando de quedas noturnas"
MEDIA_BYTES = b"\xff\xd8\xff\xe0 JFIF exif: Maria Aparecida Souza 11 98888-7777"
REASON = "Pedido LGPD, chamado DPO-2026-0042"

OTHER_NAME = "João Pereira Lima"
OTHER_TEXT = "Boleto do João vence amanhã, pode mandar a segunda via?"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def erasing_admin(db: None) -> User:
    return User.objects.create_user(
        username="dpo.admin", password="Senha-Forte-123", role=User.Role.ADMIN
    )


def _history(obj: models.Model, *, repr_: str, message: str, user: User) -> LogEntry:
    """What admin writes when staff edit the object there."""
    return LogEntry.objects.create(
        user=user,
        content_type=ContentType.objects.get_for_model(obj),
        object_id=str(obj.pk),
        object_repr=repr_,
        action_flag=CHANGE,
        change_message=message,
    )


@pytest.fixture
def person(receive: Callable[..., Message], agent: User, supervisor: User) -> Contact:
    """Maria: two conversations (one resolved and rated, one open with an unsent
    reply), a photo, an internal note, the bot's memory, tags and admin history."""
    first = receive(
        TEXTS[0],
        wa_id=WA_ID,
        bsuid=BSUID,
        username=USERNAME,
        profile_name=PROFILE,
        payload={"from": WA_ID, "text": {"body": TEXTS[0]}},
    )
    contact = first.conversation.contact
    Tag.objects.create(name="vip")
    services.contact_update(
        contact=contact,
        actor=agent,
        name=NAME,
        document=CPF_TYPED,
        customer_code=CODE,
        notes=CONTACT_NOTES,
        tags=["vip"],
    )
    photo = receive(
        TEXTS[1],
        wa_id=WA_ID,
        kind=Message.Kind.IMAGE,
        media_id="1186273839",
        media_mime_type="image/jpeg",
        payload={"image": {"caption": TEXTS[1], "id": "1186273839"}},
    )
    path = default_storage.save("whatsapp/2026/01/4f1c9e0a.jpg", ContentFile(MEDIA_BYTES))
    services.message_set_media(message=photo, path=path, mime_type="image/jpeg")
    reply = services.message_send(
        conversation=first.conversation, text=TEXTS[2], actor=agent
    ).message
    Message.objects.filter(pk=reply.pk).update(
        status=Message.Status.READ, external_id=f"wamid.HBgN{WA_ID}FQIAERgS", sent_at=timezone.now()
    )
    services.message_set_reaction(message=reply, by="contact", emoji="🙏")
    services.note_create(conversation=first.conversation, author=agent, text=NOTE)
    services.conversation_resolve(conversation=first.conversation, actor=agent)
    Conversation.objects.filter(pk=first.conversation.pk).update(
        resolved_at=timezone.now() - timedelta(hours=5),
        csat_score=5,
        csat_answered_at=timezone.now() - timedelta(hours=5),
    )

    second = receive(TEXTS[3], wa_id=WA_ID).conversation
    assert second.pk != first.conversation.pk
    Conversation.objects.filter(pk=second.pk).update(
        bot_state={"step": "identify", "document": CPF, "name": NAME}
    )
    services.message_send(conversation=second, text=TEXTS[4], actor=agent)  # stays pending

    _history(
        contact,
        repr_=NAME,
        message='[{"changed": {"fields": ["Name", "Notes"]}}]',
        user=supervisor,
    )
    _history(
        first.conversation,
        repr_=str(first.conversation),
        message=json.dumps([{"added": {"name": "internal note", "object": NOTE[:60]}}]),
        user=supervisor,
    )
    _history(photo, repr_=str(photo), message="[]", user=supervisor)
    contact.refresh_from_db()
    return contact


@pytest.fixture
def other(receive: Callable[..., Message]) -> Contact:
    """Someone else, who must come out of Maria's erasure untouched."""
    message = receive(OTHER_TEXT, wa_id="5521977776666", profile_name=OTHER_NAME)
    return message.conversation.contact


def _needles() -> list[str]:
    return [
        NAME,
        PROFILE,
        USERNAME,
        BSUID,
        *PHONES,
        CPF,
        CPF_TYPED,
        CODE,
        CONTACT_NOTES,
        NOTE,
        *TEXTS,
        NOTE[:60],
    ]


def _text_columns(model: type[models.Model]) -> list[str]:
    return [
        f.attname
        for f in model._meta.concrete_fields
        if isinstance(f, models.CharField | models.TextField | models.JSONField)
    ]


def database_traces(needles: list[str]) -> list[str]:
    """Every (table, column, needle) where a text or JSON column holds a needle.

    JSON is rendered without ASCII escapes: a JSON column storing "Acácias"
    as "Ac\\u00e1cias" must still be caught."""
    found = []
    lowered = [n.lower() for n in needles]
    for model in apps.get_models(include_auto_created=True):
        columns = _text_columns(model)
        if not columns:
            continue
        for row in model._base_manager.values_list(*columns):
            for column, value in zip(columns, row, strict=True):
                if value is None:
                    continue
                text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
                text = text.lower()
                found += [
                    f"{model._meta.db_table}.{column}: {needle}"
                    for needle in lowered
                    if needle in text
                ]
    return found


def media_traces(root: Path, needles: list[str]) -> list[str]:
    found = []
    for path in root.rglob("*") if root.exists() else ():
        if path.is_file():
            haystack = (path.name + path.read_bytes().decode("latin-1", "replace")).lower()
            found += [f"{path}: {n}" for n in needles if n.lower() in haystack]
    return found


def erase(*args: str) -> str:
    out = StringIO()
    call_command("erase_contact", *args, stdout=out, stderr=StringIO())
    return out.getvalue()


def export(*args: str) -> tuple[str, str]:
    out, err = StringIO(), StringIO()
    call_command("export_contact_data", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def snapshot(contact: Contact) -> dict[str, Any]:
    """What metrics and reports read: must survive an erasure unchanged."""
    conversations = Conversation.objects.filter(contact=contact).order_by("pk")
    return {
        "conversations": list(
            conversations.values_list(
                "pk", "protocol", "team_id", "created_at", "first_response_at", "csat_score"
            )
        ),
        "messages": list(
            Message.objects.filter(conversation__contact=contact)
            .order_by("pk")
            .values_list("pk", "direction", "sender_type", "kind", "created_at")
        ),
        "notes": list(
            Note.objects.filter(conversation__contact=contact)
            .order_by("pk")
            .values_list("pk", "created_at")
        ),
    }


# --- Finding the person ------------------------------------------------------------


@pytest.mark.parametrize(
    "query",
    [
        "+55 11 98888-7777",
        "5511988887777",
        "11988887777",
        "(11) 98888-7777",
        "551188887777",
        "55 11 8888-7777",
        BSUID,
        CPF,
        CPF_TYPED,
    ],
)
def test_the_person_is_found_by_any_phone_format_their_ids_or_cpf(
    person: Contact, other: Contact, query: str
) -> None:
    assert [m.contact for m in contacts_find(query=query)] == [person]


def test_how_each_contact_was_found_is_said(person: Contact) -> None:
    Contact.objects.filter(pk=person.pk).update(wa_id="551188887777")  # an old account's id

    [match] = contacts_find(query="+55 11 98888-7777")

    assert match.matched_by == ["phone", "whatsapp_id"]
    assert contacts_find(query="5511900000000") == []
    assert contacts_find(query="   ") == []


# --- Export (access request) -------------------------------------------------------


@pytest.fixture
def subscriber(person: Contact) -> Any:
    """Maria in the ISP's records: a contract with two invoices."""
    owner = make_subscriber(
        CODE, NAME, phone="+5511988887777", document=CPF, email="maria@example.com"
    )
    contract = make_contract(
        "CT-77", subscriber=owner, plan=make_plan(), address="Rua das Acácias 42"
    )
    make_invoice("F-1", contract=contract, due_date=date(2026, 1, 10), status="paid")
    make_invoice("F-2", contract=contract, due_date=date(2026, 2, 10), digitable_line="34191.79001")
    return owner


def test_export_holds_everything_about_the_person(
    person: Contact, other: Contact, subscriber: Any
) -> None:
    out, err = export("+55 11 98888-7777")

    data = json.loads(out)
    assert data["format"] == "ispsupport.personal-data-export/1"
    [contact] = data["contacts"]
    assert {k: contact[k] for k in ("id", "name", "whatsapp_profile_name", "phone")} == {
        "id": person.pk,
        "name": NAME,
        "whatsapp_profile_name": PROFILE,
        "phone": "+5511988887777",
    }
    assert (contact["whatsapp_id"], contact["whatsapp_user_id"], contact["whatsapp_username"]) == (
        WA_ID,
        BSUID,
        USERNAME,
    )
    assert (contact["document"], contact["customer_code"], contact["notes"]) == (
        CPF,
        CODE,
        CONTACT_NOTES,
    )
    assert contact["tags"] == ["vip"]
    first, second = contact["conversations"]
    assert (first["state"], first["team"], first["csat_score"]) == (
        "resolved",
        "Suporte técnico",
        5,
    )
    assert first["protocol"] == Conversation.objects.get(pk=first["id"]).protocol
    assert [m["text"] for m in first["messages"] if m["sender"] != "bot"][:3] == TEXTS[:3]
    photo = first["messages"][1]
    assert (photo["kind"], photo["media_file"], photo["media_type"]) == (
        "image",
        "4f1c9e0a.jpg",
        "image/jpeg",
    )
    assert first["messages"][2]["direction"] == "out"
    assert first["internal_notes"] == [
        {"created_at": first["internal_notes"][0]["created_at"], "by": "staff", "text": NOTE}
    ]
    assert [m["text"] for m in second["messages"]] == [TEXTS[3], TEXTS[4]]
    assert second["state"] == "open"
    [record] = data["subscribers"]
    assert (record["code"], record["name"], record["document"]) == (CODE, NAME, CPF)
    [contract] = record["contracts"]
    assert contract["plan"]["name"] == "Fibra 300 Mega"
    assert [i["code"] for i in contract["invoices"]] == ["F-1", "F-2"]
    assert OTHER_NAME not in out and OTHER_TEXT not in out
    assert (
        err == "Exported 1 contact(s) (2 conversations, 5 messages) and 1 subscriber record(s).\n"
    )


def test_export_by_cpf_finds_the_same_data(person: Contact, subscriber: Any) -> None:
    by_phone = json.loads(export("11988887777")[0])
    by_cpf = json.loads(export(CPF_TYPED)[0])

    assert by_cpf["contacts"] == by_phone["contacts"]
    assert by_cpf["subscribers"] == by_phone["subscribers"]


def test_export_to_a_file_only_its_owner_can_read(
    person: Contact, tmp_path: Path, admin: User
) -> None:
    target = tmp_path / "maria.json"

    out, _err = export(CPF, "--output", str(target), "--actor", admin.username)

    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert json.loads(target.read_text(encoding="utf-8"))["contacts"][0]["document"] == CPF
    assert out == (
        f"Exported 1 contact(s) (2 conversations, 5 messages) and 0 subscriber record(s) "
        f"to {target}.\n"
    )
    entry = LogEntry.objects.get(user=admin)
    assert (entry.object_id, entry.action_flag) == (str(person.pk), CHANGE)
    assert "data exported" in entry.change_message


def test_several_matching_contacts_are_all_exported(
    person: Contact, receive: Callable[..., Message]
) -> None:
    # A second contact of the same person: known by the number without the 9,
    # before the identities were linked.
    twin = receive("Oi", wa_id="5511900001111").conversation.contact
    Contact.objects.filter(pk=twin.pk).update(wa_id="551188887777", phone=None)

    out, err = export("+55 11 98888-7777")

    assert [c["id"] for c in json.loads(out)["contacts"]] == [person.pk, twin.pk]
    assert err.startswith(f"2 contacts match (ids {person.pk}, {twin.pk}): all are exported.\n")


def test_a_subscriber_without_a_contact_is_exported_by_cpf(db: None) -> None:
    make_subscriber(CODE, NAME, phone="+5511988887777", document=CPF)

    data = json.loads(export(CPF_TYPED)[0])

    assert data["contacts"] == []
    assert [s["code"] for s in data["subscribers"]] == [CODE]


def test_a_shared_phone_does_not_export_someone_elses_contract(person: Contact) -> None:
    # Maria's number is also on her brother's subscription: only her own
    # record (by customer code) is hers.
    make_subscriber(CODE, NAME, phone="+5511988887777")
    make_subscriber("CLI-9000", "Pedro Souza", phone="+5511988887777")

    out, err = export("+55 11 98888-7777")

    assert [s["code"] for s in json.loads(out)["subscribers"]] == [CODE]
    assert err.startswith(
        "1 other subscriber records share this phone and are not included: they may be "
        "someone else's (a family's shared number). Export by CPF/CNPJ to include the "
        "person's own.\n"
    )


def test_a_phone_only_several_subscribers_share_asks_for_the_cpf(db: None) -> None:
    make_subscriber(CODE, NAME, phone="+5511988887777")
    make_subscriber("CLI-9000", "Pedro Souza", phone="+5511988887777")

    with pytest.raises(CommandError) as failure:
        export("+55 11 98888-7777")

    assert str(failure.value) == (
        "2 subscriber records share that phone, so it does not tell whose data to export: "
        "export by the person's CPF/CNPJ."
    )


def test_nobody_found_is_a_clear_failure(db: None) -> None:
    with pytest.raises(CommandError) as failure:
        export("+55 11 90000-0000")

    assert str(failure.value) == (
        "Nobody found: no contact or subscriber has that phone, WhatsApp id or CPF/CNPJ."
    )


def test_export_costs_the_same_queries_whatever_the_history(
    person: Contact,
    receive: Callable[..., Message],
    django_assert_num_queries: Any,
) -> None:
    contacts = [person]
    with django_assert_num_queries(8) as short:
        contact_data_export(contacts=contacts)
    for n in range(3):
        Conversation.objects.filter(contact=person).update(state="resolved")
        Conversation.objects.filter(contact=person).update(
            resolved_at=timezone.now() - timedelta(hours=5)
        )
        for _ in range(4):
            receive(f"mais uma mensagem {n}", wa_id=WA_ID)
    with django_assert_num_queries(len(short.captured_queries)):
        exported = contact_data_export(contacts=contacts)
    assert len(exported[0]["conversations"]) == 5


def test_help_says_internal_notes_are_included() -> None:
    command = load_command_class("chatbot", "export_contact_data")
    text = " ".join(command.create_parser("manage.py", "export_contact_data").format_help().split())

    assert "INTERNAL NOTES" in text
    assert "access request covers them" in text


# --- Erasure -----------------------------------------------------------------------


def test_dry_run_says_what_would_go_and_changes_nothing(
    person: Contact, erasing_admin: User
) -> None:
    before = database_traces(_needles())

    output = erase("+55 11 98888-7777")

    assert output.splitlines() == [
        f"Contact #{person.pk} (matched by phone, whatsapp_id)",
        "1 contact(s) would be anonymised: name, phone, WhatsApp ids, CPF/CNPJ, customer code, "
        "notes and 1 tag(s).",
        "2 conversation(s) kept as rows (times, protocol, rating); 1 active one(s) would be "
        "resolved.",
        f"{Message.objects.filter(conversation__contact=person).count()} message(s) kept as "
        f"rows; {Message.objects.filter(conversation__contact=person).count()} with text, "
        "payload or media would be cleared, 1 media file(s) would be deleted, 1 unsent would "
        "be failed.",
        "1 internal note(s) would be blanked; 3 admin history entr(ies) and 0 background task "
        "run(s) would be scrubbed.",
        "0 subscriber record(s) would be deleted with 0 contract(s) and 0 invoice(s); 0 admin "
        "history entr(ies) would be scrubbed.",
        "Dry run: nothing changed; add --commit --actor USERNAME --reason TEXT to erase.",
    ]
    assert database_traces(_needles()) == before
    assert default_storage.exists("whatsapp/2026/01/4f1c9e0a.jpg")


def test_after_erasure_no_trace_of_the_person_is_left(
    person: Contact,
    other: Contact,
    erasing_admin: User,
    settings: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    assert len(database_traces(_needles())) > 20  # the search does see the data
    assert media_traces(Path(settings.MEDIA_ROOT), _needles())
    kept = snapshot(person)
    others_before = database_traces([OTHER_NAME, OTHER_TEXT])

    with caplog.at_level(logging.INFO, logger="conversations.privacy"):
        output = erase(CPF_TYPED, "--commit", "--actor", erasing_admin.username, "--reason", REASON)

    assert output.splitlines()[-1] == (
        "Erased 1 contact(s) and 0 subscriber record(s); recorded in admin's history as "
        "done by dpo.admin."
    )
    assert database_traces(_needles()) == []
    assert media_traces(Path(settings.MEDIA_ROOT), _needles()) == []
    assert not default_storage.exists("whatsapp/2026/01/4f1c9e0a.jpg")
    # Counts, times and ratings stay for the metrics; someone else stays whole.
    assert snapshot(person) == kept
    assert database_traces([OTHER_NAME, OTHER_TEXT]) == others_before
    # Who, when and why; the log line has ids and counts only.
    audit = LogEntry.objects.get(user=erasing_admin)
    assert (audit.object_id, audit.object_repr) == (str(person.pk), ERASED)
    assert f"Reason: {REASON}." in audit.change_message
    [line] = [r.msg for r in caplog.records if r.name == "conversations.privacy"]
    assert line["event"] == "contacts_erased"  # type: ignore[index]
    assert line["contact_ids"] == [person.pk]  # type: ignore[index]
    assert line["actor_id"] == erasing_admin.pk  # type: ignore[index]
    rendered = json.dumps(line, ensure_ascii=False, default=str).lower()
    assert not [n for n in _needles() if n.lower() in rendered]


def _task_run(path: str, first_arg: int, *, traceback: str = "", **kwargs: Any) -> DBTaskResult:
    now = timezone.now()
    return DBTaskResult.objects.create(
        task_path=path,
        args_kwargs={"args": [first_arg], "kwargs": {"request_id": "req-1", **kwargs}},
        backend_name="default",
        status="FAILED" if traceback else "READY",
        started_at=now if traceback else None,
        finished_at=now if traceback else None,
        exception_class_path="django.db.utils.IntegrityError" if traceback else "",
        traceback=traceback,
    )


def test_erasure_scrubs_what_background_tasks_stored_about_the_person(
    person: Contact,
    other: Contact,
    erasing_admin: User,
    django_capture_on_commit_callbacks: Any,
) -> None:
    """A failed run's traceback can quote the data it failed on, and a send's
    retry carries the wamid Meta gave it, which encodes the phone number."""
    quoted = f"IntegrityError: duplicate key\nDETAIL:  Key (wa_id)=({WA_ID}) already exists.\n"
    wamid = "wamid." + base64.b64encode(f"\x18\r{WA_ID}\x15\x02".encode()).decode()
    message = Message.objects.filter(conversation__contact=person).order_by("pk").first()
    conversation = Conversation.objects.filter(contact=person).order_by("pk").first()
    other_message = Message.objects.get(conversation__contact=other)
    assert message is not None and conversation is not None
    bot = _task_run("chatbot.tasks.handle_message", message.pk, traceback=quoted)
    send = _task_run("whatsapp.tasks.send_message", message.pk, attempt=2, sent_as=wamid)
    rating = _task_run("chatbot.csat.ask_rating", conversation.pk, traceback=quoted)
    theirs = quoted.replace(WA_ID, "5521977776666")
    untouched = _task_run("chatbot.tasks.handle_message", other_message.pk, traceback=theirs)
    assert database_traces([wamid])
    # The send task also remembers the wamid in the cache for 24 hours.
    _remember_accepted(message.pk, wamid)
    _remember_accepted(other_message.pk, "wamid.theirs")

    dry_run = erase(CPF_TYPED)
    assert "3 background task run(s) would be scrubbed." in dry_run
    with django_capture_on_commit_callbacks(execute=True):
        output = erase(CPF_TYPED, "--commit", "--actor", erasing_admin.username, "--reason", REASON)

    assert "3 background task run(s) were scrubbed." in output
    assert database_traces([*_needles(), wamid]) == []
    for row in (bot, send, rating, untouched):
        row.refresh_from_db()
    assert (bot.traceback, rating.traceback) == ("[erased: LGPD request]",) * 2
    assert bot.exception_class_path == "django.db.utils.IntegrityError"  # counts stay
    assert send.args_kwargs == {
        "args": [message.pk],
        "kwargs": {"request_id": "req-1", "attempt": 2, "sent_as": ""},
    }
    assert untouched.traceback == theirs  # someone else's run stays whole
    assert _accepted_as(message.pk) == ""
    assert _accepted_as(other_message.pk) == "wamid.theirs"


def test_erased_rows_read_as_erased(person: Contact, erasing_admin: User) -> None:
    contact_erase(contacts=[person], actor=erasing_admin, reason=REASON)

    person.refresh_from_db()
    assert (person.name, person.profile_name, person.username) == (ERASED, "", "")
    assert (person.phone, person.wa_id, person.bsuid) == (None, None, f"erased-{person.pk}")
    assert (person.document_encrypted, person.document_hash, person.customer_code) == ("", None, "")
    assert is_erased(person) and str(person) == ERASED
    assert list(person.tags.all()) == []
    conversations = Conversation.objects.filter(contact=person).order_by("pk")
    assert [c.state for c in conversations] == ["resolved", "resolved"]
    assert [c.csat_score for c in conversations] == [5, None]
    assert all(c.bot_state == {} for c in conversations)
    messages = Message.objects.filter(conversation__contact=person)
    assert {(m.text, json.dumps(m.payload), m.media_file, m.external_id) for m in messages} == {
        ("", "{}", "", None)
    }
    # Admin history keeps what changed, and a conversation's protocol, not the quotes.
    history = {
        e.content_type.model: (e.object_repr, json.loads(e.change_message))
        for e in LogEntry.objects.exclude(user=erasing_admin)
    }
    first = conversations[0]
    assert history == {
        "contact": (ERASED, [{"changed": {"fields": ["Name", "Notes"]}}]),
        "conversation": (
            first.protocol,
            [{"added": {"name": "internal note", "object": ERASED}}],
        ),
        "message": (ERASED, []),
    }
    unsent = messages.get(text="", status=Message.Status.FAILED)
    assert unsent.error_code == "contact_erased"
    assert list(
        Note.objects.filter(conversation__contact=person).values_list("text", flat=True)
    ) == [ERASED]


def test_the_person_writing_again_is_a_new_contact(
    person: Contact, erasing_admin: User, receive: Callable[..., Message]
) -> None:
    contact_erase(contacts=[person], actor=erasing_admin, reason=REASON)

    fresh = receive("Oi, voltei", wa_id=WA_ID).conversation

    assert fresh.contact_id != person.pk
    assert fresh.contact.phone == "+5511988887777"
    [match] = contacts_find(query=WA_ID)
    assert match.contact.pk == fresh.contact_id


def test_the_service_alone_leaves_the_isps_subscriber_record(
    person: Contact, subscriber: Any, erasing_admin: User
) -> None:
    contact_erase(contacts=[person], actor=erasing_admin, reason=REASON)

    subscriber.refresh_from_db()
    assert (subscriber.name, subscriber.phone, subscriber.document) == (
        NAME,
        "+5511988887777",
        CPF,
    )
    assert subscriber.contracts.count() == 1


def test_the_command_deletes_the_subscriber_copy_leaving_no_trace(
    person: Contact, other: Contact, subscriber: Any, erasing_admin: User, settings: Any
) -> None:
    """The export's subscriber (name, CPF, phone, e-mail, installation address,
    contract and invoices) goes with the contact, and admin's history of it."""
    needles = [*_needles(), "maria@example.com", "Rua das Acácias 42", "CT-77", "34191.79001"]
    _history(subscriber, repr_=str(subscriber), message="[]", user=erasing_admin)
    assert database_traces(needles)
    dry = erase("+55 11 98888-7777")
    assert "1 subscriber record(s) would be deleted with 1 contract(s) and 2 invoice(s)" in dry
    assert Subscriber.objects.filter(pk=subscriber.pk).exists()

    output = erase("+55 11 98888-7777", "--commit", "--actor", "dpo.admin", "--reason", REASON)

    assert "1 subscriber record(s) were deleted with 1 contract(s) and 2 invoice(s)" in output
    assert output.splitlines()[-1] == (
        "Erased 1 contact(s) and 1 subscriber record(s); recorded in admin's history as done "
        "by dpo.admin."
    )
    assert database_traces(needles) == []
    assert not Subscriber.objects.filter(pk=subscriber.pk).exists()
    assert LogEntry.objects.filter(
        object_id=str(subscriber.pk), object_repr="[apagado]", action_flag=DELETION
    ).exists()


def test_keep_subscriber_keeps_the_isps_record(
    person: Contact, subscriber: Any, erasing_admin: User
) -> None:
    output = erase(
        CPF_TYPED, "--commit", "--actor", "dpo.admin", "--reason", REASON, "--keep-subscriber"
    )

    assert "The ISP's subscriber records are kept (--keep-subscriber)." in output
    subscriber.refresh_from_db()
    assert subscriber.name == NAME
    assert Contact.objects.get(pk=person.pk).name == ERASED


def test_a_subscriber_who_never_wrote_is_erased_by_cpf(db: None, erasing_admin: User) -> None:
    owner = make_subscriber("CLI-9", "Ana Lúcia Prado", phone="+5511977776666", document=CPF)

    output = erase(CPF_TYPED, "--commit", "--actor", "dpo.admin", "--reason", REASON)

    assert "No helpdesk contact matches: only subscriber records are erased." in output
    assert not Subscriber.objects.filter(pk=owner.pk).exists()
    assert database_traces(["Ana Lúcia Prado", "+5511977776666"]) == []


def test_someone_else_sharing_the_phone_keeps_their_record(
    person: Contact, erasing_admin: User
) -> None:
    """Two subscribers on one phone (a family): the phone does not say whose
    records are the person's, so neither is deleted by it."""
    husband = make_subscriber(
        "CLI-1", "Carlos Souza", phone="+5511988887777", document="11144477735"
    )
    daughter = make_subscriber("CLI-2", "Bia Souza", phone="+5511988887777")

    erase(WA_ID, "--commit", "--actor", "dpo.admin", "--reason", REASON)

    assert Subscriber.objects.filter(pk__in=[husband.pk, daughter.pk]).count() == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--commit", "--reason", REASON],
            "--actor is required with --commit (an admin's username).",
        ),
        (
            ["--commit", "--actor", "dpo.admin"],
            "--reason is required with --commit (e.g. the ticket number).",
        ),
        (["--commit", "--actor", "nobody", "--reason", REASON], "No active user named 'nobody'."),
        (
            ["--commit", "--actor", "bruno.agente", "--reason", REASON],
            "'bruno.agente' is not an admin: only admins may erase contacts.",
        ),
    ],
)
def test_commit_needs_an_admin_and_a_reason(
    person: Contact, erasing_admin: User, args: list[str], message: str
) -> None:
    with pytest.raises(CommandError) as failure:
        erase(WA_ID, *args)

    assert str(failure.value) == message
    person.refresh_from_db()
    assert person.name == NAME


def test_the_service_refuses_without_an_admin_or_a_reason(
    person: Contact, agent: User, erasing_admin: User
) -> None:
    with pytest.raises(ServiceError) as not_admin:
        contact_erase(contacts=[person], actor=agent, reason=REASON)
    with pytest.raises(ServiceError) as no_reason:
        contact_erase(contacts=[person], actor=erasing_admin, reason="  ")

    assert (not_admin.value.code, no_reason.value.code) == ("not_allowed", "reason_required")


def test_nobody_to_erase_is_a_clear_failure(db: None) -> None:
    with pytest.raises(CommandError) as failure:
        erase("+55 11 90000-0000")

    assert str(failure.value) == (
        "No contact or subscriber matches that phone, WhatsApp id or CPF/CNPJ."
    )


def test_an_ambiguous_number_is_never_erased_on_a_guess(
    person: Contact, receive: Callable[..., Message], erasing_admin: User
) -> None:
    # 529.982.247-25 is Maria's CPF; someone else's WhatsApp number has the same digits.
    receive("Oi", wa_id="5552998224725")

    with pytest.raises(CommandError) as failure:
        erase(CPF, "--commit", "--actor", erasing_admin.username, "--reason", REASON)

    assert str(failure.value).startswith("Ambiguous: read as a CPF/CNPJ it names one contact")
    person.refresh_from_db()
    assert person.name == NAME
    # Written unambiguously, it works.
    erase(CPF_TYPED, "--commit", "--actor", erasing_admin.username, "--reason", REASON)
    person.refresh_from_db()
    assert person.name == ERASED


def test_erase_help_says_what_happens_to_the_subscriber_record() -> None:
    command = load_command_class("chatbot", "erase_contact")
    text = " ".join(command.create_parser("manage.py", "erase_contact").format_help().split())

    assert "subscriber records stored here" in text
    assert "--keep-subscriber" in text
    assert "--commit" in text and "--actor" in text and "--reason" in text

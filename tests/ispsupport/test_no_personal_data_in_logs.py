"""No personal data in the logs (LGPD): phones, CPFs, names, message text,
access tokens and app secrets never reach a log line.

A realistic day of one customer runs end to end through the real pieces: signed
webhooks, the bot identifying her by her CPF, the task worker sending through
the (fake) Graph API with the number's access token, an agent answering through
the API, a photo downloaded with its caption, delivery statuses, and a Graph
API error. Every log record of the process is rendered by the production JSON
formatter (``ispsupport.logs``, as LOG_FORMAT=json), at DEBUG level so that
an operator turning the level up exposes nothing either, and every line is
searched for each of her identifiers in every shape they are written.

The helpers at the top (``json_formatter``, ``capture_logs``, ``leaks``) are
also what a suite-wide capture would use (see the issue 8 report): the whole
suite's records to a file, searched at the end.
"""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings as django_settings
from django.test import Client

from accounts.models import Team, User
from conversations.models import Contact, Conversation, Inbox, Message
from ispsupport.logs import logging_dict
from tests.chatbot.conftest import routed_menu, sales  # noqa: F401 - fixtures
from tests.chatbot.scripts import contract, invoice, isp_bot, subscriber  # noqa: F401
from tests.conversations.conftest import finance, support  # noqa: F401 - fixtures
from tests.support import bearer
from tests.whatsapp.conftest import run_worker  # noqa: F401 - fixture
from tests.whatsapp.fake_graph import FakeGraph, fake_graph  # noqa: F401 - fixture
from tests.whatsapp.payloads import contact, envelope, message, post, status, text
from whatsapp.models import WhatsAppAccount

# --- Capturing what production would write ------------------------------------------


def json_formatter() -> logging.Formatter:
    """The formatter LOG_FORMAT=json installs, built by the same function."""
    spec = dict(logging_dict(fmt="json", level="DEBUG")["formatters"]["structlog"])
    factory = spec.pop("()")
    return factory(**spec)


@contextmanager
def capture_logs(level: int = logging.DEBUG) -> Iterator[io.StringIO]:
    """Every record that reaches the root logger, rendered as production would."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.setLevel(level)
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(level)
    try:
        yield stream
    finally:
        root.removeHandler(handler)
        root.setLevel(previous)


def _shapes_of_phone(e164: str) -> list[str]:
    """+5521987654321 as it may be written: E.164, WhatsApp id, national, local."""
    digits = e164.lstrip("+")
    area, number = digits[2:4], digits[4:]
    return [
        e164,
        digits,  # WhatsApp's wa_id
        area + number,  # national, no country code
        number,  # local
        f"{number[:-4]}-{number[-4:]}",  # 98765-4321
        f"({area}) {number[:-4]}-{number[-4:]}",
        f"+55 {area} {number[:-4]}-{number[-4:]}",
        # Pre-2016 WhatsApp ids lack the ninth digit of a mobile.
        digits[:4] + digits[5:] if len(digits) == 13 else digits,
    ]


def _shapes_of_cpf(cpf: str) -> list[str]:
    return [cpf, f"{cpf[:3]}.{cpf[3:6]}.{cpf[6:9]}-{cpf[9:]}"]


def leaks(lines: Iterable[str], secrets: dict[str, list[str]]) -> list[str]:
    """One finding per line and kind of secret (name -> every shape of it) it holds.

    A line is searched as written (JSON escapes non-ASCII) and as decoded, so
    an accented name is found either way.
    """
    found = []
    for line in lines:
        if not line.strip():
            continue
        searched = line
        with suppress(ValueError):
            searched += "\n" + json.dumps(json.loads(line), ensure_ascii=False)
        lowered = searched.casefold()
        for what, shapes in secrets.items():
            shape = next((s for s in shapes if s.casefold() in lowered), None)
            if shape is not None:
                found.append(f"{what} ({shape!r}) in: {line[:400]}")
    return found


# --- The whole suite (opt-in: LOG_CAPTURE_FILE) -----------------------------------------
#
# What the suite's own fixtures use and no log line may show. Phones are looked
# for only in the shapes no id carries: the fixtures put wa_ids in message ids
# (wamid.TEST0000015511988887777), which are logged on purpose.
SUITE_SECRETS: dict[str, list[str]] = {
    "a fixture phone": ["+5511988887777", "(11) 98888-7777", "98888-7777", "+55 11 98888-7777"],
    "a fixture CPF": [
        *_shapes_of_cpf("52998224725"),
        *_shapes_of_cpf("11144477735"),
        *_shapes_of_cpf("39053344705"),
    ],
    "a fixture name": ["Maria Souza", "Joana Pereira"],
    "a fixture access token": ["EAAG-test-access-token", "EAAG-new-token", "EAAG-renewed-token"],
    "a fixture app secret": ["test-app-secret-0123456789", "segredo-do-ambiente"],
}


def capture_to_file(path: str) -> logging.Handler:
    """Add a handler writing every record, as production JSON, to ``path``."""
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(json_formatter())
    logging.getLogger().addHandler(handler)
    return handler


def scan_log_file(path: str, secrets: dict[str, list[str]] = SUITE_SECRETS) -> list[str]:
    with open(path, encoding="utf-8") as lines:
        return leaks(lines, secrets)


# --- The customer, her number and her day -----------------------------------------------

# No id below shares a run of digits with her phones (the search would find them).
PHONE_NUMBER_ID = "106540352242922"
ACCESS_TOKEN = "EAAGm0PZB8tokenQ7ZCZBvXk2sLtA9fR4mUeW"
APP_SECRET = "f3c1e2d4b5a69788a0b1c2d3e4f5a6b7"
VERIFY_TOKEN = "verifica-7d1e3c"

CUSTOMER_PHONE = "+5521987654321"  # she writes from this one
OLD_PHONE = "+5521976543210"  # the one her ISP has on file
CUSTOMER_NAME = "Maria Aparecida Quintanilha"
CPF = "52998224725"
TEXTS = {
    "first message": "preciso da segunda via do boleto, a internet caiu desde ontem",
    "photo caption": "foto do roteador piscando vermelho",
    "agent reply": "Vou verificar sua conexão agora mesmo, Maria",
    "agent second reply": "Conseguiu reiniciar o roteador da sala?",
}

JPEG = b"\xff\xd8\xff\xe0" + b"JFIF-bytes" * 50
MEDIA_ID = "7788990011223344"


@pytest.fixture(autouse=True)
def _a_deployment(settings: Any, tmp_path: Path) -> None:
    """Media in a temporary folder, cheap password hashing, pt-BR as deployed."""
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.LANGUAGE_CODE = "pt-br"


@pytest.fixture
def account(support: Team) -> WhatsAppAccount:  # noqa: F811 - the imported fixture
    inbox = Inbox.objects.create(name="WhatsApp", address="+55 21 4000-1234", default_team=support)
    account = WhatsAppAccount(
        inbox=inbox,
        name="Suporte",
        phone_number_id=PHONE_NUMBER_ID,
        display_phone="+55 21 4000-1234",
        verify_token=VERIFY_TOKEN,
    )
    account.access_token = ACCESS_TOKEN
    account.app_secret = APP_SECRET
    account.save()
    return account


def _deliver(client: Client, **value: Any) -> None:
    payload = envelope(phone_number_id=PHONE_NUMBER_ID, **value)
    response = post(client, payload, secret=APP_SECRET)
    assert response.status_code == 200, response.content


def _from_her(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "messages": [item],
        "contacts": [contact(wa_id=WA_ID, user_id=None, name=CUSTOMER_NAME)],
    }


WA_ID = CUSTOMER_PHONE.lstrip("+")


def _script_media(fake: FakeGraph) -> None:
    version = django_settings.WHATSAPP_API_VERSION
    fake.reply(
        "GET",
        f"/{version}/{MEDIA_ID}",
        {
            "messaging_product": "whatsapp",
            "url": f"{fake.url}/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1&hash=ATu",
            "mime_type": "image/jpeg",
            "file_size": len(JPEG),
            "id": MEDIA_ID,
        },
    )
    fake.serve_bytes("/whatsapp_business/attachments/", JPEG, content_type="image/jpeg")


# Real commits: the task worker claims its tasks in transactions of its own, and
# on_commit work (live events, signals) runs as in production.
@pytest.mark.django_db(transaction=True)
@pytest.mark.usefixtures("isp_bot")
def test_a_customers_whole_day_leaves_no_personal_data_in_the_logs(
    client: Client,
    account: WhatsAppAccount,
    fake_graph: FakeGraph,  # noqa: F811 - the imported fixture
    run_worker: Callable[[], None],  # noqa: F811 - the imported fixture
) -> None:
    # Her ISP knows her by her CPF and an older phone; she writes from a new one.
    invoice(
        contract(subscriber("C-7001", CUSTOMER_NAME, phone=OLD_PHONE, document=CPF)),
        "F-7001",
        amount="129.90",
    )
    agent = User.objects.create_user(username="bruno", password="Senha-Forte-123", name="Bruno")
    agent.teams.set([account.inbox.default_team])
    version = django_settings.WHATSAPP_API_VERSION
    messages_path = f"/{version}/{PHONE_NUMBER_ID}/messages"

    with capture_logs() as captured:
        # She asks for her bill; the bot asks who she is; she types her CPF.
        _deliver(client, **_from_her(text(TEXTS["first message"], from_=WA_ID, from_user_id=None)))
        run_worker()
        _deliver(
            client,
            **_from_her(text(f"{CPF[:3]}.{CPF[3:6]}.{CPF[6:9]}-{CPF[9:]}", from_=WA_ID,
                             from_user_id=None)),
        )  # fmt: skip
        run_worker()
        contact_row = Contact.objects.get(wa_id=WA_ID)
        assert contact_row.customer_code == "C-7001", "the bot did not identify her by her CPF"
        conversation = Conversation.objects.filter(contact=contact_row).latest("id")

        # A photo with a caption, downloaded with the number's token.
        _script_media(fake_graph)
        photo = message(
            "image",
            {"id": MEDIA_ID, "mime_type": "image/jpeg", "caption": TEXTS["photo caption"]},
            from_=WA_ID,
            from_user_id=None,
        )
        _deliver(client, **_from_her(photo))
        run_worker()

        # An agent answers through the API; the worker sends it with the token.
        api = {**bearer(agent), "Accept-Language": "en"}
        url = f"/api/v1/conversations/{conversation.pk}/messages/"
        response = client.post(
            url, {"text": TEXTS["agent reply"]}, content_type="application/json", headers=api
        )
        assert response.status_code == 201, response.content
        run_worker()

        # Meta reports it delivered and read, naming her number.
        sent = Message.objects.filter(conversation=conversation, direction="out", status="sent")
        statuses = [
            status(m.external_id, value, recipient_id=WA_ID, recipient_user_id=None)
            for m in sent
            for value in ("delivered", "read")
        ]
        _deliver(client, statuses=statuses)

        # The next send fails at Meta.
        fake_graph.fail(
            "POST",
            messages_path,
            code=131047,
            message="(#131047) Re-engagement message",
            details="Message failed to send because more than 24 hours have passed.",
        )
        response = client.post(
            url,
            {"text": TEXTS["agent second reply"]},
            content_type="application/json",
            headers=api,
        )
        assert response.status_code == 201, response.content
        run_worker()

    # The day happened as described: otherwise the search below proves little.
    outbound = Message.objects.filter(conversation__contact=contact_row, direction="out")
    assert outbound.filter(status="failed", error_code="131047").exists()
    assert outbound.filter(status="read").exists()
    assert (
        Message.objects.filter(kind="image", conversation__contact=contact_row)
        .exclude(media_file="")
        .exists()
    ), "the photo was not downloaded"
    assert any(
        r.headers.get("authorization") == f"Bearer {ACCESS_TOKEN}" for r in fake_graph.requests
    )

    lines = captured.getvalue().splitlines()
    assert len(lines) > 20, lines
    for line in lines:
        json.loads(line)  # one JSON object per line, as in production
    secrets = {
        "her phone": _shapes_of_phone(CUSTOMER_PHONE),
        "her phone on file": _shapes_of_phone(OLD_PHONE),
        "her CPF": _shapes_of_cpf(CPF),
        "her name": [CUSTOMER_NAME, "Quintanilha"],
        "the access token": [ACCESS_TOKEN],
        "the app secret": [APP_SECRET],
        "the verify token": [VERIFY_TOKEN],
        **{what: [said] for what, said in TEXTS.items()},
    }
    found = leaks(lines, secrets)
    assert not found, "personal data or secrets in the logs:\n" + "\n".join(found)


# --- The search itself ------------------------------------------------------------


def test_leaks_finds_every_shape_even_escaped_in_json() -> None:
    record = json.dumps({"event": "x", "who": "Conceição", "to": "(21) 98765-4321"})
    secrets = {"name": ["Conceição"], "phone": _shapes_of_phone(CUSTOMER_PHONE)}

    found = leaks([record], secrets)

    assert [f.split(" (")[0] for f in found] == ["name", "phone"]


def test_the_captured_lines_are_the_production_json() -> None:
    with capture_logs() as captured:
        logging.getLogger("ispsupport.test").info("hello %s", "world")

    [line] = captured.getvalue().splitlines()
    record = json.loads(line)
    assert (record["event"], record["level"], record["logger"]) == (
        "hello world",
        "info",
        "ispsupport.test",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT.*Z", record["timestamp"])

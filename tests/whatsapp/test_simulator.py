"""The customer simulator: an admin writes as a customer, and every message
goes over real HTTP, signed, through our real webhook on 127.0.0.1."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
from django.core.cache import cache
from django.test import Client, RequestFactory
from django.urls import reverse
from pytest_django.live_server_helper import LiveServer

from accounts.models import User
from conversations.models import Contact, Conversation, Message
from conversations.services import contact_resolve, message_receive, message_send
from tests.conversations.conftest import PASSWORD
from tests.support import black_hole, free_port
from tests.whatsapp.conftest import APP_SECRET
from tests.whatsapp.payloads import sign
from whatsapp import simulator
from whatsapp.context import simulator as simulator_context
from whatsapp.models import WhatsAppAccount
from whatsapp.sandbox import is_sandbox_id
from whatsapp.services import account_bootstrap_from_env
from whatsapp.simulator import receipts_post, simulator_available
from whatsapp.tasks import send_message
from whatsapp.transport import interactive_buttons

PAGE = "/simulator/"
JSON = {"HTTP_ACCEPT": "application/json"}
XSS_NAME = "<img src=x onerror=alert(1)>"
XSS_TEXT = "<script>alert(1)</script>"


# --- Servers on 127.0.0.1 -------------------------------------------------------------


@pytest.fixture(scope="module")
def webhook_server(django_db_setup: None, django_db_blocker: Any) -> Iterator[LiveServer]:
    """The project served for real on 127.0.0.1 (pytest-django's live server:
    the webhook is a plain HTTP view)."""
    with django_db_blocker.unblock():
        server = LiveServer("127.0.0.1")
    yield server
    server.stop()


@pytest.fixture(autouse=True)
def _loopback_allowed(settings: Any) -> None:
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "127.0.0.1"]


def host_of(url: str) -> str:
    return url.removeprefix("http://")


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Relay:
    """An HTTP server standing where the simulator posts: it keeps each POST
    exactly as received and forwards it to ``forward_to`` (the real webhook),
    answering with its answer, or answers ``answer`` itself."""

    forward_to: str = ""
    answer: tuple[int, dict[str, Any]] = (200, {"status": "ok", "messages": 1})
    received: list[Delivery] = field(default_factory=list)
    port: int = 0

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"


@pytest.fixture
def relay() -> Iterator[Relay]:
    state = Relay()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            state.received.append(Delivery(self.path, dict(self.headers.items()), body))
            if state.forward_to:
                forwarded = httpx.post(
                    state.forward_to + self.path,
                    content=body,
                    headers={
                        "Content-Type": self.headers["Content-Type"],
                        "X-Hub-Signature-256": self.headers.get("X-Hub-Signature-256", ""),
                    },
                    timeout=10,
                )
                status, payload = forwarded.status_code, forwarded.content
            else:
                status, payload = state.answer[0], json.dumps(state.answer[1]).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


# --- People and data ------------------------------------------------------------------


@pytest.fixture
def sofia(db: None) -> User:
    """An admin: Django's staff flag is what the simulator checks."""
    return User.objects.create_user(
        username="sofia.admin",
        password=PASSWORD,
        role=User.Role.ADMIN,
        is_staff=True,
        name="Sofia",
    )


@pytest.fixture
def staff(sofia: User) -> Client:
    client = Client()
    client.force_login(sofia)
    return client


@pytest.fixture
def joana(db: None) -> Contact:
    return contact_resolve(wa_id="5511987654321", name="Joana Lima")


def urls(account: WhatsAppAccount, contact: Contact) -> dict[str, str]:
    args = [account.pk, contact.pk]
    return {
        "send": reverse("simulator-send", args=args),
        "tap": reverse("simulator-tap", args=args),
        "thread": reverse("simulator-thread", args=args),
    }


def conversation_of(account: WhatsAppAccount, contact: Contact) -> Conversation:
    return message_receive(
        inbox=account.inbox,
        wa_id=contact.wa_id,
        profile_name=contact.profile_name,
        text="Oi",
        external_id=f"wamid.IN{contact.pk:04d}",
    ).message.conversation


def sent(conversation: Conversation, **kwargs: Any) -> Message:
    """An answer of ours that the sandbox transport really sent."""
    message = message_send(conversation=conversation, **kwargs).message
    assert send_message.call(message.pk) == "sent"
    message.refresh_from_db()
    assert is_sandbox_id(message.external_id)
    return message


# --- Who may open it ------------------------------------------------------------------


def test_it_does_not_exist_without_debug_or_a_sandbox_number(
    account: WhatsAppAccount, staff: Client, joana: Contact, settings: Any
) -> None:
    settings.DEBUG = False
    assert not account.is_sandbox

    assert not simulator_available()
    assert staff.get(PAGE).status_code == 404
    assert staff.post(urls(account, joana)["send"], {"text": "Oi"}, **JSON).status_code == 404
    assert staff.get(urls(account, joana)["thread"]).status_code == 404
    assert header_offers_simulator(staff_user(staff)) is False


def test_a_sandbox_number_turns_it_on_for_admins(
    sandbox_account: WhatsAppAccount, staff: Client, settings: Any
) -> None:
    settings.DEBUG = False

    response = staff.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")

    assert simulator_available()
    assert response.status_code == 200
    html = response.content.decode()
    assert "Simulated customer — messages go through the real webhook." in html
    assert 'href="/simulator/"' in html  # the header's link, for admins
    assert f'action="/simulator/n/{sandbox_account.pk}/customers/"' in html
    assert 'src="/static/js/simulator.js"' in html


def test_debug_turns_it_on_even_without_a_number(staff: Client, settings: Any) -> None:
    settings.DEBUG = True

    response = staff.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "No WhatsApp number yet" in response.content.decode()


def test_an_agent_is_turned_away_kindly(
    sandbox_account: WhatsAppAccount, agent: User, joana: Contact
) -> None:
    client = Client()
    client.force_login(agent)

    response = client.get(PAGE, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 403
    assert "Only admins can use the customer simulator" in response.content.decode()
    send = client.post(urls(sandbox_account, joana)["send"], {"text": "Oi"}, **JSON)
    assert send.status_code == 403
    assert not Message.objects.exists()


def test_an_anonymous_visitor_is_sent_to_log_in(
    sandbox_account: WhatsAppAccount, client: Client
) -> None:
    response = client.get(PAGE)

    assert response.status_code == 302
    assert response["Location"] == "/login/?next=/simulator/"


def staff_user(client: Client) -> User:
    return User.objects.get(pk=client.session["_auth_user_id"])


def header_offers_simulator(user: User) -> bool:
    """What the header's "Simulator" link asks (whatsapp.context.simulator)."""
    request = RequestFactory().get("/console/")
    request.user = user
    return simulator_context(request)["simulator_available"]()


def test_the_header_asks_only_for_admins(
    sandbox_account: WhatsAppAccount, sofia: User, agent: User, django_assert_num_queries: Any
) -> None:
    with django_assert_num_queries(0):
        assert header_offers_simulator(agent) is False  # agents never cost a query
    assert header_offers_simulator(sofia) is True


def test_several_numbers_can_be_chosen(
    sandbox_account: WhatsAppAccount, staff: Client, finance: Any
) -> None:
    from conversations.models import Inbox

    other = WhatsAppAccount(
        inbox=Inbox.objects.create(name="Financeiro", default_team=finance),
        name="Financeiro",
        phone_number_id="2000",
    )
    other.access_token = "EAAG-live"
    other.save()

    first = staff.get(PAGE).content.decode()
    chosen = staff.get(f"{PAGE}?number={other.pk}", HTTP_ACCEPT_LANGUAGE="en").content.decode()

    assert '<select id="sim-number" name="number">' in first
    assert re.findall(r'<option value="(\d+)"', first) == [str(other.pk), str(sandbox_account.pk)]
    assert f'<option value="{sandbox_account.pk}" selected>' in first  # the sandbox comes first
    assert f'<option value="{other.pk}" selected>' in chosen
    assert f'action="/simulator/n/{other.pk}/customers/"' in chosen
    assert "This number is live: our answers are really sent to WhatsApp" in chosen


# --- Customers ------------------------------------------------------------------------


def test_creating_a_customer_checks_the_phone(
    sandbox_account: WhatsAppAccount, staff: Client
) -> None:
    url = reverse("simulator-customer-create", args=[sandbox_account.pk])

    response = staff.post(url, {"name": "Joana", "phone": "123"}, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200  # the form again, saying what to fix
    html = response.content.decode()
    assert (
        "“123” is not a phone number. Write it with the area code, "
        "e.g. +55 11 98765-4321 or (11) 98765-4321."
    ) in html
    assert 'aria-invalid="true"' in html
    assert 'value="Joana"' in html  # what was typed stays
    missing = staff.post(url, {"name": "  ", "phone": ""}, HTTP_ACCEPT_LANGUAGE="en")
    assert missing.status_code == 200
    assert "Give the customer a name." in missing.content.decode()
    assert "Give the customer a phone number." in missing.content.decode()
    assert not Contact.objects.exists()


def test_a_new_customer_is_stored_with_the_canonical_phone_and_opened(
    sandbox_account: WhatsAppAccount, staff: Client
) -> None:
    url = reverse("simulator-customer-create", args=[sandbox_account.pk])

    response = staff.post(url, {"name": "Joana Lima", "phone": "(11) 98765-4321"})

    contact = Contact.objects.get()
    assert (contact.phone, contact.wa_id, contact.profile_name) == (
        "+5511987654321",
        "5511987654321",
        "Joana Lima",
    )
    assert response.status_code == 302
    assert response["Location"] == f"/simulator/?number={sandbox_account.pk}&customer={contact.pk}"
    page = staff.get(response["Location"], HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert 'id="sim-chat-title">Joana Lima</h2>' in page
    assert "+55 11 98765-4321" in page
    assert f'data-customer="{contact.pk}"' in page

    # The same phone typed another way (and without the ninth digit) is the same person.
    again = staff.post(url, {"name": "Outra", "phone": "+55 11 8765-4321"}, follow=True)
    assert Contact.objects.count() == 1
    assert again.redirect_chain[0][0].endswith(f"customer={contact.pk}")
    assert "already exists: it is selected" in again.content.decode()


def test_customers_are_those_of_the_number_most_recent_first(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact
) -> None:
    pedro = contact_resolve(wa_id="5521999990000", name="Pedro")
    conversation_of(sandbox_account, pedro)
    other_inbox_only = contact_resolve(wa_id="5531988880000", name="Só do outro número")
    from conversations.models import Inbox

    elsewhere = Inbox.objects.create(name="Outro")
    message_receive(inbox=elsewhere, wa_id=other_inbox_only.wa_id, text="Oi", external_id="w.x")

    html = staff.get(PAGE).content.decode()

    listed = re.findall(r'data-customer="(\d+)"', html)
    # Pedro talked to this number; Joana never talked to any (just created); the
    # customer of another number is not listed.
    assert listed == [str(pedro.pk), str(joana.pk)]


# --- Sending, for real ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_message_goes_through_the_real_webhook_and_is_stored(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact, webhook_server: LiveServer
) -> None:
    host = host_of(webhook_server.url)

    response = staff.post(
        urls(sandbox_account, joana)["send"],
        {"text": "Minha internet caiu, não navega"},
        HTTP_HOST=host,
        **JSON,
    )

    assert response.status_code == 200, response.content
    data = response.json()
    assert data["ok"] is True
    assert data["message_id"].startswith("wamid.SIM")
    message = Message.objects.select_related("conversation").get(external_id=data["message_id"])
    assert (message.direction, message.sender_type, message.kind, message.text) == (
        "in",
        "contact",
        "text",
        "Minha internet caiu, não navega",
    )
    conversation = message.conversation
    assert (conversation.contact_id, conversation.inbox_id) == (joana.pk, sandbox_account.inbox_id)
    assert conversation.protocol
    fragment = staff.get(urls(sandbox_account, joana)["thread"], HTTP_HOST=host).content.decode()
    assert "Minha internet caiu, não navega" in fragment
    assert conversation.protocol in fragment
    assert f'data-state="{conversation.state}"' in fragment


@pytest.mark.django_db(transaction=True)
def test_the_signature_over_the_exact_bytes_is_what_the_webhook_accepts(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    relay: Relay,
    webhook_server: LiveServer,
) -> None:
    staff.post(
        urls(sandbox_account, joana)["send"], {"text": "Olá ☺"}, HTTP_HOST=relay.host, **JSON
    )

    [delivery] = relay.received
    assert delivery.path == "/api/v1/whatsapp/webhook"
    assert delivery.headers["Content-Type"] == "application/json"
    assert delivery.headers["X-Hub-Signature-256"] == sign(delivery.body, APP_SECRET)
    assert b"\\u263a" in delivery.body  # escaped as Meta does
    [entry] = delivery.json["entry"]
    [change] = entry["changes"]
    value = change["value"]
    assert (delivery.json["object"], change["field"]) == ("whatsapp_business_account", "messages")
    assert value["metadata"] == {
        "display_phone_number": "551140001234",
        "phone_number_id": sandbox_account.phone_number_id,
    }
    assert value["contacts"] == [{"profile": {"name": "Joana Lima"}, "wa_id": "5511987654321"}]
    [message] = value["messages"]
    assert message["id"].startswith("wamid.SIM")
    assert (message["from"], message["type"], message["text"]) == (
        "5511987654321",
        "text",
        {"body": "Olá ☺"},
    )
    assert message["timestamp"].isdigit()

    webhook = webhook_server.url + delivery.path

    def post(body: bytes, signature: str) -> httpx.Response:
        headers = {"Content-Type": "application/json", "X-Hub-Signature-256": signature}
        return httpx.post(webhook, content=body, headers=headers, timeout=10)

    # Another secret, or one byte changed: refused, nothing stored.
    assert post(delivery.body, sign(delivery.body, "not-the-app-secret")).status_code == 403
    tampered = delivery.body.replace(b"Ol\\u00e1", b"Tchau")
    assert post(tampered, delivery.headers["X-Hub-Signature-256"]).status_code == 403
    assert not Message.objects.exists()
    # The simulator's very bytes and signature: stored.
    accepted = post(delivery.body, delivery.headers["X-Hub-Signature-256"])
    assert accepted.status_code == 200
    assert accepted.json()["messages"] == 1
    assert Message.objects.get().text == "Olá ☺"


@pytest.mark.django_db(transaction=True)
def test_from_the_browser_to_the_server_and_back_to_its_own_webhook(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    webhook_server: LiveServer,
    settings: Any,
) -> None:
    """The page and the webhook on one real server: the simulator's request
    calls the same server while it is being served."""
    settings.CSRF_COOKIE_SECURE = False  # plain http on 127.0.0.1, as `make run`
    base = webhook_server.url
    with httpx.Client(base_url=base, timeout=15) as browser:
        browser.cookies.set("sessionid", staff.cookies["sessionid"].value)
        page = browser.get(f"{PAGE}?number={sandbox_account.pk}&customer={joana.pk}")
        assert page.status_code == 200
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
        assert token is not None

        response = browser.post(
            urls(sandbox_account, joana)["send"],
            data={"text": "Tudo certo?", "csrfmiddlewaretoken": token.group(1)},
            headers={"Accept": "application/json"},
        )

    assert response.status_code == 200, response.text
    assert Message.objects.get(external_id=response.json()["message_id"]).text == "Tudo certo?"


@pytest.mark.django_db(transaction=True)
def test_a_sandbox_number_without_a_secret_gets_one_and_is_signed_with_it(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    webhook_server: LiveServer,
    settings: Any,
) -> None:
    settings.WHATSAPP_APP_SECRET = ""
    sandbox_account.app_secret = ""
    sandbox_account.save()

    response = staff.post(
        urls(sandbox_account, joana)["send"],
        {"text": "Oi"},
        HTTP_HOST=host_of(webhook_server.url),
        **JSON,
    )

    assert response.status_code == 200, response.content
    sandbox_account.refresh_from_db()
    assert len(sandbox_account.app_secret) == 64
    assert Message.objects.filter(text="Oi", direction="in").count() == 1


# --- Buttons and lists ----------------------------------------------------------------


MENU = {
    "body": "Como posso ajudar?",
    "button": "Ver opções",
    "sections": [
        {
            "title": "Atendimento",
            "rows": [
                {"id": "menu:1", "title": "Sem internet", "description": "Conexão caiu"},
                {"id": "menu:2", "title": "Segunda via", "description": "Boleto e PIX"},
            ],
        }
    ],
}


@pytest.mark.django_db(transaction=True)
def test_tapping_a_list_row_answers_with_a_list_reply_to_that_message(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact, webhook_server: LiveServer
) -> None:
    conversation = conversation_of(sandbox_account, joana)
    menu = sent(conversation, kind=Message.Kind.INTERACTIVE, text=MENU["body"], payload=MENU)
    host = host_of(webhook_server.url)
    fragment = staff.get(urls(sandbox_account, joana)["thread"], HTTP_HOST=host).content.decode()
    assert f'<template id="sim-sheet-{menu.pk}" data-title="Ver opções">' in fragment
    assert f'data-message="{menu.pk}" data-option="menu:2"' in fragment

    response = staff.post(
        urls(sandbox_account, joana)["tap"],
        {"message": menu.pk, "option": "menu:2"},
        HTTP_HOST=host,
        **JSON,
    )

    assert response.status_code == 200, response.content
    reply = Message.objects.get(external_id=response.json()["message_id"])
    assert (reply.direction, reply.kind, reply.text) == ("in", "interactive", "Segunda via")
    assert reply.payload["reply_id"] == "menu:2"
    assert reply.payload["interactive"] == {
        "type": "list_reply",
        "list_reply": {"id": "menu:2", "title": "Segunda via", "description": "Boleto e PIX"},
    }
    assert reply.payload["context"] == {"from": "551140001234", "id": menu.external_id}
    assert reply.reply_to_id == menu.pk
    assert reply.conversation_id == conversation.pk


@pytest.mark.django_db(transaction=True)
def test_tapping_a_reply_button_answers_with_a_button_reply(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact, webhook_server: LiveServer
) -> None:
    conversation = conversation_of(sandbox_account, joana)
    # Graph's own interactive object, as an integration may store it.
    payload = interactive_buttons("Resolvido?", [("done", "Sim, obrigado"), ("menu", "Menu")])
    question = sent(conversation, kind=Message.Kind.INTERACTIVE, text="", payload=payload)

    response = staff.post(
        urls(sandbox_account, joana)["tap"],
        {"message": question.pk, "option": "done"},
        HTTP_HOST=host_of(webhook_server.url),
        **JSON,
    )

    assert response.status_code == 200, response.content
    reply = Message.objects.get(external_id=response.json()["message_id"])
    assert reply.payload["reply_id"] == "done"
    assert reply.payload["interactive"] == {
        "type": "button_reply",
        "button_reply": {"id": "done", "title": "Sim, obrigado"},
    }
    assert reply.payload["context"]["id"] == question.external_id
    assert reply.reply_to_id == question.pk
    fragment = staff.get(
        urls(sandbox_account, joana)["thread"], HTTP_HOST=host_of(webhook_server.url)
    ).content.decode()
    # On the phone the answer quotes the question it answers.
    assert re.search(
        rf'id="sim-m-{reply.pk}".*?<p class="sim-quote">.*?</span>Resolvido\?</p>', fragment, re.S
    )


def test_only_real_options_of_delivered_messages_can_be_tapped(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact
) -> None:
    conversation = conversation_of(sandbox_account, joana)
    pending = message_send(
        conversation=conversation, kind=Message.Kind.INTERACTIVE, text=MENU["body"], payload=MENU
    ).message
    url = urls(sandbox_account, joana)["tap"]

    not_yet = staff.post(url, {"message": pending.pk, "option": "menu:1"}, **JSON)
    made_up = staff.post(url, {"message": pending.pk, "option": "menu:9"}, **JSON)
    nonsense = staff.post(url, {"message": "x", "option": "menu:1"}, **JSON)

    assert (not_yet.status_code, not_yet.json()["code"]) == (409, "not_delivered")
    assert (made_up.status_code, made_up.json()["code"]) == (400, "unknown_option")
    assert (nonsense.status_code, nonsense.json()["code"]) == (400, "unknown_option")
    assert Message.objects.filter(direction="in").count() == 1
    fragment = staff.get(urls(sandbox_account, joana)["thread"]).content.decode()
    assert re.search(r'class="sim-list-open"[^>]*disabled', fragment)


# --- Delivery receipts ----------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_shown_messages_become_delivered_then_read_once_each(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    relay: Relay,
    webhook_server: LiveServer,
) -> None:
    relay.forward_to = webhook_server.url
    conversation = conversation_of(sandbox_account, joana)
    answer = sent(conversation, text="Olá! Já verifico.")
    waiting = message_send(conversation=conversation, text="Ainda na fila").message
    thread = urls(sandbox_account, joana)["thread"]

    first = staff.get(thread, HTTP_HOST=relay.host)  # the phone got it, chat not on screen

    answer.refresh_from_db()
    assert (answer.status, answer.delivered_at is not None) == ("delivered", True)
    assert f'id="sim-m-{answer.pk}" data-direction="out" data-status="delivered"' in (
        first.content.decode()
    )
    [delivered] = relay.received
    assert delivered.headers["X-Hub-Signature-256"] == sign(delivered.body, APP_SECRET)
    [status] = delivered.json["entry"][0]["changes"][0]["value"]["statuses"]
    assert (status["id"], status["status"], status["recipient_id"]) == (
        answer.external_id,
        "delivered",
        "5511987654321",
    )
    assert status["timestamp"].isdigit()

    staff.get(thread, HTTP_HOST=relay.host)
    assert len(relay.received) == 1  # nothing new to say

    staff.get(thread + "?read=1", HTTP_HOST=relay.host)  # the chat is on screen
    answer.refresh_from_db()
    assert answer.status == "read" and answer.read_at is not None
    assert relay.received[1].json["entry"][0]["changes"][0]["value"]["statuses"][0]["status"] == (
        "read"
    )

    staff.get(thread + "?read=1", HTTP_HOST=relay.host)
    staff.get(thread + "?read=1", HTTP_HOST=relay.host)
    assert len(relay.received) == 2
    waiting.refresh_from_db()
    assert waiting.status == "pending"  # never sent: the phone knows nothing of it


@pytest.mark.django_db(transaction=True)
def test_two_polls_that_saw_the_same_message_post_its_status_once(
    sandbox_account: WhatsAppAccount, joana: Contact, relay: Relay, webhook_server: LiveServer
) -> None:
    relay.forward_to = webhook_server.url
    answer = sent(conversation_of(sandbox_account, joana), text="Olá!")
    # Two simulator tabs read the thread at once: both see it "sent".
    seen = list(Message.objects.filter(pk=answer.pk))
    request = RequestFactory().get("/", HTTP_HOST=relay.host)

    first = receipts_post(
        request=request, account=sandbox_account, contact=joana, messages=seen, read=False
    )
    second = receipts_post(
        request=request, account=sandbox_account, contact=joana, messages=seen, read=False
    )

    assert (first, second) == ((1, ""), (0, ""))
    assert len(relay.received) == 1


# --- Errors are told, never a 500 -----------------------------------------------------


def test_an_unreachable_webhook_is_explained(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact
) -> None:
    port = free_port()  # nothing listens there

    response = staff.post(
        urls(sandbox_account, joana)["send"],
        {"text": "Alô?"},
        HTTP_HOST=f"127.0.0.1:{port}",
        HTTP_ACCEPT_LANGUAGE="en",
        **JSON,
    )

    assert response.status_code == 502
    data = response.json()
    assert (data["ok"], data["code"]) == (False, "webhook_unreachable")
    assert data["error"].startswith(
        f"Could not reach the webhook at http://127.0.0.1:{port}/api/v1/whatsapp/webhook"
    )
    assert not Message.objects.filter(text="Alô?").exists()

    # Without the page's script: back to the page, which says why.
    page = staff.post(
        urls(sandbox_account, joana)["send"],
        {"text": "Alô?"},
        HTTP_HOST=f"127.0.0.1:{port}",
        HTTP_ACCEPT_LANGUAGE="en",
        follow=True,
    )
    assert page.status_code == 200
    assert 'role="alert">Could not reach the webhook' in page.content.decode()


def test_a_webhook_that_does_not_answer_times_out_with_a_message(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(simulator, "WEBHOOK_TIMEOUT", 0.5)
    with black_hole() as port:
        response = staff.post(
            urls(sandbox_account, joana)["send"],
            {"text": "Alô?"},
            HTTP_HOST=f"127.0.0.1:{port}",
            HTTP_ACCEPT_LANGUAGE="en",
            **JSON,
        )

    assert response.status_code == 504
    assert response.json()["error"] == (
        f"The webhook at http://127.0.0.1:{port}/api/v1/whatsapp/webhook "
        "did not answer within 0.5 seconds."
    )


def test_a_refused_signature_and_a_configured_webhook_url(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact, relay: Relay, settings: Any
) -> None:
    settings.SIMULATOR_WEBHOOK_URL = f"http://{relay.host}/hook"
    relay.answer = (403, {"detail": "Invalid or missing X-Hub-Signature-256."})

    response = staff.post(
        urls(sandbox_account, joana)["send"], {"text": "Oi"}, HTTP_ACCEPT_LANGUAGE="en", **JSON
    )

    assert [d.path for d in relay.received] == ["/hook"]  # the setting wins over the host
    assert response.status_code == 502
    assert response.json() == {
        "ok": False,
        "error": "The webhook refused the signature (403): the app secret does not match.",
        "code": "webhook_refused",
    }
    relay.answer = (200, {"status": "ok", "messages": 0, "skipped": 1})
    stored_nothing = staff.post(urls(sandbox_account, joana)["send"], {"text": "Oi"}, **JSON)
    assert stored_nothing.json()["code"] == "webhook_stored_nothing"
    empty = staff.post(urls(sandbox_account, joana)["send"], {"text": "  "}, **JSON)
    assert (empty.status_code, empty.json()["code"]) == (400, "empty")
    assert len(relay.received) == 2


def test_receipts_that_cannot_be_posted_are_said_and_retried(
    sandbox_account: WhatsAppAccount, staff: Client, joana: Contact
) -> None:
    answer = sent(conversation_of(sandbox_account, joana), text="Olá!")
    host = f"127.0.0.1:{free_port()}"
    thread = urls(sandbox_account, joana)["thread"]

    response = staff.get(thread, HTTP_HOST=host, HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 200
    assert "Delivery receipts could not be posted: Could not reach" in response.content.decode()
    answer.refresh_from_db()
    assert answer.status == "sent"
    # The claim was given back: the next poll tries again.
    assert cache.add(f"whatsapp:simulator:receipt:{answer.pk}:delivered", 1) is True


# --- Safety ---------------------------------------------------------------------------


def test_names_and_texts_are_shown_inert(sandbox_account: WhatsAppAccount, staff: Client) -> None:
    evil = contact_resolve(wa_id="5511900001111", name=XSS_NAME)
    conversation = conversation_of(sandbox_account, evil)
    sent(conversation, text=f"Veja {XSS_TEXT}")
    sent(
        conversation,
        kind=Message.Kind.INTERACTIVE,
        text="?",
        payload={"body": XSS_TEXT, "buttons": [{"id": '"><b>', "title": XSS_NAME}]},
    )

    page = staff.get(f"{PAGE}?number={sandbox_account.pk}&customer={evil.pk}").content.decode()
    # (Its receipts go nowhere: nothing listens on that port.)
    nowhere = f"127.0.0.1:{free_port()}"
    fragment = staff.get(urls(sandbox_account, evil)["thread"], HTTP_HOST=nowhere).content.decode()

    for html in (page, fragment):
        assert "<img src=x" not in html
        assert "<script>alert(1)" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
        assert 'data-option="&quot;&gt;&lt;b&gt;"' in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in fragment  # the button's title


# --- Cost -----------------------------------------------------------------------------


def test_the_page_and_the_thread_cost_the_same_whatever_their_size(
    sandbox_account: WhatsAppAccount,
    staff: Client,
    joana: Contact,
    django_assert_max_num_queries: Any,
) -> None:
    for n in range(15):
        other = contact_resolve(wa_id=f"55119{n:08d}", name=f"Cliente {n}")
        conversation_of(sandbox_account, other)
    conversation = conversation_of(sandbox_account, joana)
    for n in range(20):
        message_send(conversation=conversation, text=f"Resposta {n}")
        message_receive(
            inbox=sandbox_account.inbox,
            wa_id=joana.wa_id,
            text=f"Pergunta {n}",
            external_id=f"q{n}",
        )
    page = f"{PAGE}?number={sandbox_account.pk}&customer={joana.pk}"

    with django_assert_max_num_queries(9):
        assert staff.get(page).status_code == 200
    with django_assert_max_num_queries(7):
        assert staff.get(urls(sandbox_account, joana)["thread"]).status_code == 200


# --- The sandbox number from the environment ------------------------------------------


def test_a_sandbox_number_from_the_environment_always_has_a_secret(settings: Any, db: None) -> None:
    settings.WHATSAPP_PHONE_NUMBER_ID = "109876543210"
    settings.WHATSAPP_ACCESS_TOKEN = ""
    settings.WHATSAPP_APP_SECRET = ""

    account = account_bootstrap_from_env()

    assert account is not None and account.is_sandbox
    secret = WhatsAppAccount.objects.get().app_secret
    assert re.fullmatch(r"[0-9a-f]{64}", secret)
    account_bootstrap_from_env()
    assert WhatsAppAccount.objects.get().app_secret == secret  # kept, not renewed


def test_a_live_number_from_the_environment_gets_no_made_up_secret(settings: Any, db: None) -> None:
    settings.WHATSAPP_PHONE_NUMBER_ID = "109876543210"
    settings.WHATSAPP_ACCESS_TOKEN = "EAAG-do-ambiente"
    settings.WHATSAPP_APP_SECRET = ""

    account_bootstrap_from_env()

    assert WhatsAppAccount.objects.get().app_secret == ""

"""The console's conversation view (/console/c/<id>/) and its fragments: who
may open them, what the thread, header and side panel show, and that they cost
a fixed number of queries whatever the length of the thread."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from html.parser import HTMLParser
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.models import Team, User
from conversations import channels, panels
from conversations.models import CannedReply, Contact, Conversation, Inbox, Message, Note, Tag
from tests.conversations.conftest import hours_ago
from tests.whatsapp.factories import approved_template
from whatsapp.models import MessageTemplate, WhatsAppAccount

XSS_IMG = "<img src=x onerror=alert(1)>"
XSS_IMG_ESCAPED = "&lt;img src=x onerror=alert(1)&gt;"
XSS_SCRIPT = "<script>alert(1)</script>"
XSS_SCRIPT_ESCAPED = "&lt;script&gt;alert(1)&lt;/script&gt;"
NOWHERE = 2_000_000_000

Out = Message.Direction.OUT
In = Message.Direction.IN


# --- Helpers ------------------------------------------------------------------------


class Node:
    def __init__(self, tag: str, attrs: dict[str, str], parent: Node | None) -> None:
        self.tag, self.attrs, self.parent = tag, attrs, parent
        self.children: list[Node | str] = []

    @property
    def text(self) -> str:
        parts = [c if isinstance(c, str) else c.text for c in self.children]
        return " ".join(" ".join(parts).split())

    @property
    def classes(self) -> set[str]:
        return set(self.attrs.get("class", "").split())

    def walk(self) -> list[Node]:
        found = [self]
        for child in self.children:
            if isinstance(child, Node):
                found += child.walk()
        return found

    def find(self, selector: str) -> list[Node]:
        """``tag``, ``.class``, ``#id``, ``tag.class`` or ``[attr]``/``[attr=value]``."""
        match = re.fullmatch(
            r"(\w+)?(?:#([\w-]+))?(?:\.([\w-]+))?(?:\[([\w-]+)(?:=([^\]]*))?\])?", selector
        )
        assert match, selector
        tag, id_, cls, attr, value = match.groups()
        return [
            n
            for n in self.walk()
            if (not tag or n.tag == tag)
            and (not id_ or n.attrs.get("id") == id_)
            and (not cls or cls in n.classes)
            and (not attr or (attr in n.attrs and (value is None or n.attrs[attr] == value)))
        ]

    def one(self, selector: str) -> Node:
        found = self.find(selector)
        assert len(found) == 1, f"{selector}: {len(found)} found"
        return found[0]


VOID = {
    "area",
    "base",
    "br",
    "col",
    "embed",
    "hr",
    "img",
    "input",
    "link",
    "meta",
    "source",
    "track",
    "wbr",
}


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.root = Node("#root", {}, None)
        self.current = self.root

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        node = Node(tag, {k: v or "" for k, v in attrs}, self.current)
        self.current.children.append(node)
        if tag not in VOID:
            self.current = node

    def handle_endtag(self, tag: str) -> None:
        node: Node | None = self.current
        while node is not None and node.tag != tag:
            node = node.parent
        if node is not None and node.parent is not None:
            self.current = node.parent

    def handle_data(self, data: str) -> None:
        self.current.children.append(data)


def parse(html: str) -> Node:
    parser = _Parser()
    parser.feed(html)
    return parser.root


def get(client: Client, user: User, url: str) -> str:
    client.force_login(user)
    response = client.get(url, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200, response.content[:500]
    return response.content.decode()


def url(conversation: Conversation, part: str = "") -> str:
    return f"/console/c/{conversation.pk}/{part}"


def make_message(
    conversation: Conversation,
    text: str = "Olá",
    *,
    direction: str = Out,
    sender_type: str | None = None,
    status: str | None = None,
    at: Any = None,
    **fields: Any,
) -> Message:
    if sender_type is None:
        sender_type = Message.SenderType.CONTACT if direction == In else Message.SenderType.AGENT
    return Message.objects.create(
        conversation=conversation,
        direction=direction,
        sender_type=sender_type,
        text=text,
        status=status or (Message.Status.RECEIVED if direction == In else Message.Status.SENT),
        created_at=at or timezone.now(),
        **fields,
    )


def assign(conversation: Conversation, user: User, state: str = Conversation.State.OPEN) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(assignee=user, state=state)
    conversation.refresh_from_db()


# --- Who may open it ----------------------------------------------------------------


def _endpoints(conversation: Conversation) -> list[str]:
    message = conversation.messages.first()
    note = Note.objects.create(conversation=conversation, text="Cliente ligou")
    return [
        url(conversation),
        url(conversation, "messages/"),
        url(conversation, f"m/{message.pk}/"),
        url(conversation, f"n/{note.pk}/"),
        url(conversation, "header/"),
        url(conversation, "side/"),
        url(conversation, "canned/"),
        f"/console/panels/subscriber/{conversation.pk}/",
    ]


def test_every_endpoint_needs_a_login(client: Client, conversation: Conversation) -> None:
    for path in _endpoints(conversation):
        response = client.get(path)

        assert response.status_code == 302, path
        assert response["Location"] == f"/login/?next={path}"


def test_another_teams_conversation_is_not_found_everywhere(
    client: Client, outsider: User, conversation: Conversation
) -> None:
    client.force_login(outsider)

    for path in _endpoints(conversation):
        assert client.get(path).status_code == 404, path


def test_a_conversation_assigned_to_someone_outside_its_team_opens_for_them(
    client: Client, outsider: User, conversation: Conversation
) -> None:
    assign(conversation, outsider)
    client.force_login(outsider)
    for path in _endpoints(conversation):
        assert client.get(path, HTTP_ACCEPT_LANGUAGE="en").status_code == 200, path


def test_a_message_or_note_of_another_conversation_is_not_found(
    client: Client, agent: User, conversation: Conversation, receive: Callable[..., Message]
) -> None:
    other = receive("Outra pessoa", wa_id="5511977776666").conversation
    foreign = other.messages.first()
    foreign_note = Note.objects.create(conversation=other, text="nota")
    client.force_login(agent)

    assert client.get(url(conversation, f"m/{foreign.pk}/")).status_code == 404
    assert client.get(url(conversation, f"n/{foreign_note.pk}/")).status_code == 404
    assert client.get(url(conversation, f"m/{NOWHERE}/")).status_code == 404
    assert client.get(url(conversation, "messages/?before=abc")).status_code == 404
    assert client.get(url(conversation, f"messages/?before={foreign.pk}")).status_code == 404


# --- The thread ---------------------------------------------------------------------


def test_the_thread_interleaves_messages_and_notes_by_day(
    client: Client, agent: User, inbox: Inbox, receive: Callable[..., Message]
) -> None:
    yesterday = timezone.now() - timedelta(days=1)
    first = receive("Minha internet caiu", sent_at=yesterday)
    conversation = first.conversation
    assign(conversation, agent)
    reply = make_message(conversation, "Vou verificar", sender_user=agent)
    note = Note.objects.create(
        conversation=conversation,
        author=agent,
        text="Cliente já reiniciou o roteador",
        created_at=reply.created_at + timedelta(seconds=1),
    )
    bot = make_message(
        conversation,
        "Posso ajudar em algo mais?",
        sender_type=Message.SenderType.BOT,
        at=note.created_at + timedelta(seconds=1),
    )
    system = make_message(
        conversation,
        "Protocolo 123",
        sender_type=Message.SenderType.SYSTEM,
        at=bot.created_at + timedelta(seconds=1),
    )

    page = parse(get(client, agent, url(conversation)))

    thread = page.one("ol#thread")
    lines = [n for n in thread.children if isinstance(n, Node)]
    assert [(n.attrs.get("id") or n.text) for n in lines] == [
        "Yesterday",
        f"m-{first.pk}",
        "Today",
        f"m-{reply.pk}",
        f"n-{note.pk}",
        f"m-{bot.pk}",
        f"m-{system.pk}",
    ]
    assert {"msg", "msg-in"} <= page.one(f"#m-{first.pk}").classes
    agent_bubble = page.one(f"#m-{reply.pk}")
    assert {"msg", "msg-agent"} <= agent_bubble.classes
    assert agent_bubble.one(".bubble-sender").text == "Bruno"
    assert {"msg", "msg-bot"} <= page.one(f"#m-{bot.pk}").classes
    assert (
        page.one(f"#m-{system.pk}")
        .one(".system-line")
        .text.startswith("System message: Protocolo 123")
    )
    note_item = page.one(f"#n-{note.pk}")
    assert note_item.one(".note-flag").text == "Internal note — the customer does not see this"
    assert note_item.one(".note-author").text == "Bruno"
    assert note_item.one(".note-text").text == "Cliente já reiniciou o roteador"
    # What the live script needs to place and order items.
    assert page.one(f"#m-{reply.pk}").attrs["data-ts"] == str(
        int(reply.created_at.timestamp() * 1000)
    )
    assert page.one(f"#m-{first.pk}").attrs["data-day-label"] == "Yesterday"


def test_outbound_messages_show_their_delivery_ticks(
    client: Client, agent: User, conversation: Conversation
) -> None:
    statuses = ["pending", "sent", "delivered", "read"]
    made = {status: make_message(conversation, status, status=status) for status in statuses}
    failed = make_message(
        conversation,
        "falhou",
        status=Message.Status.FAILED,
        error_code="131047",
        error_title="Re-engagement message",
    )

    page = parse(get(client, agent, url(conversation)))

    labels = {"pending": "Pending", "sent": "Sent", "delivered": "Delivered", "read": "Read"}
    for status, message in made.items():
        tick = page.one(f"#m-{message.pk}").one(".tick")
        assert f"tick-{status}" in tick.classes
        assert tick.attrs["title"] == labels[status]
        assert tick.one(".visually-hidden").text == labels[status]
    item = page.one(f"#m-{failed.pk}")
    reason = "Not delivered: Re-engagement message (code 131047)"
    tick = item.one(".tick")
    assert "tick-failed" in tick.classes
    assert tick.attrs["title"] == reason
    assert tick.one(".visually-hidden").text == reason
    assert item.one(".failure-text").text == reason
    assert "is-failed" in item.classes
    # Customers' messages carry no tick.
    assert page.one(f"#m-{conversation.messages.first().pk}").find(".tick") == []


def test_media_messages_are_previewed_through_the_checked_media_url(
    client: Client, agent: User, conversation: Conversation
) -> None:
    def media(kind: str, **fields: Any) -> Message:
        fields.setdefault("media_file", f"whatsapp/2025/01/{kind}.bin")
        return make_message(conversation, direction=In, kind=kind, media_id=f"m-{kind}", **fields)

    image = media("image", text="Foto do roteador", media_mime_type="image/jpeg")
    audio = media("audio", media_mime_type="audio/ogg")
    video = media("video", media_mime_type="video/mp4")
    sticker = media("sticker", media_mime_type="image/webp")
    document = media(
        "document",
        media_mime_type="application/pdf",
        payload={"document": {"filename": "contrato.pdf", "id": "m-document"}},
    )
    downloading = media("image", media_file="")
    refused = media("image", media_file="", payload={"media_error": "The file is too big."})

    page = parse(get(client, agent, url(conversation)))

    def src(message: Message) -> str:
        return f"/api/v1/whatsapp/media/{message.pk}"

    img = page.one(f"#m-{image.pk}").one("img")
    assert (img.attrs["src"], img.attrs["alt"]) == (src(image), "Image: Foto do roteador")
    assert page.one(f"#m-{image.pk}").one(".caption").text == "Foto do roteador"
    player = page.one(f"#m-{audio.pk}").one("audio")
    assert player.attrs["src"] == src(audio) and "controls" in player.attrs
    assert page.one(f"#m-{video.pk}").one("video").attrs["src"] == src(video)
    assert page.one(f"#m-{sticker.pk}").one("img").attrs["src"] == src(sticker)
    link = page.one(f"#m-{document.pk}").one("a.document")
    assert (link.attrs["href"], link.attrs["download"]) == (src(document), "contrato.pdf")
    assert link.one(".filename").text == "contrato.pdf"
    assert page.one(f"#m-{downloading.pk}").find("img") == []
    assert (
        page.one(f"#m-{downloading.pk}").one(".media-note").text
        == "Image — The file is being downloaded…"
    )
    assert page.one(f"#m-{refused.pk}").one(".media-note").text == "Image — The file is too big."


def test_locations_link_to_the_map_and_choices_replies_and_reactions_show(
    client: Client, agent: User, conversation: Conversation
) -> None:
    location = make_message(
        conversation,
        "📍 Casa",
        direction=In,
        kind=Message.Kind.LOCATION,
        payload={"location": {"latitude": -23.5505, "longitude": -46.6333, "name": "Casa"}},
    )
    offer = make_message(
        conversation,
        "Escolha uma opção",
        sender_type=Message.SenderType.BOT,
        kind=Message.Kind.INTERACTIVE,
        payload={
            "body": "Escolha",
            "buttons": [{"id": "1", "title": "Fatura"}, {"id": "2", "title": "Sem internet"}],
        },
        reactions={"contact": "👍"},
    )
    choice = make_message(
        conversation,
        "Fatura",
        direction=In,
        kind=Message.Kind.INTERACTIVE,
        payload={"reply_id": "1"},
        reply_to=offer,
    )

    page = parse(get(client, agent, url(conversation)))

    link = page.one(f"#m-{location.pk}").one("a.location")
    assert link.attrs["href"] == (
        "https://www.openstreetmap.org/?mlat=-23.5505&mlon=-46.6333#map=17/-23.5505/-46.6333"
    )
    assert link.text == "Casa (opens the map)"
    assert [li.text for li in page.one(f"#m-{offer.pk}").one("ul.options").find("li")] == [
        "Fatura",
        "Sem internet",
    ]
    assert page.one(f"#m-{offer.pk}").one("ul.reactions").text == "👍 Maria Souza reacted 👍"
    item = page.one(f"#m-{choice.pk}")
    assert item.one(".choice").text == "Chose: Fatura"
    quote = item.one("blockquote.quote")
    assert quote.one("a").attrs["href"] == f"#m-{offer.pk}"
    assert quote.text == "Us Escolha uma opção"


def test_the_thread_shows_the_latest_hundred_and_loads_earlier_ones(
    client: Client, agent: User, conversation: Conversation
) -> None:
    start = timezone.now() - timedelta(hours=2)
    made = [
        make_message(conversation, f"msg {n}", at=start + timedelta(seconds=n)) for n in range(105)
    ]
    early_note = Note.objects.create(
        conversation=conversation, text="nota antiga", created_at=start + timedelta(seconds=2)
    )
    everything = list(conversation.messages.order_by("created_at", "id"))
    assert everything[:105] == made

    page = parse(get(client, agent, url(conversation)))

    shown = [n.attrs["id"] for n in page.one("ol#thread").find("li.item")]
    assert shown == [f"m-{m.pk}" for m in everything[-100:]]
    button = page.one("#load-earlier")
    assert "hidden" not in button.attrs
    assert button.attrs["data-before"] == str(everything[-100].pk)

    earlier = parse(
        get(client, agent, url(conversation, f"messages/?before={everything[-100].pk}"))
    )

    meta = earlier.one("li.thread-meta")
    assert meta.attrs["data-has-more"] == "false"
    ids = [n.attrs["id"] for n in earlier.find("li.item")]
    assert ids == [f"m-{m.pk}" for m in everything[:3]] + [f"n-{early_note.pk}"] + [
        f"m-{m.pk}" for m in everything[3:6]
    ]


def test_the_catch_up_returns_only_what_is_newer(
    client: Client, agent: User, conversation: Conversation
) -> None:
    seen = make_message(conversation, "visto")
    old_note = Note.objects.create(conversation=conversation, text="vista")
    new = make_message(conversation, "novo", at=timezone.now() + timedelta(seconds=1))
    new_note = Note.objects.create(
        conversation=conversation, text="nova", created_at=timezone.now() + timedelta(seconds=2)
    )

    page = parse(
        get(client, agent, url(conversation, f"messages/?after={seen.pk}&after_note={old_note.pk}"))
    )

    assert [n.attrs["id"] for n in page.find("li.item")] == [f"m-{new.pk}", f"n-{new_note.pk}"]
    assert page.find("li.thread-meta") == []


def test_one_message_and_one_note_come_as_fragments(
    client: Client, agent: User, conversation: Conversation
) -> None:
    message = make_message(conversation, "pronto", status=Message.Status.DELIVERED)
    note = Note.objects.create(conversation=conversation, author=agent, text="anotado")

    item = parse(get(client, agent, url(conversation, f"m/{message.pk}/"))).one("li.item")
    note_item = parse(get(client, agent, url(conversation, f"n/{note.pk}/"))).one("li.item")

    assert item.attrs["id"] == f"m-{message.pk}"
    assert item.attrs["data-status"] == "delivered"
    assert item.attrs["data-day-label"] == "Today"
    assert item.one(".text").text == "pronto"
    assert note_item.attrs["id"] == f"n-{note.pk}"
    assert note_item.one(".note-text").text == "anotado"


# --- The reply box --------------------------------------------------------------


def test_the_reply_box_is_labelled_and_open_within_the_window(
    client: Client, agent: User, conversation: Conversation
) -> None:
    page = parse(get(client, agent, url(conversation)))

    textarea = page.one("textarea#composer-text")
    assert "disabled" not in textarea.attrs
    assert page.one("label[for=composer-text]").text == "Message to the customer"
    assert "hidden" in page.one("#window-banner").attrs
    assert page.one("#conv-header").attrs["data-reply-block"] == ""


def test_a_closed_window_disables_free_text_and_offers_templates(
    client: Client, agent: User, conversation: Conversation, inbox: Inbox
) -> None:
    Conversation.objects.filter(pk=conversation.pk).update(last_inbound_at=hours_ago(25))
    account = WhatsAppAccount.objects.create(inbox=inbox, name="Suporte", phone_number_id="1099")
    now = timezone.now()
    MessageTemplate.objects.create(
        account=account,
        name="retomar_contato",
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        components=[{"type": "BODY", "text": "Olá {{1}}, " + XSS_SCRIPT + " protocolo {{2}}"}],
        synced_at=now,
    )
    MessageTemplate.objects.create(
        account=account, name="recusado", language="pt_BR", status="REJECTED", synced_at=now
    )

    html = get(client, agent, url(conversation))
    page = parse(html)

    assert "disabled" in page.one("textarea#composer-text").attrs
    assert "disabled" in page.one("#composer-send").attrs
    banner = page.one("#window-banner")
    assert "hidden" not in banner.attrs
    assert banner.one("#window-banner-title").text == "The 24-hour window is closed."
    assert page.one("#conv-header").attrs["data-reply-block"] == "window"
    forms = banner.find("form.template-form")
    assert [f.attrs["data-name"] for f in forms] == ["retomar_contato"]
    assert [i.attrs["data-variable"] for i in forms[0].find("input")] == ["1", "2"]
    assert [label.text for label in forms[0].find("label")] == ["Parameter 1", "Parameter 2"]
    assert [b.text for b in forms[0].find("button")] == ["Send template"]
    assert XSS_SCRIPT not in html
    assert XSS_SCRIPT_ESCAPED in html


def test_whatsapp_registers_the_templates_of_its_inboxes(inbox: Inbox) -> None:
    account = WhatsAppAccount.objects.create(inbox=inbox, name="Suporte", phone_number_id="1099")
    now = timezone.now()
    MessageTemplate.objects.create(
        account=account,
        name="fatura",
        language="pt_BR",
        category="UTILITY",
        status="APPROVED",
        components=[
            {"type": "HEADER", "format": "TEXT", "text": "Aviso"},
            {"type": "BODY", "text": "Sua fatura de {{1}} vence em {{2}}"},
        ],
        synced_at=now,
    )
    MessageTemplate.objects.create(
        account=account,
        name="boleto",
        language="pt_BR",
        status="APPROVED",
        components=[{"type": "HEADER", "format": "DOCUMENT"}, {"type": "BODY", "text": "Segue"}],
        synced_at=now,
    )
    approved_template(
        account,
        "visita",
        [
            {"type": "HEADER", "format": "LOCATION"},
            {"type": "BODY", "text": "Nossa loja"},
            {
                "type": "BUTTONS",
                "buttons": [
                    {"type": "QUICK_REPLY", "text": "Ok"},
                    {"type": "URL", "text": "Ver", "url": "https://fibra.net/v/{{1}}"},
                ],
            },
        ],
    )
    MessageTemplate.objects.create(
        account=account, name="pendente", language="pt_BR", status="PENDING", synced_at=now
    )
    other_inbox = Inbox.objects.create(name="Outro", channel="email")

    listed = channels.templates_for(inbox)

    assert listed == [
        {
            "id": listed[0]["id"],
            "name": "boleto",
            "language": "pt_BR",
            "category": "",
            "body": "Segue",
            "variables": [],
            "params": 0,
            "named": False,
            "header": {"format": "document", "text": "", "variables": []},
            "buttons": [],
            "sendable": True,
        },
        {
            "id": listed[1]["id"],
            "name": "fatura",
            "language": "pt_BR",
            "category": "UTILITY",
            "body": "Sua fatura de {{1}} vence em {{2}}",
            "variables": ["1", "2"],
            "params": 2,
            "named": False,
            "header": {"format": "text", "text": "Aviso", "variables": []},
            "buttons": [],
            "sendable": True,
        },
        {
            "id": listed[2]["id"],
            "name": "visita",
            "language": "pt_BR",
            "category": "",
            "body": "Nossa loja",
            "variables": [],
            "params": 0,
            "named": False,
            "header": {"format": "location", "text": "", "variables": []},
            "buttons": [{"index": 1, "type": "url", "variables": ["1"]}],
            "sendable": False,  # no form asks for a location
        },
    ]
    assert channels.templates_for(other_inbox) == []


def test_canned_replies_come_filled_in_for_this_conversation(
    client: Client, agent: User, conversation: Conversation, finance: Team
) -> None:
    CannedReply.objects.create(
        shortcut="ola",
        title="Saudação",
        text="Olá {{contact.first_name}}, protocolo {{conversation.protocol}}. {{agent.name}}",
    )
    CannedReply.objects.create(shortcut="fin", title="Financeiro", text="x", team=finance)
    client.force_login(agent)

    response = client.get(url(conversation, "canned/"))

    assert response.status_code == 200
    [reply] = response.json()["results"]
    assert reply["shortcut"] == "ola"
    assert reply["title"] == "Saudação"
    assert reply["text"] == f"Olá Maria, protocolo {conversation.protocol}. Bruno"


# --- Header and actions -------------------------------------------------------------


def _actions(page: Node) -> list[str]:
    """The action buttons of the header, in order."""
    groups = page.one("#conv-header").find("div.actions")
    return [b.attrs["data-action"] for group in groups for b in group.find("button")]


def test_an_agent_on_a_queued_conversation_may_take_transfer_and_resolve(
    client: Client, agent: User, conversation: Conversation
) -> None:
    page = parse(get(client, agent, url(conversation, "header/")))

    assert _actions(page) == ["take", "open-transfer", "resolve"]
    assert page.one("button[data-action=take]").text == "Take"
    assert page.find("form[data-form=assign]") == []
    assert page.find("select#priority-select") != []
    header = page.one("#conv-header")
    assert header.attrs["data-state"] == "queued"
    assert header.one("#conv-title").text == "Maria Souza"
    assert header.one(".protocol").text == conversation.protocol
    assert header.one(".pill").text == "Queued"


def test_an_agent_sees_no_actions_on_a_teammates_conversation(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    assign(conversation, teammate)

    page = parse(get(client, agent, url(conversation)))

    assert _actions(page) == []
    assert page.find("select#priority-select") == []
    assert page.find("dialog#transfer-dialog") == []
    assert page.one(".assignee").text == "Carla"
    header = page.one("#conv-header")
    assert header.attrs["data-reply-block"] == "assigned"
    assert header.attrs["data-reply-block-text"].startswith("Carla is handling this conversation")
    assert "disabled" in page.one("textarea#composer-text").attrs
    # Tags and internal notes stay open to the whole team.
    assert page.find("form[data-form=add-tag]") != []


def test_a_supervisor_may_assign_anyone_of_the_team(
    client: Client,
    supervisor: User,
    agent: User,
    teammate: User,
    conversation: Conversation,
    finance: Team,
    outsider: User,
) -> None:
    assign(conversation, teammate)

    page = parse(get(client, supervisor, url(conversation, "header/")))

    assert _actions(page) == ["take", "pending", "open-transfer", "resolve"]
    assert page.one("button[data-action=take]").text == "Assign to me"
    options = page.one("select#assign-agent").find("option")
    assert [(o.attrs["value"], o.text) for o in options] == [
        ("", "Choose…"),
        (str(agent.pk), "Bruno"),
        (str(teammate.pk), "Carla"),
        (str(supervisor.pk), "Elisa"),
    ]
    assert "selected" in options[2].attrs
    groups = page.one("select#transfer-agent").find("optgroup")
    assert [(g.attrs["label"], [o.text for o in g.find("option")]) for g in groups] == [
        ("Financeiro", ["Diego"]),
        ("Suporte técnico", ["Bruno", "Carla", "Elisa"]),
    ]
    assert [o.text for o in page.one("select#transfer-team").find("option")] == [
        "Choose a team…",
        "Financeiro",
        "Suporte técnico",
    ]


def test_the_assignee_may_set_pending_and_a_resolved_conversation_only_reopens(
    client: Client, agent: User, conversation: Conversation
) -> None:
    assign(conversation, agent)

    assert _actions(parse(get(client, agent, url(conversation, "header/")))) == [
        "pending",
        "open-transfer",
        "resolve",
    ]

    Conversation.objects.filter(pk=conversation.pk).update(state=Conversation.State.RESOLVED)
    page = parse(get(client, agent, url(conversation)))

    assert _actions(page) == ["reopen"]
    assert page.one("#conv-header").attrs["data-reply-block"] == "resolved"
    assert page.one("#reply-blocked").text == (
        "This conversation is resolved. Reopen it to write to the customer."
    )


def test_tags_are_chips_with_existing_ones_offered(
    client: Client, agent: User, conversation: Conversation
) -> None:
    conversation.tags.add(Tag.objects.create(name="lentidão"))
    Tag.objects.create(name="financeiro")

    page = parse(get(client, agent, url(conversation, "header/")))

    chip = page.one("#tag-chips").one("li.chip")
    assert chip.attrs["data-tag"] == "lentidão"
    assert chip.one("button").attrs["aria-label"] == "Remove the tag lentidão"
    assert [o.attrs["value"] for o in page.one("datalist#tag-options").find("option")] == [
        "financeiro"
    ]
    assert page.one("label[for=tag-input]").text == "Add a tag"


def test_opening_the_conversation_marks_it_read_for_the_assignee(
    client: Client, agent: User, teammate: User, conversation: Conversation
) -> None:
    assign(conversation, agent)
    Conversation.objects.filter(pk=conversation.pk).update(unread_count=3)

    get(client, teammate, url(conversation))
    conversation.refresh_from_db()
    assert conversation.unread_count == 3

    get(client, agent, url(conversation))
    conversation.refresh_from_db()
    assert conversation.unread_count == 0


# --- Side panel ---------------------------------------------------------------------


def test_the_side_panel_shows_the_contact_and_their_previous_conversations(
    client: Client,
    agent: User,
    conversation: Conversation,
    contact: Contact,
    inbox: Inbox,
    support: Team,
    finance: Team,
) -> None:
    Contact.objects.filter(pk=contact.pk).update(
        phone="+5511988887777", username="maria.s", customer_code="C-42", notes="Prefere à tarde"
    )
    contact.tags.add(Tag.objects.create(name="vip"))
    earlier = Conversation.objects.create(
        contact=contact,
        inbox=inbox,
        team=support,
        state=Conversation.State.RESOLVED,
        protocol="P-OLD",
        created_at=timezone.now() - timedelta(days=30),
    )
    Conversation.objects.create(
        contact=contact,
        inbox=inbox,
        team=finance,
        state=Conversation.State.RESOLVED,
        protocol="P-FIN",
    )

    page = parse(get(client, agent, url(conversation, "side/")))

    facts = {
        div.one("dt").text: div.one("dd").text
        for div in page.one("#conv-side").find("section")[0].find("div")
    }
    assert facts == {
        "Name": "Maria Souza",
        "Phone": "+5511988887777",
        "WhatsApp username": "@maria.s",
        "Customer code": "C-42",
        "Tags": "vip",
        "Notes": "Prefere à tarde",
    }
    previous = page.one("ul.previous").find("li")
    assert [li.one("a").attrs["href"] for li in previous] == [f"/console/c/{earlier.pk}/"]
    assert previous[0].text.startswith("P-OLD Resolved")
    panel = page.one("section.panel")
    assert panel.attrs["data-panel-url"] == f"/console/panels/subscriber/{conversation.pk}/"
    assert panel.one("h2").text == "Subscriber"


def test_panels_registered_by_other_apps_are_listed_in_order(
    client: Client, agent: User, conversation: Conversation
) -> None:
    panels.register_panel("later", title="Later", url_name="console-conversation-side", order=50)
    panels.register_panel("broken", title="Broken", url_name="no-such-url")
    try:
        page = parse(get(client, agent, url(conversation, "side/")))
    finally:
        panels.unregister_panel("later")
        panels.unregister_panel("broken")

    assert [s.one("h2").text for s in page.find("section.panel")] == ["Subscriber", "Later"]


# --- Customer text is inert ---------------------------------------------------------


def test_whatsapp_formatting_shows_as_the_customer_sees_it(
    client: Client, agent: User, conversation: Conversation
) -> None:
    assign(conversation, agent)
    menu = make_message(
        conversation,
        "*Menu principal*\n1️⃣ _Segunda via_ em https://fibra.net/segunda_via",
        sender_type=Message.SenderType.BOT,
    )
    answer = make_message(conversation, "1", direction=In, reply_to=menu)
    note = Note.objects.create(
        conversation=conversation, author=agent, text="Cliente *VIP*: priorizar"
    )

    page = parse(get(client, agent, url(conversation)))

    text = page.one(f"#m-{menu.pk}").one(".text")
    assert text.one("strong").text == "Menu principal"
    assert text.one("em").text == "Segunda via"
    assert text.one("a").attrs["href"] == "https://fibra.net/segunda_via"
    assert "*" not in text.text
    # The quote of it in the customer's answer is one plain line.
    quote = page.one(f"#m-{answer.pk}").one(".quote-text").text
    assert quote == "Menu principal 1️⃣ Segunda via em https://fibra.net/segunda_via"
    # Agents write notes with the same habit.
    assert page.one(f"#n-{note.pk}").one(".note-text").one("strong").text == "VIP"


def test_customer_supplied_text_is_escaped_everywhere(
    client: Client, agent: User, receive: Callable[..., Message]
) -> None:
    first = receive(XSS_SCRIPT, profile_name=XSS_IMG, username=XSS_IMG)
    conversation = first.conversation
    Contact.objects.filter(pk=conversation.contact_id).update(notes=XSS_SCRIPT, username=XSS_IMG)
    document = make_message(
        conversation,
        XSS_SCRIPT,
        direction=In,
        kind=Message.Kind.DOCUMENT,
        media_file="whatsapp/x.pdf",
        payload={"document": {"filename": XSS_IMG}},
    )
    image = make_message(
        conversation, XSS_IMG, direction=In, kind=Message.Kind.IMAGE, media_file="whatsapp/x.jpg"
    )
    location = make_message(
        conversation,
        "x",
        direction=In,
        kind=Message.Kind.LOCATION,
        payload={"location": {"latitude": "1", "longitude": "2", "name": XSS_IMG}},
    )
    quoted = make_message(conversation, "ok", reply_to=first)
    note = Note.objects.create(conversation=conversation, author=agent, text=XSS_SCRIPT)

    bodies = [
        get(client, agent, url(conversation)),
        get(client, agent, url(conversation, "messages/")),
        get(client, agent, url(conversation, "header/")),
        get(client, agent, url(conversation, "side/")),
        get(client, agent, url(conversation, f"m/{document.pk}/")),
        get(client, agent, url(conversation, f"m/{image.pk}/")),
        get(client, agent, url(conversation, f"m/{location.pk}/")),
        get(client, agent, url(conversation, f"m/{quoted.pk}/")),
        get(client, agent, url(conversation, f"n/{note.pk}/")),
    ]

    for body in bodies:
        assert XSS_IMG not in body
        assert XSS_SCRIPT not in body
    page = bodies[0]
    assert f"<title>{XSS_IMG_ESCAPED} · {conversation.protocol} · ISP Support</title>" in page
    assert f'<span class="filename">{XSS_IMG_ESCAPED}</span>' in page
    assert f'alt="Image: {XSS_IMG_ESCAPED}"' in page
    assert XSS_SCRIPT_ESCAPED in bodies[1]
    assert f"@{XSS_IMG_ESCAPED}" in bodies[3]


# --- Query counts -------------------------------------------------------------------


def _fill(conversation: Conversation, agent: User, count: int) -> None:
    """``count`` messages of every sort (senders, replies, media, reactions) and notes."""
    start = timezone.now() - timedelta(hours=3)
    previous: Message | None = None
    for n in range(count):
        previous = make_message(
            conversation,
            f"m{n}",
            direction=In if n % 3 == 0 else Out,
            sender_user=agent if n % 3 == 1 else None,
            sender_type=[None, None, Message.SenderType.BOT][n % 3],
            kind=Message.Kind.IMAGE if n % 5 == 0 else Message.Kind.TEXT,
            media_file="whatsapp/x.jpg" if n % 5 == 0 else "",
            reply_to=previous if n % 4 == 0 else None,
            reactions={"contact": "👍"} if n % 6 == 0 else {},
            at=start + timedelta(seconds=n),
        )
        if n % 7 == 0:
            Note.objects.create(
                conversation=conversation,
                author=agent if n % 2 else None,
                text=f"n{n}",
                created_at=start + timedelta(seconds=n, milliseconds=500),
            )


def _queries(client: Client, path: str) -> int:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(path, HTTP_ACCEPT_LANGUAGE="en")
    assert response.status_code == 200
    return len(captured)


@pytest.mark.parametrize("part", ["", "messages/"])
def test_the_page_and_the_thread_cost_the_same_queries_for_5_or_60_messages(
    part: str,
    client: Client,
    agent: User,
    receive: Callable[..., Message],
    django_assert_max_num_queries: Any,
) -> None:
    small = receive("a", wa_id="5511911110001").conversation
    large = receive("b", wa_id="5511911110002").conversation
    for conversation in (small, large):
        assign(conversation, agent)
        conversation.tags.add(
            *Tag.objects.bulk_create([Tag(name=f"t{conversation.pk}-{i}") for i in range(3)])
        )
    _fill(small, agent, 5)
    _fill(large, agent, 60)
    client.force_login(agent)
    # The first visit marks the conversation read (a write): count the next ones.
    _queries(client, url(small, part))
    _queries(client, url(large, part))

    few = _queries(client, url(small, part))
    many = _queries(client, url(large, part))

    assert few == many
    with django_assert_max_num_queries(many):
        client.get(url(large, part), HTTP_ACCEPT_LANGUAGE="en")
    # The page: session, user, conversation, messages, notes, templates, header
    # (user's teams, teams, members, tags, tag names), side (previous, contact
    # tags); the fragment: session, user, conversation, messages, notes.
    assert many == (13 if part == "" else 5)


def test_the_page_embeds_nothing_executable_but_its_own_script(
    client: Client, agent: User, conversation: Conversation
) -> None:
    html = get(client, agent, url(conversation))

    scripts = re.findall(r"<script\b[^>]*>", html)
    assert all(re.search(r'src="/(static|jsi18n)/', tag) for tag in scripts), scripts
    assert 'src="/static/js/conversation.js"' in html
    assert "style=" not in html
    assert re.search(r"\son[a-z]+=", html) is None

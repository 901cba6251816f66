"""The whole product in a real browser, as a new user tries it: a customer
writes through the simulator, the bot hands over, an agent answers live, a
colleague of another team never sees any of it, and resolving asks for a
rating. Screenshots of every page at 1366x768 land in ``E2E_ARTIFACTS``."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.conftest import PASSWORD, VIEWPORT, Served

XSS_NAME = "Maria <img src=x onerror=alert(1)>"
TABLET = {"width": 810, "height": 1080}
LIVE_TIMEOUT = 15_000  # ms; the bot runs in the worker, which polls its queue


@dataclass
class Tab:
    """A logged-in browser tab and everything it complained about."""

    page: Any
    errors: list[str] = field(default_factory=list)
    frames: list[dict[str, Any]] = field(default_factory=list)

    def goto(self, url: str) -> None:
        self.page.goto(url)
        self.page.wait_for_load_state("domcontentloaded")


def _open(browser: Any, served: Served, username: str) -> Tab:
    context = browser.new_context(viewport=VIEWPORT, locale="pt-BR")
    page = context.new_page()
    tab = Tab(page)

    def console(message: Any) -> None:
        if message.type == "error":
            tab.errors.append(f"console: {message.text}")

    def frame(payload: str | bytes) -> None:
        try:
            tab.frames.append(json.loads(payload))
        except (TypeError, ValueError):
            tab.frames.append({"raw": str(payload)})

    page.on("console", console)
    page.on("pageerror", lambda error: tab.errors.append(f"page error: {error}"))
    # An injected script that ran would open a dialog (alert): never allowed.
    page.on(
        "dialog", lambda dialog: (tab.errors.append(f"dialog: {dialog.message}"), dialog.dismiss())
    )
    page.on("websocket", lambda ws: ws.on("framereceived", frame))
    page.goto(f"{served.base}/login/")
    page.fill("#id_username", username)
    page.fill("#id_password", PASSWORD)
    page.click("#main button[type=submit]")
    page.wait_for_url(re.compile(r".*/console/$"))
    return tab


def _live(tab: Tab) -> None:
    tab.page.wait_for_selector("#live-status[data-state=open]", state="attached", timeout=10_000)


@pytest.fixture(scope="module")
def tabs(served: Served, browser: Any) -> Iterator[dict[str, Tab]]:
    opened = {name: _open(browser, served, name) for name in ("admin", "ana", "bruno")}
    yield opened
    for tab in opened.values():
        tab.page.context.close()


def test_a_customer_reaches_an_agent_live_and_gets_the_answer(
    served: Served, tabs: dict[str, Tab], artifacts: Path
) -> None:
    admin, ana, bruno = tabs["admin"], tabs["ana"], tabs["bruno"]
    base = served.base

    # The agents sit in their inboxes; only the socket brings them news.
    ana.goto(f"{base}/console/?tab=queue")
    bruno.goto(f"{base}/console/?tab=queue")
    _live(ana)
    _live(bruno)
    assert ana.page.locator(".inbox-row").count() == 0

    # A new customer writes through the simulator (the real signed webhook).
    sim = admin.page
    admin.goto(f"{base}/simulator/")
    sim.fill("#sim-new-name", XSS_NAME)
    sim.fill("#sim-new-phone", "+55 11 98765-4321")
    sim.locator("#sim-new-phone").press("Enter")
    sim.wait_for_selector("#sim-text")
    _send_as_customer(sim, "Oi, boa tarde")
    sim.wait_for_selector("#sim-messages li[data-direction=out]", timeout=LIVE_TIMEOUT)
    _send_as_customer(sim, "quero falar com um atendente")

    # The bot hands over to Suporte técnico: the row appears in Ana's queue live.
    row = ana.page.locator(".inbox-row", has_text="Maria")
    row.wait_for(timeout=LIVE_TIMEOUT)
    conversation_id = int(row.get_attribute("id").removeprefix("row-"))
    assert "<img" in row.inner_text()  # the name is shown as text, not as markup
    ana.page.screenshot(path=str(artifacts / "inbox.png"))

    ana.page.locator(f"#row-{conversation_id} a").click()
    ana.page.wait_for_url(re.compile(rf".*/console/c/{conversation_id}/$"))
    ana.page.wait_for_selector("#thread")
    ana.page.click("[data-action=take]")
    ana.page.wait_for_selector("[data-action=resolve]")

    # Ana answers; the tick moves from pending to sent (and on, as the
    # simulated phone reports delivered/read).
    reply = "Olá! Sou a Ana, do suporte. Vou verificar sua conexão agora."
    composer = ana.page.locator("#composer-text")
    composer.fill(reply)
    composer.press("Enter")
    bubble = ana.page.locator("#thread [data-status]", has_text=reply)
    bubble.wait_for(timeout=LIVE_TIMEOUT)
    ana.page.wait_for_function(
        """(text) => [...document.querySelectorAll('#thread [data-status]')]
            .some(el => el.textContent.includes(text)
                  && ['sent', 'delivered', 'read'].includes(el.dataset.status))""",
        arg=reply,
        timeout=LIVE_TIMEOUT,
    )

    # The customer's phone shows the answer.
    sim.locator("#sim-messages li[data-direction=out]", has_text=reply).wait_for(
        timeout=LIVE_TIMEOUT
    )
    ana.page.screenshot(path=str(artifacts / "conversation.png"))

    # Resolving sends the rating question to the customer.
    ana.page.click("[data-action=resolve]")
    _wait_for_rating_question(sim)
    sim.screenshot(path=str(artifacts / "simulator.png"))

    # Bruno (Financeiro) never saw any of it: no row, and not one event about it.
    assert bruno.page.locator(".inbox-row").count() == 0
    leaked = [f for f in bruno.frames if _mentions(f, conversation_id)]
    assert leaked == []
    assert any(f.get("type") == "hello" for f in bruno.frames)

    admin.goto(f"{base}/console/dashboard/")
    admin.page.wait_for_selector("svg")
    admin.page.screenshot(path=str(artifacts / "dashboard.png"))

    # The same pages on a tablet held upright.
    ana.page.set_viewport_size(TABLET)
    ana.page.screenshot(path=str(artifacts / "conversation-tablet.png"))
    ana.goto(f"{base}/console/?tab=mine&state=resolved")
    ana.page.locator(f"#row-{conversation_id}").wait_for()
    assert ana.page.evaluate("document.documentElement.scrollWidth") <= TABLET["width"]
    ana.page.screenshot(path=str(artifacts / "inbox-tablet.png"))

    for name, tab in tabs.items():
        assert tab.errors == [], name


def _send_as_customer(sim: Any, text: str) -> None:
    box = sim.locator("#sim-text")
    box.fill(text)
    box.press("Enter")
    sim.locator("#sim-messages li[data-direction=in]", has_text=text).wait_for(timeout=LIVE_TIMEOUT)


def _wait_for_rating_question(sim: Any) -> None:
    deadline = time.monotonic() + LIVE_TIMEOUT / 1000
    while time.monotonic() < deadline:
        texts = sim.locator("#sim-messages li[data-direction=out]").all_inner_texts()
        if texts and re.search(r"\b1\b.*\b5\b|avali", texts[-1], re.IGNORECASE | re.DOTALL):
            return
        time.sleep(0.3)
    raise AssertionError(f"no rating question; last messages: {texts[-3:]}")


def _mentions(frame: dict[str, Any], conversation_id: int) -> bool:
    if frame.get("type") in ("conversation.update", "conversation.removed"):
        return frame.get("id") == conversation_id
    return frame.get("conversation_id") == conversation_id or frame.get("conversation") == (
        conversation_id
    )


# A customer who last wrote 25 hours ago, and the invoice template ISPs send
# most: the PDF as a document header, the amount, a link button, a discount code.
CLOSED_WINDOW = """
from datetime import timedelta
from django.utils import timezone
from accounts.models import Team, User
from conversations.models import Contact, Conversation
from whatsapp.models import MessageTemplate, WhatsAppAccount

account = WhatsAppAccount.objects.order_by("pk").first()
MessageTemplate.objects.update_or_create(
    account=account, name="fatura_pdf", language="pt_BR",
    defaults=dict(status="APPROVED", category="UTILITY", synced_at=timezone.now(), components=[
        {"type": "HEADER", "format": "DOCUMENT"},
        {"type": "BODY", "text": "Olá! Sua fatura de {{1}} segue anexa."},
        {"type": "BUTTONS", "buttons": [
            {"type": "URL", "text": "Ver fatura", "url": "https://fibra.net/f/{{1}}"},
            {"type": "COPY_CODE", "example": "FIBRA10"},
        ]},
    ]),
)
for index, topic in enumerate(["manutencao", "visita", "retorno", "pesquisa", "aviso"]):
    MessageTemplate.objects.update_or_create(
        account=account, name=f"{topic}_geral", language="pt_BR",
        defaults=dict(status="APPROVED", synced_at=timezone.now(), components=[
            {"type": "BODY", "text": f"Mensagem {index} sobre {topic}."},
        ]),
    )
contact = Contact.objects.create(
    name="Joana Template", wa_id="5511955554444", phone="+5511955554444"
)
late = timezone.now() - timedelta(hours=25)
conversation = Conversation.objects.create(
    contact=contact, inbox=account.inbox, team=Team.objects.get(name="Suporte técnico"),
    assignee=User.objects.get(username="ana"), state="open", protocol="20261126-999001",
    last_inbound_at=late, last_message_at=late, created_at=late,
)
print(conversation.pk)
"""


def test_an_agent_sends_a_document_template_once_the_window_closed(
    served: Served, tabs: dict[str, Tab], artifacts: Path
) -> None:
    conversation_id = int(served.manage("shell", code=CLOSED_WINDOW).split()[-1])
    ana = tabs["ana"]
    ana.page.set_viewport_size(VIEWPORT)
    # The inbox already tells Ana that only a template reaches Joana.
    ana.goto(f"{served.base}/console/?tab=mine")
    row = ana.page.locator(f"#row-{conversation_id}")
    row.wait_for()
    assert row.locator(".window-closed").inner_text() == "janela de 24 h fechada"
    ana.goto(f"{served.base}/console/c/{conversation_id}/")
    page = ana.page

    page.wait_for_selector("#window-banner:not([hidden])")
    page.click("#window-banner summary")
    # Six templates: a filter finds the one by a word of its text.
    assert page.locator(".template-list > li:visible").count() == 6
    page.fill("#template-filter", "fatura anexa")
    assert page.locator(".template-list > li:visible").count() == 1
    page.fill("#template-filter", "nada disso")
    assert page.locator(".template-list > li:visible").count() == 0
    assert page.locator("#template-filter-empty").is_visible()
    page.fill("#template-filter", "FATURA")
    form = page.locator("form[data-name=fatura_pdf]")
    assert form.is_visible()
    form.locator("button[type=submit]").click()  # empty: refused in the page
    assert page.locator("#thread [data-status]").count() == 0
    form.locator("input[data-part=link]").fill("https://erp.fibra.net/boletos/8841.pdf")
    form.locator("input[data-part=filename]").fill("fatura-novembro.pdf")
    form.locator("input[data-part=body]").fill("R$ 99,90")
    form.locator("input[data-part=button][data-index='0']").fill("8841")
    form.locator("input[data-part=button][data-index='1']").fill("FIBRA25OFF")
    assert "R$ 99,90" in form.locator("[data-preview]").inner_text()
    form.scroll_into_view_if_needed()
    page.screenshot(path=str(artifacts / "template.png"))
    form.locator("button[type=submit]").click()

    bubble = page.locator("#thread .kind-template")
    bubble.wait_for(timeout=LIVE_TIMEOUT)
    link = bubble.locator(".template-file a")
    assert link.inner_text() == "Documento: fatura-novembro.pdf"
    assert link.get_attribute("href") == "https://erp.fibra.net/boletos/8841.pdf"
    assert "Olá! Sua fatura de R$ 99,90 segue anexa." in bubble.inner_text()
    page.wait_for_function(
        "() => ['sent', 'delivered', 'read'].includes("
        "document.querySelector('#thread .kind-template').dataset.status)",
        timeout=LIVE_TIMEOUT,
    )
    assert page.locator("#thread .kind-template").count() == 1

    # A note is still possible with the window closed, and shows its formatting.
    page.click("#tab-note")
    note_box = page.locator("#composer-text")
    note_box.fill("Cliente *VIP*: boleto enviado por modelo")
    note_box.press("Enter")
    note = page.locator("#thread .note", has_text="boleto enviado por modelo")
    note.wait_for(timeout=LIVE_TIMEOUT)
    assert note.locator(".note-text strong").inner_text() == "VIP"
    assert page.locator("#thread .note").count() == 1
    assert ana.errors == []

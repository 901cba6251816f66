"""WhatsApp's formatting in the console: the bot's *bold* menus and the agents'
_italics_ show as the customer sees them, and nothing a customer types can
turn into markup other than these few tags."""

from __future__ import annotations

import pytest

from conversations.markup import chat_markup, chat_plain


@pytest.mark.parametrize(
    ("text", "html"),
    [
        ("*Menu principal*", "<strong>Menu principal</strong>"),
        ("_Segunda via_ do boleto", "<em>Segunda via</em> do boleto"),
        ("plano ~100 mega~ 300 mega", "plano <s>100 mega</s> 300 mega"),
        ("código ```PIX-8841```", "código <code>PIX-8841</code>"),
        ("*_negrito e itálico_*", "<strong><em>negrito e itálico</em></strong>"),
        ("*Olá*, tudo bem?", "<strong>Olá</strong>, tudo bem?"),
        ("(*ok*)", "(<strong>ok</strong>)"),
        (
            "1️⃣ *Sem internet*\n2️⃣ *Boleto*",
            "1️⃣ <strong>Sem internet</strong><br>2️⃣ <strong>Boleto</strong>",
        ),
    ],
)
def test_whatsapp_formatting_is_rendered(text: str, html: str) -> None:
    assert chat_markup(text) == html


@pytest.mark.parametrize(
    "text",
    [
        "2*3*4 = 24",
        "snake_case_name",
        "* item um\n* item dois",
        "*não fecha",
        "* espaço dentro *",
        "**",
        "~",
    ],
)
def test_markers_where_whatsapp_ignores_them_stay_as_typed(text: str) -> None:
    assert chat_markup(text) == text.replace("\n", "<br>")
    assert chat_plain(text) == text


def test_links_keep_their_underscores_and_become_clickable() -> None:
    html = chat_markup("*Pague em https://fibra.net/segunda_via_boleto*")

    assert html == (
        '<strong>Pague em <a href="https://fibra.net/segunda_via_boleto" rel="nofollow">'
        "https://fibra.net/segunda_via_boleto</a></strong>"
    )
    assert chat_plain("veja https://fibra.net/_a_ _b_") == "veja https://fibra.net/_a_ b"


def test_everything_the_customer_typed_is_escaped() -> None:
    html = chat_markup("<img src=x onerror=alert(1)> *<b>x</b>* ```<script>```")

    assert html == (
        "&lt;img src=x onerror=alert(1)&gt; <strong>&lt;b&gt;x&lt;/b&gt;</strong> "
        "<code>&lt;script&gt;</code>"
    )


def test_a_preview_drops_the_markers() -> None:
    assert chat_plain("*Menu*: _escolha_ ~uma~ opção ```1```") == "Menu: escolha uma opção 1"
    assert chat_plain(None) == "" and chat_markup(None) == ""


def test_hostile_text_is_left_as_typed_past_the_bounds() -> None:
    """What it costs is measured by bench/markup.py; here, that the bounds hold."""
    nested = "*_~" * 700 + "x" + "~_*" * 700
    unclosed = "*a " * 1400

    assert chat_markup(nested) == nested  # a span over 500 characters: as typed
    assert chat_markup(unclosed) == unclosed
    assert chat_markup("*" + "a" * 499 + "*") == "<strong>" + "a" * 499 + "</strong>"
    assert chat_markup("*" + "a" * 501 + "*") == "*" + "a" * 501 + "*"
    # Four levels are rendered; what is nested deeper stays as typed.
    assert chat_markup("*_~*_~x~_*~_*") == "<strong><em><s><strong>_~x~_</strong></s></em></strong>"

"""WhatsApp's text formatting, shown in the console as the customer sees it.

WhatsApp (like Telegram and Instagram, whose markers mostly agree) reads
``*bold*``, ``_italic_``, ``~strikethrough~`` and ```` ```monospace``` ````, and
hides the markers. The bot's menus and the agents' canned replies use them, so
the thread renders them instead of showing the asterisks. A marker only counts
where WhatsApp counts it: at a word's edge, around text that does not start or
end with a space, on one line; so ``2*3*4``, ``snake_case_names`` and the
underscores of a link stay as they are.

Everything the customer wrote is escaped first; the only markup that comes out
is ``<strong>``, ``<em>``, ``<s>``, ``<code>``, ``<br>`` and the links
``urlize`` makes.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from django.utils.html import escape, urlize
from django.utils.safestring import SafeString, mark_safe

_TAGS = {"*": "strong", "_": "em", "~": "s"}
# Markers nest (*_~all~_*); beyond this many levels below the first the rest
# is left as typed, so a hostile message cannot make the thread recurse without end.
MAX_NESTING = 3

# A marker opens after the line's start, a space or punctuation, and closes
# before the line's end, a space or punctuation; the text inside neither starts
# nor ends with a space (it may start with another marker: *_both_*). The lazy
# inner part makes the nearest closer win.
# A span is at most MAX_SPAN characters: longer ones stay as typed, which also
# keeps a line of hundreds of unclosed markers from costing quadratic time.
MAX_SPAN = 500
_FORMAT = re.compile(
    rf"```(?P<mono>[^\n]{{1,{MAX_SPAN}}}?)```"
    r"|(?<![\w*_~])(?P<mark>[*_~])"
    rf"(?P<inner>(?!(?P=mark))\S(?:[^\n]{{0,{MAX_SPAN - 2}}}?\S)?)"
    r"(?P=mark)(?![\w*_~])"
)
# Links are set aside before formatting (their underscores are not italics);
# markers and punctuation right after one are not part of it.
_LINK = re.compile(r"(?:https?://|www\.)\S+?(?=[*_~.,:;!?)\]]*(?:\s|$))", re.IGNORECASE)
# A stand-in for a link while the line is formatted: NUL never reaches the
# database (whatsapp.payloads cleans it), so it cannot clash with the text.
_SLOT = re.compile("\x00(\\d+)\x00")


def _plain(text: str) -> str:
    return urlize(text, nofollow=True, autoescape=True) if text else ""


def _formatted(text: str, depth: int = 0) -> str:
    if depth > MAX_NESTING:
        return _plain(text)
    out, pos = [], 0
    for match in _FORMAT.finditer(text):
        out.append(_plain(text[pos : match.start()]))
        if match["mono"] is not None:
            out.append(f"<code>{escape(match['mono'])}</code>")
        else:
            tag = _TAGS[match["mark"]]
            out.append(f"<{tag}>{_formatted(match['inner'], depth + 1)}</{tag}>")
        pos = match.end()
    out.append(_plain(text[pos:]))
    return "".join(out)


def _links_aside(text: str, transform: Callable[[str], str], put_back: Callable[[str], str]) -> str:
    """``transform`` of ``text`` with its links set aside, then ``put_back``."""
    links: list[str] = []

    def set_aside(match: re.Match[str]) -> str:
        links.append(match.group())
        return f"\x00{len(links) - 1}\x00"

    done = transform(_LINK.sub(set_aside, text.replace("\x00", "")))
    return _SLOT.sub(lambda m: put_back(links[int(m[1])]), done)


def _unmarked(text: str, depth: int = 0) -> str:
    if depth > MAX_NESTING:
        return text

    def unmark(match: re.Match[str]) -> str:
        return match["mono"] if match["mono"] is not None else _unmarked(match["inner"], depth + 1)

    return _FORMAT.sub(unmark, text)


def chat_markup(text: str | None) -> SafeString:
    """``text`` as safe HTML: escaped, links made clickable, WhatsApp's
    formatting applied, line breaks kept."""
    lines = (text or "").replace("\r\n", "\n").split("\n")
    html = (_links_aside(line, _formatted, _plain) for line in lines)
    return mark_safe("<br>".join(html))  # noqa: S308 - escaped above


def chat_plain(text: str | None) -> str:
    """``text`` without WhatsApp's formatting markers (for one-line previews)."""
    lines = (text or "").split("\n")
    return "\n".join(_links_aside(line, _unmarked, str) for line in lines)

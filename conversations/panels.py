"""Side panels of the conversation view that other apps contribute.

The core knows no subscriber system and no bot; an app that has something to
show next to a conversation (the chatbot's subscriber panel) registers it in
its ``AppConfig.ready()``. The console lists each registered panel as a
section that the browser loads lazily from the panel's own URL, so a slow or
failing panel never holds up (or breaks) the conversation page.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.urls import NoReverseMatch, reverse
from django.utils.functional import Promise


@dataclass(frozen=True)
class Panel:
    key: str
    title: str | Promise
    url_name: str  # reversed with the conversation's pk as its only argument
    order: int = 100

    def url_for(self, conversation_id: int) -> str | None:
        try:
            return reverse(self.url_name, args=[conversation_id])
        except NoReverseMatch:
            return None


_panels: dict[str, Panel] = {}


def register_panel(key: str, *, title: str | Promise, url_name: str, order: int = 100) -> None:
    """Show a section ``title`` in every conversation's side panel, loaded from
    ``reverse(url_name, args=[conversation.pk])``. That view must answer 404 for
    a conversation the user may not see, like every console endpoint."""
    _panels[key] = Panel(key=key, title=title, url_name=url_name, order=order)


def unregister_panel(key: str) -> None:
    _panels.pop(key, None)


def registered_panels() -> list[Panel]:
    return sorted(_panels.values(), key=lambda panel: (panel.order, panel.key))


def panels_for(conversation_id: int) -> list[tuple[Panel, str]]:
    """Each panel with its URL for this conversation (panels whose URL is not
    mounted are left out rather than shown broken)."""
    found = []
    for panel in registered_panels():
        url = panel.url_for(conversation_id)
        if url:
            found.append((panel, url))
    return found

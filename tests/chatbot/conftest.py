"""A customer talking to the bot: ``say("oi")`` stores the message as the
channel would and runs the bot's task on it at once, returning what the bot
answered (its outbound messages, in order)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.core.cache import cache

from accounts.models import Team
from chatbot.models import DEFAULT_MENU, MenuOption
from chatbot.tasks import handle_message
from conversations import channels
from conversations.models import Conversation, Inbox, Message
from conversations.services import message_receive
from tests.conversations.conftest import (  # noqa: F401 - shared fixtures
    _fast_password_hashing,
    _no_channel_registrations,
    _no_greeting,
    agent,
    finance,
    inbox,
    outsider,
    supervisor,
    support,
    teammate,
)

MARIA = "5511988887777"


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    """The bot's settings are cached; each test starts from the database."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture(autouse=True)
def _bot_installed(_no_channel_registrations: None) -> None:  # noqa: F811
    channels.register_bot(handle_message)


def ensure_default_menu() -> None:
    """The migration's menu. A transactional test (transaction=True) flushes
    every table, data migrations' rows included, for the tests after it."""
    if not MenuOption.objects.exists():
        MenuOption.objects.bulk_create(
            MenuOption(position=p, label=label, description=d, intent=i)
            for p, label, d, i in DEFAULT_MENU
        )


@pytest.fixture
def sales(db: None) -> Team:
    return Team.objects.create(name="Comercial")


@pytest.fixture
def routed_menu(support: Team, finance: Team, sales: Team) -> None:  # noqa: F811
    """The default menu with each option routed to its team."""
    ensure_default_menu()
    routes = {
        "invoice": finance,
        "trust_unlock": finance,
        "no_internet": support,
        "slow_internet": support,
        "technical_visit": support,
        "plans": sales,
        "cancellation": sales,
        "agent": support,
    }
    for option in MenuOption.objects.all():
        option.team = routes[option.intent]
        option.save()


Say = Callable[..., list[Message]]


@pytest.fixture
def say(inbox: Inbox) -> Say:  # noqa: F811
    """The customer writes ``text`` (or taps ``reply_id``); the bot answers."""
    ensure_default_menu()
    counter = iter(range(1, 10**6))

    def _say(
        text: str = "",
        *,
        wa_id: str = MARIA,
        reply_id: str = "",
        kind: str = Message.Kind.TEXT,
        **kwargs: Any,
    ) -> list[Message]:
        payload = {"reply_id": reply_id} if reply_id else {}
        if reply_id and kind == Message.Kind.TEXT:
            kind = Message.Kind.INTERACTIVE
        message = message_receive(
            inbox=inbox,
            wa_id=wa_id,
            profile_name=kwargs.pop("profile_name", "Maria Souza"),
            text=text,
            kind=kind,
            payload=payload,
            external_id=f"wamid.BOT{next(counter):06d}{wa_id}",
            **kwargs,
        ).message
        last = Message.objects.filter(conversation=message.conversation).order_by("-id").first()
        handle_message.call(message.pk)
        return list(
            Message.objects.filter(
                conversation__contact=message.conversation.contact,
                direction=Message.Direction.OUT,
                id__gt=last.pk if last else 0,
            ).order_by("id")
        )

    return _say


def conversation_of(wa_id: str = MARIA) -> Conversation:
    return Conversation.objects.filter(contact__wa_id=wa_id).order_by("-id").first()  # type: ignore[return-value]

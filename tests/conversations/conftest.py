"""The people and places every conversations test starts from: an agent and a
teammate in Suporte técnico, an outsider in Financeiro, a supervisor of
Suporte, and a WhatsApp inbox whose default team is Suporte."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.utils import timezone

from accounts.models import Team, User
from conversations import channels
from conversations.models import Contact, Conversation, Inbox, Message
from conversations.services import message_receive

PASSWORD = "Senha-Forte-123"


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings: Any) -> None:
    """bcrypt's 12 rounds cost a quarter of a second per user, and these tests
    create several per test; hashing is tested in tests/accounts."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def _no_greeting(settings: Any) -> None:
    """Tests count the messages they make; test_greeting.py turns the automatic
    protocol message back on."""
    settings.CONVERSATION_GREETING = False


@pytest.fixture(autouse=True)
def _no_channel_registrations() -> Iterator[None]:
    """Tests register their own sender/bot; none leaks into the next test."""
    saved_senders, saved_bot = dict(channels._senders), list(channels._bot)
    channels.unregister_all()
    yield
    channels.unregister_all()
    channels._senders.update(saved_senders)
    channels._bot.extend(saved_bot)


@pytest.fixture
def support(db: None) -> Team:
    return Team.objects.create(name="Suporte técnico")


@pytest.fixture
def finance(db: None) -> Team:
    return Team.objects.create(name="Financeiro")


def _staff(username: str, role: str, *teams: Team, name: str = "") -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, role=role, name=name)
    user.teams.set(teams)
    return user


@pytest.fixture
def agent(support: Team) -> User:
    return _staff("bruno.agente", User.Role.AGENT, support, name="Bruno")


@pytest.fixture
def teammate(support: Team) -> User:
    return _staff("carla.agente", User.Role.AGENT, support, name="Carla")


@pytest.fixture
def outsider(finance: Team) -> User:
    return _staff("diego.financeiro", User.Role.AGENT, finance, name="Diego")


@pytest.fixture
def supervisor(support: Team) -> User:
    return _staff("elisa.supervisora", User.Role.SUPERVISOR, support, name="Elisa")


@pytest.fixture
def inbox(support: Team) -> Inbox:
    return Inbox.objects.create(
        name="WhatsApp Suporte", address="+5511400012345", default_team=support
    )


@pytest.fixture
def receive(inbox: Inbox) -> Callable[..., Message]:
    """A customer's message arrives, as the channel would store it."""
    counter = iter(range(1, 10**6))

    def _receive(
        text: str = "Minha internet caiu", *, wa_id: str = "5511988887777", **kwargs: Any
    ) -> Message:
        kwargs.setdefault("external_id", f"wamid.TEST{next(counter):06d}{wa_id}")
        kwargs.setdefault("profile_name", "Maria Souza")
        return message_receive(
            inbox=kwargs.pop("inbox", inbox), wa_id=wa_id, text=text, **kwargs
        ).message

    return _receive


@pytest.fixture
def conversation(receive: Callable[..., Message]) -> Conversation:
    """A queued conversation of Maria in Suporte técnico, with one inbound message."""
    return receive().conversation


@pytest.fixture
def contact(conversation: Conversation) -> Contact:
    return conversation.contact


def hours_ago(hours: float) -> Any:
    return timezone.now() - timedelta(hours=hours)

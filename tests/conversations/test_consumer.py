"""The console's live socket, driven through the real ASGI application (origin
check, session auth, routing) and the real channel layer (in memory, or
Redis with REDIS_URL), with events published by the real services at commit.

Each test runs its socket conversation in one event loop (``run``); the
services it calls hop back to the test's thread, where the database is.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.test import Client

from accounts.models import Team, User
from accounts.services import team_add_member, team_remove_member, user_deactivate
from conversations.consumers import ConsoleConsumer
from conversations.events import user_group
from conversations.models import Conversation, Inbox, Message
from conversations.services import (
    conversation_assign,
    conversation_transfer,
    message_apply_status,
    message_send,
    note_create,
)
from ispsupport.asgi import application
from tests.conversations.conftest import PASSWORD

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "testserver"
ORIGIN = f"http://{HOST}"
WAIT = 1.0
QUIET = 0.3

Receive = Callable[..., Message]
Socket = WebsocketCommunicator


class _EventId:
    """Equal to any event id: a 32-character hex string."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and len(other) == 32 and int(other, 16) >= 0

    __hash__ = None  # type: ignore[assignment]


EVENT_ID = _EventId()


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    """One event loop for the whole scenario: a socket lives in the loop it was opened in."""
    async_to_sync(scenario)()


def db(fn: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """A service call from the scenario, run in the test's thread (its database connection)."""
    return sync_to_async(fn)


def _session_cookie(user: User) -> str:
    client = Client()
    client.force_login(user)
    return client.cookies[settings.SESSION_COOKIE_NAME].value


def _communicator(
    *, cookie: str | None = None, origin: str | None = ORIGIN, host: str | None = HOST
) -> Socket:
    # Error messages follow the page's language; these tests read the English ones.
    headers = [(b"accept-language", b"en")]
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, "/ws/console/", headers=headers)


@asynccontextmanager
async def console(user: User, *, cookie: str | None = None) -> AsyncIterator[Socket]:
    """A logged-in console tab, past its hello."""
    cookie = cookie or await db(_session_cookie)(user)
    socket = _communicator(cookie=cookie)
    connected, _ = await socket.connect(timeout=WAIT)
    assert connected
    try:
        assert await socket.receive_json_from(timeout=WAIT) == {"type": "hello", "user": user.pk}
        yield socket
    finally:
        await socket.disconnect()


async def next_event(socket: Socket) -> dict[str, Any]:
    event = await socket.receive_json_from(timeout=WAIT)
    assert isinstance(event, dict)
    return event


async def events(socket: Socket, count: int) -> list[dict[str, Any]]:
    return [await next_event(socket) for _ in range(count)]


async def closed_with(socket: Socket) -> int | None:
    output = await socket.receive_output(timeout=WAIT)
    assert output["type"] == "websocket.close"
    return output.get("code")


def _staff(username: str, role: str, *teams: Team) -> User:
    user = User.objects.create_user(username=username, password=PASSWORD, role=role)
    user.teams.set(teams)
    return user


@pytest.fixture
def finance_supervisor(finance: Team) -> User:
    return _staff("fabio.supervisor", User.Role.SUPERVISOR, finance)


@pytest.fixture
def admin(db: None) -> User:
    return _staff("ana.admin", User.Role.ADMIN)


@pytest.fixture
def fast_recheck(monkeypatch: pytest.MonkeyPatch) -> None:
    """Teams, role and session are read again on every event, not every 5 s."""
    monkeypatch.setattr(ConsoleConsumer, "recheck_seconds", 0.0)


# --- the handshake -----------------------------------------------------------------------


def test_an_anonymous_socket_is_closed_with_4401() -> None:
    async def scenario() -> None:
        socket = _communicator()
        connected, _ = await socket.connect(timeout=WAIT)
        # Accepted, then closed with the code the page reads as "logged out".
        assert connected
        assert await closed_with(socket) == 4401
        await socket.disconnect()

    run(scenario)


def test_a_logged_out_session_is_closed_with_4401(agent: User) -> None:
    client = Client()
    client.force_login(agent)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    client.logout()

    async def scenario() -> None:
        socket = _communicator(cookie=cookie)
        assert (await socket.connect(timeout=WAIT))[0]
        assert await closed_with(socket) == 4401

    run(scenario)


REFUSED = {
    "foreign origin": ("http://evil.example", HOST),
    "no origin": (None, HOST),
    "opaque origin": ("null", HOST),
    "lookalike origin": ("http://testserver.evil.example", HOST),
    "other port": ("http://testserver:8001", HOST),
    "other scheme": ("ftp://testserver", HOST),
    "no host": (ORIGIN, None),
    # DNS rebinding: the same origin, but a Host this site does not answer to.
    "host not allowed": ("http://evil.example", "evil.example"),
}

ACCEPTED = {
    "same origin": (ORIGIN, HOST),
    "same origin with port": ("http://localhost:8000", "localhost:8000"),
    # TLS ends at the proxy: the Host carries no port, the Origin its default one.
    "https behind a proxy": ("https://testserver", HOST),
    "trusted origin": ("https://console.example.com", HOST),
    "trusted wildcard origin": ("https://app.example.org", HOST),
}


def test_a_handshake_from_elsewhere_is_refused(agent: User) -> None:
    """Even with a valid session cookie: the browser sends it cross-site too."""
    cookie = _session_cookie(agent)

    async def scenario() -> None:
        for case, (origin, host) in REFUSED.items():
            socket = _communicator(cookie=cookie, origin=origin, host=host)
            connected, _ = await socket.connect(timeout=WAIT)
            assert not connected, case

    run(scenario)


def test_a_handshake_from_this_site_is_accepted(agent: User, settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://console.example.com", "https://*.example.org"]
    cookie = _session_cookie(agent)

    async def scenario() -> None:
        for case, (origin, host) in ACCEPTED.items():
            socket = _communicator(cookie=cookie, origin=origin, host=host)
            assert await socket.connect(timeout=WAIT) == (True, None), case
            assert await next_event(socket) == {"type": "hello", "user": agent.pk}, case
            await socket.disconnect()

    run(scenario)


def test_any_allowed_host_still_needs_the_same_origin(agent: User, settings: Any) -> None:
    settings.ALLOWED_HOSTS = ["*"]
    cookie = _session_cookie(agent)

    async def scenario() -> None:
        foreign = _communicator(cookie=cookie, origin="http://evil.example", host="suporte.isp")
        assert not (await foreign.connect(timeout=WAIT))[0]
        own = _communicator(cookie=cookie, origin="https://suporte.isp", host="suporte.isp")
        assert (await own.connect(timeout=WAIT))[0]
        await own.disconnect()

    run(scenario)


# --- who receives what ------------------------------------------------------------------


def test_the_team_sees_a_new_message_and_another_team_nothing(
    agent: User, outsider: User, support: Team, receive: Receive
) -> None:
    async def scenario() -> None:
        async with console(agent) as mine, console(outsider) as theirs:
            message = await db(receive)("<img src=x onerror=alert(1)>", wa_id="5511977776666")
            conversation = message.conversation

            update, row = await events(mine, 2)
            assert update["type"] == "message.update"
            assert (update["id"], update["conversation_id"], update["team_id"]) == (
                message.pk,
                conversation.pk,
                support.pk,
            )
            assert (update["direction"], update["text"]) == ("in", message.text)
            assert len(update["event"]) == 32
            assert (row["type"], row["id"], row["state"]) == (
                "conversation.update",
                conversation.pk,
                "queued",
            )
            assert "previous_team_id" not in row
            assert await theirs.receive_nothing(timeout=QUIET)

    run(scenario)


def test_another_team_receives_nothing_of_the_conversation(
    agent: User,
    outsider: User,
    finance_supervisor: User,
    conversation: Conversation,
    receive: Receive,
) -> None:
    """The message, its status ticks, the assignment, the reply and the note
    reach the team; the other team's agent and supervisor get nothing, even
    when they ask to watch it."""

    async def scenario() -> None:
        async with (
            console(agent) as mine,
            console(outsider) as other_agent,
            console(finance_supervisor) as other_supervisor,
        ):
            await mine.send_json_to({"type": "watch", "conversation": conversation.pk})
            assert await next_event(mine) == {"type": "watching", "conversation": conversation.pk}
            for other in (other_agent, other_supervisor):
                await other.send_json_to({"type": "watch", "conversation": conversation.pk})
                assert (await next_event(other))["code"] == "not_found"

            await db(receive)("Ainda sem sinal")
            await db(conversation_assign)(conversation=conversation, agent=agent, actor=agent)
            sent = await db(message_send)(conversation=conversation, actor=agent, text="Olá!")
            await db(message_apply_status)(message=sent.message, status="sent")
            await db(message_apply_status)(message=sent.message, status="delivered")
            await db(note_create)(conversation=conversation, author=agent, text="Cliente VIP")

            seen = [(e["type"], e.get("status") or e.get("state")) for e in await events(mine, 8)]
            assert seen == [
                ("message.update", "received"),
                ("conversation.update", "queued"),
                ("conversation.update", "open"),
                ("message.update", "pending"),
                ("conversation.update", "open"),
                ("message.update", "sent"),
                ("message.update", "delivered"),
                ("note.created", None),
            ]
            assert await mine.receive_nothing(timeout=QUIET)
            assert await other_agent.receive_nothing(timeout=QUIET)
            assert await other_supervisor.receive_nothing(timeout=QUIET)

    run(scenario)


def test_the_assignee_receives_a_conversation_outside_their_teams(
    admin: User,
    finance_supervisor: User,
    outsider: User,
    conversation: Conversation,
    receive: Receive,
) -> None:
    async def scenario() -> None:
        async with console(finance_supervisor) as assignee, console(outsider) as teammate:
            await db(conversation_assign)(
                conversation=conversation, agent=finance_supervisor, actor=admin
            )
            assigned = await next_event(assignee)
            assert (assigned["type"], assigned["assignee_id"]) == (
                "conversation.update",
                finance_supervisor.pk,
            )
            await db(receive)("Alguém aí?")
            message, _row = await events(assignee, 2)
            assert (message["type"], message["text"]) == ("message.update", "Alguém aí?")
            assert await teammate.receive_nothing(timeout=QUIET)

    run(scenario)


def test_an_admin_receives_everything(
    admin: User, conversation: Conversation, receive: Receive
) -> None:
    async def scenario() -> None:
        async with console(admin) as everything:
            await db(receive)("Boleto vencido", wa_id="5511966665555")
            assert [e["type"] for e in await events(everything, 2)] == [
                "message.update",
                "conversation.update",
            ]
            await everything.send_json_to({"type": "watch", "conversation": conversation.pk})
            assert (await next_event(everything))["type"] == "watching"
            await db(note_create)(conversation=conversation, author=admin, text="Ver contrato")
            assert (await next_event(everything))["type"] == "note.created"

    run(scenario)


def test_an_event_reaching_a_socket_through_two_groups_is_forwarded_once(
    agent: User, conversation: Conversation, receive: Receive
) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            await db(conversation_assign)(conversation=conversation, agent=agent, actor=agent)
            # Through the team group and the agent's own group: once.
            assert (await next_event(mine))["type"] == "conversation.update"
            assert await mine.receive_nothing(timeout=QUIET)

            await db(receive)("Oi de novo")
            assert [e["type"] for e in await events(mine, 2)] == [
                "message.update",
                "conversation.update",
            ]
            assert await mine.receive_nothing(timeout=QUIET)

            layer = get_channel_layer()
            payload = {
                "type": "conversation.update",
                "event": uuid.uuid4().hex,
                "id": conversation.pk,
                "team_id": conversation.team_id,
                "assignee_id": agent.pk,
            }
            await layer.group_send(user_group(agent.pk), payload)
            await layer.group_send(user_group(agent.pk), payload)
            assert (await next_event(mine))["event"] == payload["event"]
            assert await mine.receive_nothing(timeout=QUIET)

    run(scenario)


# --- watching a thread -------------------------------------------------------------------


def test_watching_a_conversation_one_may_not_see_is_not_found(
    outsider: User, agent: User, conversation: Conversation, receive: Receive
) -> None:
    async def scenario() -> None:
        async with console(outsider) as theirs:
            await theirs.send_json_to({"type": "watch", "conversation": conversation.pk})
            hidden = await next_event(theirs)
            await theirs.send_json_to({"type": "watch", "conversation": conversation.pk + 1000})
            missing = await next_event(theirs)
            # Someone else's conversation and no conversation look the same.
            assert hidden == missing
            assert hidden == {
                "type": "error",
                "code": "not_found",
                "message": "No such conversation.",
            }

            await db(receive)("Sem sinal")
            await db(note_create)(conversation=conversation, author=agent, text="Só do suporte")
            assert await theirs.receive_nothing(timeout=QUIET)

    run(scenario)


def test_notes_reach_only_the_sockets_watching_the_thread(
    agent: User, teammate: User, conversation: Conversation
) -> None:
    async def scenario() -> None:
        async with console(agent) as watching, console(teammate) as inbox_only:
            await watching.send_json_to({"type": "watch", "conversation": conversation.pk})
            assert await next_event(watching) == {
                "type": "watching",
                "conversation": conversation.pk,
            }
            note = await db(note_create)(conversation=conversation, author=teammate, text="VIP")
            event = await next_event(watching)
            assert (event["type"], event["id"], event["conversation_id"], event["author_id"]) == (
                "note.created",
                note.pk,
                conversation.pk,
                teammate.pk,
            )
            assert await inbox_only.receive_nothing(timeout=QUIET)

            await watching.send_json_to({"type": "unwatch", "conversation": conversation.pk})
            await watching.send_json_to({"type": "ping"})
            assert await next_event(watching) == {"type": "pong"}
            await db(note_create)(conversation=conversation, author=teammate, text="Outra")
            assert await watching.receive_nothing(timeout=QUIET)

    run(scenario)


def test_a_socket_watches_a_bounded_number_of_threads(
    agent: User, receive: Receive, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(ConsoleConsumer, "max_watches", 2)
    ids = [receive(wa_id=f"55119000000{n}").conversation_id for n in range(3)]

    async def scenario() -> None:
        async with console(agent) as mine:
            for conversation_id in ids[:2]:
                await mine.send_json_to({"type": "watch", "conversation": conversation_id})
                assert (await next_event(mine))["type"] == "watching"
            await mine.send_json_to({"type": "watch", "conversation": ids[2]})
            assert (await next_event(mine))["code"] == "too_many_watches"
            # Watching one already watched again is fine, and so is making room.
            await mine.send_json_to({"type": "watch", "conversation": ids[0]})
            assert (await next_event(mine))["type"] == "watching"
            await mine.send_json_to({"type": "unwatch", "conversation": ids[0]})
            await mine.send_json_to({"type": "watch", "conversation": ids[2]})
            assert await next_event(mine) == {"type": "watching", "conversation": ids[2]}

    run(scenario)


# --- losing sight of a conversation -----------------------------------------------------


def test_a_transfer_removes_the_conversation_from_the_old_team(
    agent: User, outsider: User, finance: Team, conversation: Conversation, receive: Receive
) -> None:
    async def scenario() -> None:
        async with console(agent) as old_team, console(outsider) as new_team:
            await old_team.send_json_to({"type": "watch", "conversation": conversation.pk})
            assert (await next_event(old_team))["type"] == "watching"

            await db(conversation_transfer)(conversation=conversation, actor=agent, team=finance)

            removed = await next_event(old_team)
            assert (removed["type"], removed["id"]) == ("conversation.removed", conversation.pk)
            assert set(removed) == {"type", "id", "event"}
            arrived = await next_event(new_team)
            assert (arrived["type"], arrived["id"], arrived["team_id"]) == (
                "conversation.update",
                conversation.pk,
                finance.pk,
            )

            await db(receive)("Obrigada")
            await db(note_create)(conversation=conversation, author=outsider, text="Pago")
            assert [e["type"] for e in await events(new_team, 2)] == [
                "message.update",
                "conversation.update",
            ]
            assert await old_team.receive_nothing(timeout=QUIET)

    run(scenario)


def test_a_page_rendered_before_the_transfer_is_told_too(
    agent: User, outsider: User, conversation: Conversation
) -> None:
    """The inbox row came from the server, not from the socket: the old team
    still learns the conversation left, once."""

    async def scenario() -> None:
        async with console(agent) as old_team:
            await db(conversation_transfer)(conversation=conversation, actor=agent, agent=outsider)
            assert await next_event(old_team) == {
                "type": "conversation.removed",
                "id": conversation.pk,
                "event": EVENT_ID,
            }
            assert await old_team.receive_nothing(timeout=QUIET)

    run(scenario)


def test_a_user_removed_from_the_team_stops_receiving(
    agent: User, support: Team, conversation: Conversation, receive: Receive, fast_recheck: None
) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            await db(receive)("Primeira")
            assert [e["type"] for e in await events(mine, 2)] == [
                "message.update",
                "conversation.update",
            ]
            await db(team_remove_member)(team=support, user=agent)

            await db(receive)("Segunda")
            # The next event finds the team gone: the page drops the row, once.
            assert await next_event(mine) == {
                "type": "conversation.removed",
                "id": conversation.pk,
                "event": EVENT_ID,
            }
            await db(receive)("Terceira")
            assert await mine.receive_nothing(timeout=QUIET)

    run(scenario)


def test_a_team_change_counts_once_the_recheck_window_passed(
    agent: User,
    support: Team,
    conversation: Conversation,
    receive: Receive,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(ConsoleConsumer, "recheck_seconds", 0.5)

    async def scenario() -> None:
        async with console(agent) as mine:
            await db(team_remove_member)(team=support, user=agent)
            await asyncio.sleep(0.6)
            await db(receive)("Depois da janela")
            # This socket never sent anything of the conversation: nothing to remove.
            assert await mine.receive_nothing(timeout=QUIET)
            await mine.send_json_to({"type": "watch", "conversation": conversation.pk})
            assert (await next_event(mine))["code"] == "not_found"

    run(scenario)


def test_a_team_joined_later_is_followed_after_the_recheck(
    agent: User, finance: Team, receive: Receive, fast_recheck: None
) -> None:
    other_inbox = Inbox.objects.create(
        name="WhatsApp Financeiro", address="+5511400054321", default_team=finance
    )

    async def scenario() -> None:
        async with console(agent) as mine:
            await db(team_add_member)(team=finance, user=agent)
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}
            message = await db(receive)("Segunda via", wa_id="5511955554444", inbox=other_inbox)
            update = await next_event(mine)
            assert (update["type"], update["id"], update["team_id"]) == (
                "message.update",
                message.pk,
                finance.pk,
            )

    run(scenario)


def test_a_deactivated_user_is_closed_with_4401(
    admin: User, agent: User, conversation: Conversation, fast_recheck: None
) -> None:
    conversation_assign(conversation=conversation, agent=agent, actor=agent)

    async def scenario() -> None:
        async with console(agent) as mine:
            # Their conversations go back to the queue: an event for this socket.
            await db(user_deactivate)(user=agent, actor=admin)
            assert await closed_with(mine) == 4401

    run(scenario)


def test_a_session_ended_elsewhere_closes_the_socket_at_the_next_ping(
    agent: User, fast_recheck: None
) -> None:
    client = Client()
    client.force_login(agent)
    cookie = client.cookies[settings.SESSION_COOKIE_NAME].value

    async def scenario() -> None:
        async with console(agent, cookie=cookie) as mine:
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}
            await db(client.logout)()
            await mine.send_json_to({"type": "ping"})
            assert await closed_with(mine) == 4401

    run(scenario)


# --- what the browser may send ------------------------------------------------------------


def test_ping_is_answered_with_pong(agent: User) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}

    run(scenario)


MALFORMED = {
    "not json": "not json",
    "not an object": "[1, 2]",
    "a string": '"ping"',
    "no type": "{}",
    "unknown type": '{"type": "subscribe", "group": "supervisors"}',
    "watch without id": '{"type": "watch"}',
    "id as text": '{"type": "watch", "conversation": "1"}',
    "id as bool": '{"type": "watch", "conversation": true}',
    "negative id": '{"type": "watch", "conversation": -3}',
    "fractional id": '{"type": "unwatch", "conversation": 1.5}',
    "too big": '{"type": "ping", "pad": "' + "x" * 5000 + '"}',
}


def test_a_malformed_frame_gets_an_error_and_the_socket_stays_open(agent: User) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            for case, frame in MALFORMED.items():
                await mine.send_to(text_data=frame)
                error = await next_event(mine)
                assert (error["type"], error["code"]) == ("error", "bad_request"), case
                assert isinstance(error["message"], str) and error["message"], case
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}

    run(scenario)


def test_a_binary_frame_gets_an_error(agent: User) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            await mine.send_to(bytes_data=b"\x00\x01")
            assert (await next_event(mine))["code"] == "bad_request"
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}

    run(scenario)


def test_an_unknown_event_type_is_dropped_and_the_socket_lives_on(agent: User) -> None:
    async def scenario() -> None:
        async with console(agent) as mine:
            layer = get_channel_layer()
            for event in (
                {"type": "conversation.typing", "id": 1},
                # Never a way into the consumer's own methods.
                {"type": "send", "text_data": "raw"},
                {"type": "close", "code": 1000},
            ):
                await layer.group_send(user_group(agent.pk), event)
            await mine.send_json_to({"type": "ping"})
            assert await next_event(mine) == {"type": "pong"}
            assert await mine.receive_nothing(timeout=QUIET)

    run(scenario)


@pytest.mark.redis
def test_an_idle_socket_on_redis_stays_open(agent: User) -> None:
    """channels-redis waits for events with a 5 s blocking pop: a Redis read
    timeout shorter than that (redis-py 8's default is 5 s) closed every
    console that had nothing to show for a few seconds."""

    async def scenario() -> None:
        async with console(agent) as socket:
            assert await socket.receive_nothing(timeout=7.5)
            await socket.send_json_to({"type": "ping"})
            assert await next_event(socket) == {"type": "pong"}

    run(scenario)

"""The agent console's live socket (``/ws/console/``), one per browser tab.

It joins the groups its user may see (their own, their teams' inboxes, every
event for admins, and the threads the page watches) and forwards what the
services publish there. Group membership is only a first filter: every event
is checked again against the user's visibility as it is now, because a team
change, a transfer or a deactivation must stop the flow at once, not when the
tab reloads.

Close code 4401 means "no valid session": the page reloads and lands on login.
"""

from __future__ import annotations

import json
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from importlib import import_module
from types import SimpleNamespace
from typing import Any

import structlog
from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib import auth
from django.utils import translation
from django.utils.crypto import constant_time_compare
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from accounts.models import User
from conversations.events import SUPERVISORS_GROUP, conversation_group, team_group, user_group
from conversations.selectors import conversations_visible_to

logger = structlog.get_logger(__name__)

CLOSE_NO_SESSION = 4401


@dataclass(frozen=True)
class Viewer:
    """The socket's user as last read from the database."""

    user: User
    team_ids: frozenset[int]

    def may_see(self, *, team_id: object, assignee_id: object) -> bool:
        """``conversations_visible_to`` for one conversation, without a query."""
        if self.user.is_admin:
            return True
        if isinstance(team_id, int) and team_id in self.team_ids:
            return True
        return isinstance(assignee_id, int) and assignee_id == self.user.pk

    def groups(self) -> set[str]:
        groups = {user_group(self.user.pk), *(team_group(t) for t in self.team_ids)}
        if self.user.is_admin:
            groups.add(SUPERVISORS_GROUP)
        return groups


def load_viewer(*, session_key: str | None, user_id: int) -> Viewer | None:
    """The user behind this session now; None once the session is gone (logout,
    expiry, password change) or the user was deactivated.

    Read-only, unlike ``django.contrib.auth.get_user``, which may flush or
    cycle the session: that is the browser's business, not the socket's.
    """
    if not session_key:
        return None
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if str(session.get(auth.SESSION_KEY)) != str(user_id):
        return None
    backend_path = session.get(auth.BACKEND_SESSION_KEY)
    if backend_path not in settings.AUTHENTICATION_BACKENDS:
        return None
    user = auth.load_backend(backend_path).get_user(user_id)
    if user is None or not user.is_active:
        return None
    session_hash = session.get(auth.HASH_SESSION_KEY)
    if not session_hash or not any(
        constant_time_compare(session_hash, known)
        for known in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash())
    ):
        return None
    return Viewer(user=user, team_ids=frozenset(user.teams.values_list("id", flat=True)))


def handshake_language(scope: dict[str, Any]) -> str:
    """The page's language (the switch's cookie, else Accept-Language), as
    LocaleMiddleware picks it for the page that opened the socket."""
    headers = {key.lower(): value for key, value in scope.get("headers", [])}
    request = SimpleNamespace(
        COOKIES=scope.get("cookies", {}),
        META={"HTTP_ACCEPT_LANGUAGE": headers.get(b"accept-language", b"").decode("latin-1")},
    )
    return translation.get_language_from_request(request)  # type: ignore[arg-type]


def conversation_visible(*, user: User, conversation_id: int) -> bool:
    return conversations_visible_to(user).filter(pk=conversation_id).exists()


class ConsoleConsumer(AsyncJsonWebsocketConsumer):
    # How stale the user's teams, role and session may be when an event is
    # checked: a user removed from a team stops receiving within this window.
    recheck_seconds: float = 5.0
    # channels-redis forgets a group membership after a day (group_expiry);
    # a console tab stays open longer than that.
    renew_groups_seconds: float = 3600.0
    max_watches: int = 20
    remembered_events: int = 500
    remembered_conversations: int = 2000
    max_frame_chars: int = 4096
    handled_types = frozenset(
        {
            "websocket.connect",
            "websocket.receive",
            "websocket.disconnect",
            "conversation.update",
            "message.update",
            "note.created",
        }
    )

    async def connect(self) -> None:
        self._joined: set[str] = set()
        self._watching: set[int] = set()
        self._seen_events: OrderedDict[str, None] = OrderedDict()
        self._told: OrderedDict[int, None] = OrderedDict()
        self._viewer: Viewer | None = None
        self._checked_at = 0.0
        self._renewed_at = 0.0
        self._closed = False
        self._language = handshake_language(self.scope)
        user = self.scope.get("user")
        session = self.scope.get("session")
        if user is None or not user.is_authenticated or not user.is_active or session is None:
            await self._close_no_session(accepted=False)
            return
        self._user_id: int = user.pk
        self._session_key: str | None = session.session_key
        if await self._current_viewer() is None:
            await self._close_no_session(accepted=False)
            return
        await self.accept()
        await self.send_json({"type": "hello", "user": self._user_id})

    async def disconnect(self, code: int) -> None:
        for group in list(getattr(self, "_joined", ())):
            await self.channel_layer.group_discard(group, self.channel_name)
        self._joined = set()

    async def dispatch(self, message: dict[str, Any]) -> None:
        # An event type this consumer does not know is dropped, not forwarded
        # unchecked, and must not crash every console socket that receives it
        # (nor reach a method such as ``send`` or ``close`` by its name).
        if message.get("type") not in self.handled_types:
            logger.warning("console_event_unknown", type=str(message.get("type")))
            return
        await super().dispatch(message)

    # --- from the browser -----------------------------------------------------

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        if self._closed:
            return
        if text_data is None or len(text_data) > self.max_frame_chars:
            await self._error("bad_request", _("Send one JSON object per text frame."))
            return
        try:
            content = json.loads(text_data)
        except ValueError:
            await self._error("bad_request", _("The frame is not valid JSON."))
            return
        await self.receive_json(content)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping":
            # The page pings every 25 s: the session and team checks run even
            # on a quiet socket.
            if await self._current_viewer() is None:
                await self._close_no_session()
                return
            await self.send_json({"type": "pong"})
        elif kind in ("watch", "unwatch"):
            conversation_id = content.get("conversation")
            if type(conversation_id) is not int or conversation_id <= 0:
                await self._error("bad_request", _("'conversation' must be a conversation id."))
            elif kind == "watch":
                await self._watch(conversation_id)
            else:
                await self._unwatch(conversation_id)
        else:
            await self._error("bad_request", _("Unknown message type."))

    async def _watch(self, conversation_id: int) -> None:
        viewer = await self._current_viewer()
        if viewer is None:
            await self._close_no_session()
            return
        if conversation_id not in self._watching and len(self._watching) >= self.max_watches:
            await self._error(
                "too_many_watches",
                _("A tab may watch at most %(count)d conversations."),
                count=self.max_watches,
            )
            return
        visible = await database_sync_to_async(conversation_visible)(
            user=viewer.user, conversation_id=conversation_id
        )
        if not visible:
            # The same answer for "does not exist" and "not yours": existence is not revealed.
            await self._unwatch(conversation_id)
            await self._error("not_found", _("No such conversation."))
            return
        await self._join(conversation_group(conversation_id))
        self._watching.add(conversation_id)
        self._remember(conversation_id)
        await self.send_json({"type": "watching", "conversation": conversation_id})

    async def _unwatch(self, conversation_id: int) -> None:
        if conversation_id in self._watching:
            self._watching.discard(conversation_id)
            await self._leave(conversation_group(conversation_id))

    # --- from the services, through the channel layer ---------------------------

    async def conversation_update(self, event: dict[str, Any]) -> None:
        await self._forward(event, event.get("id"))

    async def message_update(self, event: dict[str, Any]) -> None:
        await self._forward(event, event.get("conversation_id"))

    async def note_created(self, event: dict[str, Any]) -> None:
        await self._forward(event, event.get("conversation_id"), watched_only=True)

    async def _forward(
        self, event: dict[str, Any], conversation_id: object, *, watched_only: bool = False
    ) -> None:
        if self._closed or type(conversation_id) is not int:
            return
        if self._already_seen(event.get("event")):
            return
        viewer = await self._current_viewer()
        if viewer is None:
            await self._close_no_session()
            return
        if not viewer.may_see(team_id=event.get("team_id"), assignee_id=event.get("assignee_id")):
            was_visible = viewer.may_see(
                team_id=event.get("previous_team_id"),
                assignee_id=event.get("previous_assignee_id"),
            )
            await self._lost(conversation_id, tell=was_visible)
            return
        if watched_only and conversation_id not in self._watching:
            return
        if not watched_only:
            self._remember(conversation_id)
        outgoing = {k: v for k, v in event.items() if not k.startswith("previous_")}
        await self.send_json(outgoing)

    async def _lost(self, conversation_id: int, *, tell: bool) -> None:
        """This user may no longer see the conversation: tell the page once, if
        it had heard of it, and stop watching it."""
        await self._unwatch(conversation_id)
        told = conversation_id in self._told
        self._told.pop(conversation_id, None)
        if told or tell:
            await self.send_json(
                {"type": "conversation.removed", "id": conversation_id, "event": uuid.uuid4().hex}
            )

    def _already_seen(self, event_id: object) -> bool:
        """The same publish reaches a socket once per group it is in (team and
        own user group, say); the page must see it once."""
        if not isinstance(event_id, str):
            return False
        if event_id in self._seen_events:
            return True
        self._seen_events[event_id] = None
        while len(self._seen_events) > self.remembered_events:
            self._seen_events.popitem(last=False)
        return False

    def _remember(self, conversation_id: int) -> None:
        self._told[conversation_id] = None
        self._told.move_to_end(conversation_id)
        while len(self._told) > self.remembered_conversations:
            self._told.popitem(last=False)

    # --- who the user is now ------------------------------------------------------

    async def _current_viewer(self) -> Viewer | None:
        """The user's teams and role, read again at most every ``recheck_seconds``;
        the groups follow them (a new team is joined, a lost one left)."""
        now = time.monotonic()
        if self._viewer is not None and now - self._checked_at < self.recheck_seconds:
            return self._viewer
        viewer = await database_sync_to_async(load_viewer)(
            session_key=self._session_key, user_id=self._user_id
        )
        self._viewer, self._checked_at = viewer, now
        if viewer is None:
            return None
        wanted = viewer.groups() | {conversation_group(c) for c in self._watching}
        for group in sorted(self._joined - wanted):
            await self._leave(group)
        renew = now - self._renewed_at >= self.renew_groups_seconds
        if renew:
            self._renewed_at = now
        for group in sorted(wanted if renew else wanted - self._joined):
            await self._join(group)
        return viewer

    async def _join(self, group: str) -> None:
        await self.channel_layer.group_add(group, self.channel_name)
        self._joined.add(group)

    async def _leave(self, group: str) -> None:
        await self.channel_layer.group_discard(group, self.channel_name)
        self._joined.discard(group)

    async def _close_no_session(self, *, accepted: bool = True) -> None:
        if self._closed:
            return
        self._closed = True
        if not accepted:
            # Accept first: a handshake refused with 403 reaches the page as a
            # bare 1006, and it could not tell "logged out" from "server down".
            await self.accept()
        await self.disconnect(CLOSE_NO_SESSION)
        await self.close(code=CLOSE_NO_SESSION)

    async def _error(self, code: str, message: Promise, **params: object) -> None:
        # In the language of the page that opened the socket.
        with translation.override(self._language):
            text = str(message) % params if params else str(message)
        await self.send_json({"type": "error", "code": code, "message": text})

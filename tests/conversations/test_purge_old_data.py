"""manage.py purge_old_data: what the retention policy no longer allows us to
keep goes (messages, media files, notes), in batches, while the conversation
rows stay for reports."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from accounts.models import User
from conversations.models import Conversation, Message, Note
from conversations.services import (
    conversation_resolve,
    message_send,
    message_set_media,
    messages_purge,
    note_create,
)

Receive = Callable[..., Message]
State = Conversation.State
FILE_SIZE = 2048


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"
    settings.LANGUAGE_CODE = "en"
    # 0 = not set: each test says what it purges.
    settings.MESSAGE_RETENTION_DAYS = 0
    settings.MEDIA_RETENTION_DAYS = 0


def stored(name: str) -> str:
    return default_storage.save(f"whatsapp/2024/01/{name}.jpg", ContentFile(b"x" * FILE_SIZE))


class World:
    """Conversations of several ages, with messages, media files and notes."""

    def __init__(self, receive: Receive, agent: User) -> None:
        self.receive, self.agent = receive, agent
        self.counter = 0

    def conversation(
        self,
        *,
        resolved_days_ago: float | None,
        media: bool = True,
        message_days_ago: float | None = None,
    ) -> Conversation:
        """A conversation: the customer's photo (and caption) or text, the bot's
        reply quoting it, an agent's note; resolved ``resolved_days_ago``."""
        self.counter += 1
        wa_id = f"55119888{self.counter:05d}"
        if media:
            first = self.receive(
                "Foto do modem", wa_id=wa_id, kind="image", media_id=f"media-{self.counter}"
            )
            message_set_media(
                message=first, path=stored(f"photo{self.counter}"), mime_type="image/jpeg"
            )
        else:
            first = self.receive("Minha internet caiu", wa_id=wa_id)
        conversation = first.conversation
        message_send(conversation=conversation, text="Vamos verificar.", reply_to=first)
        note_create(conversation=conversation, author=self.agent, text="Cliente do bairro Centro")
        days = message_days_ago if message_days_ago is not None else resolved_days_ago or 0
        Message.objects.filter(conversation=conversation).update(
            created_at=timezone.now() - timedelta(days=days)
        )
        if resolved_days_ago is not None:
            conversation_resolve(conversation=conversation, actor=self.agent)
            Conversation.objects.filter(pk=conversation.pk).update(
                resolved_at=timezone.now() - timedelta(days=resolved_days_ago), csat_score=5
            )
        return conversation


@pytest.fixture
def world(receive: Receive, agent: User) -> World:
    return World(receive, agent)


@pytest.fixture
def old(world: World) -> list[Conversation]:
    """Five conversations resolved 400 days ago: 10 messages, 5 photos, 5 notes."""
    return [world.conversation(resolved_days_ago=400 + n) for n in range(5)]


def purge(*args: str) -> str:
    out = StringIO()
    call_command("purge_old_data", *args, stdout=out)
    return out.getvalue()


def media_files(settings: Any) -> list[str]:
    root = Path(settings.MEDIA_ROOT)
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def test_a_dry_run_reports_what_would_go_and_deletes_nothing(
    old: list[Conversation], world: World, settings: Any
) -> None:
    recent = world.conversation(resolved_days_ago=10)
    files = media_files(settings)

    output = purge("--older-than", "365d")

    cutoff = timezone.now() - timedelta(days=365)
    assert output == (
        f"Conversations resolved more than 365d ago (before {cutoff:%Y-%m-%d %H:%M}): 5 with "
        "data to delete — 10 messages, 5 notes, 5 media files (10.0 KB).\n"
        "Dry run: nothing deleted. Add --commit to delete.\n"
    )
    assert Message.objects.count() == 12
    assert Note.objects.count() == 6
    assert media_files(settings) == files and len(files) == 6
    assert recent.messages.count() == 2


def test_commit_purges_in_batches_and_keeps_the_conversations(
    old: list[Conversation], world: World, settings: Any
) -> None:
    recent = world.conversation(resolved_days_ago=10)
    active = world.conversation(resolved_days_ago=None, message_days_ago=500)
    kept_file = Message.objects.get(conversation=recent, direction="in").media_file

    output = purge("--older-than", "365d", "--batch-size", "2", "--commit")

    lines = output.splitlines()
    assert lines[1:] == [
        "purged 2/10 messages…",
        "purged 4/10 messages…",
        "purged 6/10 messages…",
        "purged 8/10 messages…",
        "purged 10/10 messages…",
        "purged 2/5 notes…",
        "purged 4/5 notes…",
        "purged 5/5 notes…",
        "Purged 10 messages and 5 notes; deleted 5 media files, 10.0 KB freed.",
    ]
    for conversation in old:
        kept = Conversation.objects.get(pk=conversation.pk)
        assert kept.protocol == conversation.protocol
        assert (kept.state, kept.csat_score) == (State.RESOLVED, 5)
        assert kept.created_at == conversation.created_at
        assert not kept.messages.exists()
        assert not kept.notes.exists()
    # Newer and unresolved conversations keep everything, however old their messages.
    assert recent.messages.count() == 2 and recent.notes.count() == 1
    assert active.messages.count() == 2 and active.notes.count() == 1
    assert media_files(settings) == sorted(
        [kept_file, Message.objects.get(conversation=active, direction="in").media_file]
    )


def test_a_second_run_has_nothing_left_to_do(old: list[Conversation]) -> None:
    purge("--older-than", "365d", "--commit")

    again = purge("--older-than", "365d", "--commit")

    assert again.splitlines()[0].endswith(
        "0 with data to delete — 0 messages, 0 notes, 0 media files (0 bytes)."
    )
    assert again.splitlines()[1:] == [
        "Purged 0 messages and 0 notes; deleted 0 media files, 0 bytes freed."
    ]


def test_media_only_purge_keeps_the_text(
    old: list[Conversation], world: World, settings: Any
) -> None:
    # Resolved 100 days ago: within the 365-day retention, beyond the 90-day media one.
    middle = world.conversation(resolved_days_ago=100)
    fresh = world.conversation(resolved_days_ago=10)
    photo = Message.objects.get(conversation=middle, direction="in")

    plan = purge("--older-than", "365d", "--media-older-than", "90d")

    assert plan.splitlines()[1].endswith(
        "in other conversations: 1 messages keep their text, 1 files (2.0 KB) go."
    )
    assert default_storage.exists(photo.media_file)

    output = purge("--older-than", "365d", "--media-older-than", "90d", "--commit")

    assert output.splitlines()[-2:] == [
        "purged 1/1 media files…",
        "Purged 10 messages and 5 notes; deleted 6 media files, 12.0 KB freed "
        "(1 older messages kept their text).",
    ]
    assert not default_storage.exists(photo.media_file)
    photo.refresh_from_db()
    assert (photo.text, photo.kind, photo.media_file, photo.media_id) == (
        "Foto do modem",
        "image",
        "",
        "",
    )
    assert photo.payload["media_error"] == "The file was deleted under the data retention policy."
    assert middle.messages.count() == 2 and middle.notes.count() == 1
    fresh_photo = Message.objects.get(conversation=fresh, direction="in")
    assert default_storage.exists(fresh_photo.media_file)


def test_a_file_already_gone_is_counted_not_fatal(old: list[Conversation]) -> None:
    photo = Message.objects.filter(conversation=old[0], direction="in").get()
    default_storage.delete(photo.media_file)

    plan = purge("--older-than", "365d")
    output = purge("--older-than", "365d", "--commit")

    assert "4 media files (8.0 KB)" in plan
    assert "1 media files named in the database are already gone." in plan
    assert output.splitlines()[-1] == (
        "Purged 10 messages and 5 notes; deleted 4 media files, 8.0 KB freed."
    )
    assert not Message.objects.filter(conversation__in=old).exists()


def test_a_conversation_reopened_mid_purge_keeps_its_messages(
    old: list[Conversation], agent: User
) -> None:
    batches = messages_purge(resolved_before=timezone.now() - timedelta(days=365), batch_size=2)
    first = next(batches)
    assert first.messages == 2
    # An agent reopens the last conversation while the purge is running.
    Conversation.objects.filter(pk=old[-1].pk).update(state=State.OPEN, resolved_at=None)

    last = list(batches)[-1]

    assert last.messages == 8
    assert old[-1].messages.count() == 2
    assert not Message.objects.filter(conversation__in=old[:-1]).exists()


def test_the_retention_setting_is_the_default(old: list[Conversation], settings: Any) -> None:
    settings.MESSAGE_RETENTION_DAYS = 365

    assert purge().startswith("Conversations resolved more than 365d ago")

    settings.MESSAGE_RETENTION_DAYS = 500
    assert "0 with data to delete" in purge()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ("--older-than", "365x"),
            "Error: argument --older-than: invalid duration '365x': use a number and a unit",
        ),
        (("--older-than", "365"), "Error: argument --older-than: invalid duration '365'"),
        (
            ("--older-than", "365m"),
            "--older-than 6h5m is too short: at least 1d (did you mean days, e.g. 365d?).",
        ),
        (
            ("--older-than", "365d", "--media-older-than", "12h"),
            "--media-older-than 12h is too short: at least 1d",
        ),
        (("--older-than", "365d", "--batch-size", "0"), "--batch-size must be between 1 and"),
        ((), "Say how old: --older-than 365d (or set MESSAGE_RETENTION_DAYS)."),
    ],
)
def test_bad_input_is_refused_with_a_clear_message(
    old: list[Conversation], args: tuple[str, ...], message: str
) -> None:
    with pytest.raises(CommandError) as raised:
        purge(*args, "--commit")

    assert str(raised.value).startswith(message)
    assert Message.objects.count() == 10

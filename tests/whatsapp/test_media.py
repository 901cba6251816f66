from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from accounts.models import User
from conversations.models import Message
from conversations.services import message_receive
from tests.support import bearer
from tests.whatsapp.fake_graph import FakeGraph
from whatsapp.media import MEDIA_MAX_ATTEMPTS, download_media
from whatsapp.models import WhatsAppAccount

JPEG = b"\xff\xd8\xff\xe0" + b"JFIF-bytes" * 100
MEDIA_ID = "1037543291543636"


@pytest.fixture(autouse=True)
def _media_root(settings: Any, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = tmp_path / "media"


@pytest.fixture
def image_message(account: WhatsAppAccount) -> Message:
    return message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        profile_name="Maria Souza",
        kind=Message.Kind.IMAGE,
        external_id="wamid.IMAGE1",
        media_id=MEDIA_ID,
        media_mime_type="image/jpeg",
        payload={"image": {"id": MEDIA_ID, "mime_type": "image/jpeg"}},
    ).message


def _script_media(
    fake: FakeGraph,
    settings: Any,
    *,
    data: bytes = JPEG,
    mime_type: str = "image/jpeg",
    file_size: int | None = None,
) -> str:
    download = f"/whatsapp_business/attachments/?mid={MEDIA_ID}&ext=1&hash=ATu"
    fake.reply(
        "GET",
        f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}",
        {
            "messaging_product": "whatsapp",
            "url": f"{fake.url}{download}",
            "mime_type": mime_type,
            "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            "file_size": len(data) if file_size is None else file_size,
            "id": MEDIA_ID,
        },
    )
    fake.serve_bytes("/whatsapp_business/attachments/", data, content_type=mime_type)
    return download


def test_download_stores_the_file_under_an_unguessable_name(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    _script_media(fake_graph, settings)

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert re.fullmatch(r"whatsapp/\d{4}/\d{2}/[0-9a-f]{32}\.jpg", image_message.media_file)
    assert image_message.media_mime_type == "image/jpeg"
    assert "media_error" not in image_message.payload
    with default_storage.open(image_message.media_file) as stored:
        assert stored.read() == JPEG
    info, download = fake_graph.requests
    assert (info.method, info.path) == ("GET", f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}")
    assert info.headers["authorization"] == "Bearer EAAG-test-access-token"
    assert (download.method, download.path) == ("GET", "/whatsapp_business/attachments/")
    assert download.query["mid"] == [MEDIA_ID]
    assert download.headers["authorization"] == "Bearer EAAG-test-access-token"


def test_a_file_too_big_by_its_size_is_not_downloaded(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    settings.WHATSAPP_MEDIA_MAX_BYTES = 1024
    _script_media(fake_graph, settings, file_size=5 * 1024 * 1024)

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert image_message.payload["media_error"] == (
        "The file is too big (5.0 MB; the limit is 1024 bytes)."
    )
    assert [r.path for r in fake_graph.requests] == [f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}"]


def test_a_file_that_lied_about_its_size_is_cut_off(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    settings.WHATSAPP_MEDIA_MAX_BYTES = 1024
    _script_media(fake_graph, settings, data=b"x" * 4096, file_size=100)

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert image_message.payload["media_error"].startswith("The file is too big")
    assert len(fake_graph.requests) == 2
    assert not (Path(settings.MEDIA_ROOT) / "whatsapp").exists()


def test_a_disallowed_type_is_refused(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    _script_media(fake_graph, settings, data=b"<svg onload=alert(1)>", mime_type="image/svg+xml")

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert image_message.payload["media_error"] == "The file type image/svg+xml is not accepted."
    assert len(fake_graph.requests) == 1


def test_a_voice_note_with_codecs_is_accepted(
    account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any
) -> None:
    message = message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        kind=Message.Kind.AUDIO,
        external_id="wamid.AUDIO1",
        media_id=MEDIA_ID,
        media_mime_type="audio/ogg; codecs=opus",
    ).message
    _script_media(fake_graph, settings, data=b"OggS" * 10, mime_type="audio/ogg; codecs=opus")

    download_media.call(message.pk)

    message.refresh_from_db()
    assert message.media_file.endswith(".ogg")
    assert message.media_mime_type == "audio/ogg"


def test_a_graph_error_is_recorded(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET", f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}", code=100, message="(#100) bad id"
    )

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert image_message.payload["media_error"].startswith("The media could not be downloaded")


def test_a_passing_failure_is_retried_later_not_shown_as_an_error(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET", f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}", code=2, status=503, times=1
    )
    _script_media(fake_graph, settings)

    download_media.call(image_message.pk)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert "media_error" not in image_message.payload
    [retry] = DBTaskResult.objects.filter(status="READY")
    assert retry.task_path == "whatsapp.media.download_media"
    assert retry.args_kwargs["args"] == [image_message.pk]
    assert retry.args_kwargs["kwargs"]["attempt"] == 2
    assert retry.run_after > timezone.now()

    download_media.call(image_message.pk, attempt=2)

    image_message.refresh_from_db()
    assert image_message.media_file.startswith("whatsapp/")
    assert default_storage.open(image_message.media_file).read() == JPEG


def test_the_last_attempt_records_the_error(
    image_message: Message, fake_graph: FakeGraph, settings: Any
) -> None:
    fake_graph.fail(
        "GET", f"/{settings.WHATSAPP_API_VERSION}/{MEDIA_ID}", code=2, status=503, times=1
    )

    download_media.call(image_message.pk, attempt=MEDIA_MAX_ATTEMPTS)

    image_message.refresh_from_db()
    assert image_message.media_file == ""
    assert image_message.payload["media_error"].endswith(
        f"Gave up after {MEDIA_MAX_ATTEMPTS} attempts."
    )
    assert not DBTaskResult.objects.filter(status="READY").exists()


def test_outbound_and_text_messages_are_ignored(
    account: WhatsAppAccount, fake_graph: FakeGraph
) -> None:
    text = message_receive(
        inbox=account.inbox, wa_id="5511988887777", text="oi", external_id="wamid.T1"
    ).message

    download_media.call(text.pk)
    download_media.call(999999)

    assert fake_graph.requests == []


# --- The view -------------------------------------------------------------------------


def _url(message: Message) -> str:
    return f"/api/v1/whatsapp/media/{message.pk}"


@pytest.fixture
def downloaded(image_message: Message, fake_graph: FakeGraph, settings: Any) -> Message:
    _script_media(fake_graph, settings)
    download_media.call(image_message.pk)
    image_message.refresh_from_db()
    return image_message


def test_a_teammate_gets_the_image_inline(downloaded: Message, teammate: User) -> None:
    response = Client().get(_url(downloaded), headers=bearer(teammate))

    assert response.status_code == 200
    assert b"".join(response.streaming_content) == JPEG
    assert response["Content-Type"] == "image/jpeg"
    assert response["Content-Disposition"].startswith("inline;")
    assert response["X-Content-Type-Options"] == "nosniff"


def test_a_document_is_an_attachment(
    account: WhatsAppAccount, fake_graph: FakeGraph, settings: Any, agent: User
) -> None:
    message = message_receive(
        inbox=account.inbox,
        wa_id="5511988887777",
        kind=Message.Kind.DOCUMENT,
        external_id="wamid.DOC1",
        media_id=MEDIA_ID,
    ).message
    _script_media(fake_graph, settings, data=b"%PDF-1.4 ...", mime_type="application/pdf")
    download_media.call(message.pk)
    client = Client()
    client.force_login(agent)

    response = client.get(_url(message))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert response["Content-Disposition"].startswith("attachment;")


def test_an_outsider_gets_404(downloaded: Message, outsider: User) -> None:
    response = Client().get(_url(downloaded), headers=bearer(outsider))

    assert response.status_code == 404


def test_anonymous_gets_401(downloaded: Message) -> None:
    assert Client().get(_url(downloaded)).status_code == 401


def test_404_before_the_download(image_message: Message, agent: User) -> None:
    response = Client().get(_url(image_message), headers=bearer(agent))

    assert response.status_code == 404


def test_404_for_a_message_that_does_not_exist(agent: User) -> None:
    assert Client().get("/api/v1/whatsapp/media/987654", headers=bearer(agent)).status_code == 404

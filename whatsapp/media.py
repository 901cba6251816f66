"""Inbound media: downloaded by a task, stored under an unguessable name, and
served only to staff who may see the conversation.

Media is only ever fetched by its Graph media id: the download URL comes from
Meta's answer for that id, never from anything a client sent us.
"""

from __future__ import annotations

import contextlib
import tempfile
import uuid
from datetime import timedelta

import structlog
from django.conf import settings
from django.core.files.base import File
from django.core.files.storage import default_storage
from django.db import DatabaseError
from django.http import FileResponse, Http404
from django.utils import timezone
from django.utils.translation import gettext as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from conversations.models import Message
from conversations.selectors import conversation_get_for
from conversations.services import message_set_media, message_set_media_error
from ispsupport.tasks import Retry, background_task, enqueue
from whatsapp import transport
from whatsapp.models import WhatsAppAccount

logger = structlog.get_logger(__name__)

# Type -> file extension. Anything else is refused: we serve these files back
# to browsers, and an HTML or SVG "image" would run in our origin.
ALLOWED_TYPES: dict[str, str] = {
    "image/jpeg": ".jpg",
    "image/png": ".png",
    "image/webp": ".webp",
    "audio/ogg": ".ogg",
    "audio/mpeg": ".mp3",
    "audio/mp4": ".m4a",
    "audio/aac": ".aac",
    "audio/amr": ".amr",
    "video/mp4": ".mp4",
    "video/3gpp": ".3gp",
    "application/pdf": ".pdf",
    "application/msword": ".doc",
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": ".docx",
    "application/vnd.ms-excel": ".xls",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
    "application/vnd.ms-powerpoint": ".ppt",
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": ".pptx",
    "text/plain": ".txt",
}
INLINE_PREFIXES = ("image/", "audio/", "video/")
# A media id stays valid for weeks, so a download that failed for a passing
# reason (Meta's 5xx, a timeout, the breaker open) is tried again: 6 attempts
# spread over about two minutes with the send path's backoff.
MEDIA_MAX_ATTEMPTS = 6


def _base_type(mime_type: str) -> str:
    # WhatsApp voice notes come as "audio/ogg; codecs=opus".
    return mime_type.split(";", 1)[0].strip().lower()


def _size_text(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB" if size >= 1024 * 1024 else f"{size} bytes"


def media_path(mime_type: str) -> str:
    """An unguessable storage name: whatsapp/<yyyy>/<mm>/<uuid4 hex><ext>."""
    now = timezone.now()
    return f"whatsapp/{now:%Y}/{now:%m}/{uuid.uuid4().hex}{ALLOWED_TYPES[mime_type]}"


def media_refusal(*, mime_type: str, size: int | None) -> str | None:
    """Why this media may not be stored, or None."""
    if _base_type(mime_type) not in ALLOWED_TYPES:
        return _("The file type %(type)s is not accepted.") % {"type": mime_type or "?"}
    limit = settings.WHATSAPP_MEDIA_MAX_BYTES
    if size is not None and size > limit:
        return _("The file is too big (%(size)s; the limit is %(limit)s).") % {
            "size": _size_text(size),
            "limit": _size_text(limit),
        }
    return None


def media_fetch(*, message: Message, attempt: int = 1, max_attempts: int = 1) -> Message:
    """Download and store an inbound message's media; record why when it cannot.

    A failure that may pass (``retryable``) before ``max_attempts`` schedules
    another ``download_media`` run instead of recording an error.
    """
    account = WhatsAppAccount.objects.filter(inbox_id=message.conversation.inbox_id).first()
    if account is None or account.is_sandbox:
        return message_set_media_error(
            message=message, reason=_("No WhatsApp access token: the media cannot be downloaded.")
        )
    limit = settings.WHATSAPP_MEDIA_MAX_BYTES
    # Spooled: small files stay in memory, a 100 MB video goes to a temporary file.
    with tempfile.SpooledTemporaryFile(max_size=2 * 1024 * 1024) as sink:
        try:
            info = transport.media_info(account, message.media_id)
            mime_type = _base_type(info.mime_type or message.media_mime_type)
            refusal = media_refusal(mime_type=mime_type, size=info.file_size)
            if refusal:
                return message_set_media_error(message=message, reason=refusal)
            download = transport.download_media(account, info.url, max_bytes=limit, sink=sink)
        except transport.TransportError as exc:
            if exc.code == "media_too_large":
                # Meta's file_size said it fitted; the bytes said otherwise.
                reason = media_refusal(mime_type=mime_type, size=limit + 1) or str(exc)
                return message_set_media_error(message=message, reason=reason)
            if exc.retryable and attempt < max_attempts:
                _retry_later(message, attempt, exc)
                return message
            logger.warning(
                "whatsapp_media_download_failed",
                message_id=message.pk,
                attempt=attempt,
                error=str(exc),
            )
            reason = _("The media could not be downloaded: %(error)s") % {"error": exc.agent_title}
            if exc.retryable:
                reason += " " + _("Gave up after %(n)d attempts.") % {"n": attempt}
            return message_set_media_error(message=message, reason=reason)
        sink.seek(0)
        path = default_storage.save(media_path(mime_type), File(sink))
    try:
        stored = message_set_media(message=message, path=path, mime_type=mime_type)
    except DatabaseError:
        # No message points at the file: the retry downloads it again, so
        # this copy would only fill the disk. (A storage error here must not
        # hide the database error the retry is for.)
        with contextlib.suppress(OSError):
            default_storage.delete(path)
        raise
    logger.info("whatsapp_media_stored", message_id=message.pk, size=download.size, mime=mime_type)
    return stored


def _retry_later(message: Message, attempt: int, exc: transport.TransportError) -> None:
    from whatsapp.tasks import retry_delay

    delay = retry_delay(attempt)
    task = download_media
    if task.get_backend().supports_defer:
        task = download_media.using(run_after=timezone.now() + timedelta(seconds=delay))
    else:
        delay = 0.0
    enqueue(task, message.pk, attempt=attempt + 1)
    logger.warning(
        "whatsapp_media_retry_scheduled",
        message_id=message.pk,
        attempt=attempt,
        delay_seconds=round(delay, 2),
        code=exc.code,
    )


# ``attempt`` counts failed downloads; ``Retry`` runs the task again after a
# database error (the download is done again only if it was not stored).
@background_task(retry=Retry())
def download_media(message_id: int, attempt: int = 1) -> None:
    """Enqueued by the webhook after an inbound media message is committed."""
    message = (
        Message.objects.select_related("conversation")
        .filter(pk=message_id, direction=Message.Direction.IN)
        .exclude(media_id="")
        .first()
    )
    if message is None or message.media_file:
        return
    media_fetch(message=message, attempt=attempt, max_attempts=MEDIA_MAX_ATTEMPTS)


class MediaView(APIView):
    """GET /api/v1/whatsapp/media/<message_id>: the stored file, to staff who
    may see its conversation; 404 to anyone else and before it is downloaded."""

    @extend_schema(responses={(200, "application/octet-stream"): OpenApiTypes.BINARY})
    def get(self, request: Request, message_id: int) -> FileResponse:
        message = (
            Message.objects.filter(pk=message_id)
            .only("id", "conversation_id", "media_file", "media_mime_type")
            .first()
        )
        if message is None:
            raise Http404(_("No such media."))
        conversation_get_for(request.user, message.conversation_id)  # type: ignore[arg-type]
        if not message.media_file or not default_storage.exists(message.media_file):
            raise Http404(_("No such media."))
        mime_type = message.media_mime_type or "application/octet-stream"
        response = FileResponse(
            default_storage.open(message.media_file, "rb"),
            content_type=mime_type,
            as_attachment=not mime_type.startswith(INLINE_PREFIXES),
            filename=message.media_file.rsplit("/", 1)[-1],
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, max-age=3600"
        return response

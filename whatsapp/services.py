"""What the WhatsApp channel changes: inbound webhook ingest, statuses (also
the early ones), and the number configured from the environment.

The webhook view checks the signature and parses the envelope
(``whatsapp.payloads``); everything it stores goes through here, and through
the core's services in ``conversations.services``.
"""

from __future__ import annotations

import dataclasses
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import structlog
from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver
from django.utils import timezone

from conversations.models import Contact, Inbox, Message
from conversations.services import (
    contact_relink,
    message_apply_status,
    message_receive,
    message_set_reaction,
)
from ispsupport.cache import get_or_fetch, invalidate
from ispsupport.errors import ServiceError
from ispsupport.identity import canonical_phone
from ispsupport.tasks import enqueue
from whatsapp.models import EarlyStatus, WhatsAppAccount
from whatsapp.payloads import (
    STATUS_VALUES,
    Change,
    Envelope,
    IdentityChange,
    InboundMessage,
    InboundStatus,
)

logger = structlog.get_logger(__name__)

ACCOUNT_CACHE_TTL = 300
SECRETS_CACHE_KEY = "whatsapp:webhook-secrets"
EARLY_STATUS_MAX_AGE = timedelta(days=1)
# last_webhook_at is written at most this often: every POST updating the one
# account row would serialise concurrent deliveries on its row lock.
LAST_WEBHOOK_RESOLUTION = timedelta(seconds=10)
REACTOR = "contact"


def _account_key(phone_number_id: str) -> str:
    return f"whatsapp:account:{phone_number_id}"


# --- Accounts and their secrets ---------------------------------------------------


def account_for_phone_number_id(phone_number_id: str) -> WhatsAppAccount | None:
    """The active number Meta calls ``phone_number_id`` (with its inbox), cached."""

    def fetch() -> WhatsAppAccount | None:
        return (
            WhatsAppAccount.objects.select_related("inbox", "inbox__default_team")
            .filter(phone_number_id=phone_number_id, is_active=True)
            .first()
        )

    return get_or_fetch(_account_key(phone_number_id), fetch, ttl=ACCOUNT_CACHE_TTL)


def _encrypted_credentials() -> list[tuple[str, str]]:
    """(encrypted app secret, verify token) of every active number, cached: the
    secrets stay encrypted in the cache and are decrypted per request."""
    return get_or_fetch(
        SECRETS_CACHE_KEY,
        lambda: list(
            WhatsAppAccount.objects.filter(is_active=True).values_list(
                "app_secret_encrypted", "verify_token"
            )
        ),
        ttl=ACCOUNT_CACHE_TTL,
    )


def webhook_app_secrets() -> list[str]:
    """Every app secret a genuine delivery may be signed with. The payload says
    which number it is for only once parsed, and nothing is parsed unsigned."""
    from ispsupport.crypto import DecryptionError, decrypt

    secrets = []
    for encrypted, _token in _encrypted_credentials():
        if not encrypted:
            continue
        try:
            secrets.append(decrypt(encrypted))
        except DecryptionError:
            # A key left out of FERNET_KEYS must not take the other numbers down.
            logger.error("whatsapp_app_secret_undecryptable")
    if settings.WHATSAPP_APP_SECRET:
        secrets.append(settings.WHATSAPP_APP_SECRET)
    return [secret for secret in dict.fromkeys(secrets) if secret]


def signature_valid(*, body: bytes, header: str) -> bool:
    """``header`` is ``sha256=<hex HMAC-SHA256 of the raw body>`` under one of the
    app secrets; compared in constant time."""
    prefix = "sha256="
    if not header or not header.startswith(prefix):
        return False
    given = header[len(prefix) :].strip().lower()
    valid = False
    for secret in webhook_app_secrets():
        expected = hmac.new(secret.encode(), body, "sha256").hexdigest()
        # No early exit: every secret is compared, whichever one matches.
        valid |= hmac.compare_digest(expected, given)
    return valid


def verify_token_valid(token: str) -> bool:
    if not token:
        return False
    tokens = [t for _secret, t in _encrypted_credentials() if t]
    if settings.WHATSAPP_VERIFY_TOKEN:
        tokens.append(settings.WHATSAPP_VERIFY_TOKEN)
    valid = False
    for expected in tokens:
        valid |= hmac.compare_digest(expected.encode(), token.encode())
    return valid


def accounts_invalidate(*phone_number_ids: str) -> None:
    invalidate(SECRETS_CACHE_KEY, *(_account_key(p) for p in phone_number_ids if p))


@receiver(post_save, sender=WhatsAppAccount, dispatch_uid="whatsapp_account_saved")
@receiver(post_delete, sender=WhatsAppAccount, dispatch_uid="whatsapp_account_deleted")
def _account_changed(sender: type, instance: WhatsAppAccount, **_kwargs: Any) -> None:
    # Whoever saves a number (admin, a command, the bootstrap) drops its cached copy.
    accounts_invalidate(instance.phone_number_id)


@receiver(post_save, sender=Inbox, dispatch_uid="whatsapp_inbox_saved")
def _inbox_changed(sender: type, instance: Inbox, **_kwargs: Any) -> None:
    # The cached account carries its inbox (default team included).
    ids = WhatsAppAccount.objects.filter(inbox=instance).values_list("phone_number_id", flat=True)
    if ids:
        accounts_invalidate(*ids)


# --- Inbound ----------------------------------------------------------------------


@dataclass
class IngestResult:
    messages: int = 0
    duplicates: int = 0
    reactions: int = 0
    statuses: int = 0
    early_statuses: int = 0
    relinked: int = 0
    skipped: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


def webhook_ingest(*, envelope: Envelope, received_at: float | None = None) -> IngestResult:
    """Store everything in one POST in ONE transaction: it commits whole or not
    at all, and Meta redelivers what did not commit. A single message the core
    refuses (no identity at all) is skipped, not the whole delivery."""
    result = IngestResult()
    touched: set[int] = set()
    with transaction.atomic():
        for change in envelope.changes:
            result.skipped += change.skipped
            if change.field not in ("messages", "user_id_update"):
                logger.info("whatsapp_webhook_field_ignored", field=change.field)
                continue
            account = account_for_phone_number_id(change.phone_number_id or "")
            if account is None:
                logger.warning(
                    "whatsapp_webhook_unknown_number", phone_number_id=change.phone_number_id
                )
                result.skipped += len(change.messages) + len(change.statuses)
                continue
            touched.add(account.pk)
            _ingest_change(account, change, result, received_at)
    _touch_accounts(touched)
    logger.info("whatsapp_webhook_ingested", **result.as_dict())
    return result


def _touch_accounts(account_ids: set[int]) -> None:
    if not account_ids:
        return
    now = timezone.now()
    WhatsAppAccount.objects.filter(pk__in=account_ids).filter(
        Q(last_webhook_at__isnull=True) | Q(last_webhook_at__lt=now - LAST_WEBHOOK_RESOLUTION)
    ).update(last_webhook_at=now)


def _lock_order(message: InboundMessage) -> tuple[str, str]:
    return (message.sender.wa_id or "", message.sender.bsuid or "")


def _ingest_change(
    account: WhatsAppAccount, change: Change, result: IngestResult, received_at: float | None
) -> None:
    for identity in change.identity_changes:
        result.relinked += _relink(identity)
    # One envelope may carry several customers, and each message locks its
    # customer's conversation until the envelope commits: two envelopes with
    # the same customers in opposite orders would deadlock. Taking customers in
    # one order everywhere prevents it; the stable sort keeps each customer's
    # own messages in the order Meta sent them.
    for message in sorted(change.messages, key=_lock_order):
        try:
            with transaction.atomic():
                _ingest_message(account, message, result, received_at)
        except (ValidationError, ServiceError) as exc:
            logger.warning(
                "whatsapp_message_refused",
                external_id=message.external_id,
                type=message.type,
                error=str(exc),
            )
            result.skipped += 1
    for status in change.statuses:
        _ingest_status(status, result)


def _relink(identity: IdentityChange) -> int:
    contact = contact_relink(
        old_bsuid=identity.previous_bsuid,
        old_wa_id=identity.previous_wa_id,
        new_bsuid=identity.bsuid,
        new_wa_id=identity.wa_id,
    )
    if contact is None:
        logger.info("whatsapp_identity_change_unknown_contact")
        return 0
    return 1


def _ingest_message(
    account: WhatsAppAccount,
    message: InboundMessage,
    result: IngestResult,
    received_at: float | None = None,
) -> None:
    if message.reaction is not None or message.kind == Message.Kind.REACTION:
        result.reactions += _ingest_reaction(account, message)
        return
    sender = message.sender
    if message.identity_change is not None:
        # Move the identity first, so the notice lands in the same conversation.
        result.relinked += _relink(message.identity_change)
        change = message.identity_change
        sender = dataclasses.replace(
            sender, bsuid=change.bsuid or sender.bsuid, wa_id=change.wa_id or sender.wa_id
        )
        if not _known(bsuid=sender.bsuid, wa_id=sender.wa_id):
            # A notice about someone we never talked to opens nothing.
            return
    if not (sender.bsuid or sender.wa_id):
        logger.warning("whatsapp_message_without_sender", external_id=message.external_id)
        result.skipped += 1
        return
    received = message_receive(
        inbox=account.inbox,
        bsuid=sender.bsuid,
        wa_id=sender.wa_id,
        profile_name=sender.name,
        username=sender.username,
        kind=message.kind,
        text=message.text,
        payload=message.payload,
        external_id=message.external_id,
        media_id=message.media_id,
        media_mime_type=message.media_mime_type,
        reply_to_external_id=message.reply_to_external_id,
        sent_at=message.sent_at,
        received_at=received_at,
    )
    if not received.created:
        result.duplicates += 1
        return
    result.messages += 1
    if message.media_id:
        _enqueue_media_download(received.message.pk)


def _enqueue_media_download(message_id: int) -> None:
    from whatsapp.media import download_media

    enqueue(download_media, message_id)


def _known(*, bsuid: str | None, wa_id: str | None) -> bool:
    query = Q(pk__in=[])
    if bsuid:
        query |= Q(bsuid=bsuid)
    if wa_id:
        query |= Q(wa_id=wa_id) | Q(phone=canonical_phone(wa_id) or wa_id)
    return Contact.objects.filter(query).exists()


def _ingest_reaction(account: WhatsAppAccount, message: InboundMessage) -> int:
    """A reaction decorates the message it is about; it is not a new message."""
    reaction = message.reaction
    if reaction is None:
        return 0
    target = (
        Message.objects.select_related("conversation__contact")
        .filter(external_id=reaction.message_external_id, conversation__inbox=account.inbox)
        .first()
    )
    if target is None:
        logger.info("whatsapp_reaction_target_unknown", external_id=message.external_id)
        return 0
    contact = target.conversation.contact
    sender = message.sender
    same_person = (sender.bsuid and sender.bsuid == contact.bsuid) or (
        sender.wa_id
        and (sender.wa_id == contact.wa_id or canonical_phone(sender.wa_id) == contact.phone)
    )
    if not same_person:
        # Only the customer of that conversation may react to its messages.
        logger.warning("whatsapp_reaction_from_someone_else", external_id=message.external_id)
        return 0
    message_set_reaction(message=target, by=REACTOR, emoji=message.reaction.emoji)
    return 1


# --- Statuses -------------------------------------------------------------------


def _ingest_status(status: InboundStatus, result: IngestResult) -> None:
    if status.status not in STATUS_VALUES:
        logger.info("whatsapp_status_ignored", status=status.status)
        return
    exists = Message.objects.filter(
        external_id=status.external_id, direction=Message.Direction.OUT
    ).exists()
    if exists:
        message_apply_status(
            external_id=status.external_id,
            status=status.status,
            at=status.at,
            error_code=status.error_code,
            error_title=status.error_title,
            error_detail=status.error_detail,
        )
        result.statuses += 1
        return
    # The send call may not have returned yet: keep it until the id appears.
    EarlyStatus.objects.create(
        external_id=status.external_id[:128],
        status=status.status,
        at=status.at or timezone.now(),
        error_code=status.error_code[:32],
        error_title=status.error_title[:255],
        error_detail=status.error_detail,
    )
    result.early_statuses += 1
    # The send task may store the id between our look-up and our commit, and
    # then apply early statuses before ours is visible: look once more after it.
    external_id = status.external_id
    transaction.on_commit(lambda: early_statuses_apply(external_id))


def early_statuses_apply(external_id: str) -> int:
    """Apply the statuses that arrived before ``external_id`` was known; called
    by the send task right after it stores a wamid. Returns how many changed
    the message."""
    if not external_id:
        return 0
    applied = 0
    with transaction.atomic():
        if not Message.objects.filter(
            external_id=external_id, direction=Message.Direction.OUT
        ).exists():
            return 0
        early = list(
            EarlyStatus.objects.select_for_update()
            .filter(external_id=external_id)
            .order_by("at", "id")
        )
        for row in early:
            applied += message_apply_status(
                external_id=external_id,
                status=row.status,
                at=row.at,
                error_code=row.error_code,
                error_title=row.error_title,
                error_detail=row.error_detail,
            )
        if early:
            EarlyStatus.objects.filter(pk__in=[row.pk for row in early]).delete()
    if early:
        logger.info("whatsapp_early_statuses_applied", external_id=external_id, count=len(early))
    return applied


def early_statuses_purge(
    *, older_than: timedelta = EARLY_STATUS_MAX_AGE, now: datetime | None = None
) -> int:
    """Drop statuses whose message never appeared (sent from elsewhere, or lost)."""
    cutoff = (now or timezone.now()) - older_than
    deleted, _by_model = EarlyStatus.objects.filter(received_at__lt=cutoff).delete()
    if deleted:
        logger.info("whatsapp_early_statuses_purged", count=deleted)
    return deleted


# --- Configuration from the environment -----------------------------------------


def account_bootstrap_from_env() -> WhatsAppAccount | None:
    """Create or update the number named by ``WHATSAPP_PHONE_NUMBER_ID``, so a
    single-number deployment needs only its environment. Credentials set in the
    environment win; ones left empty there keep what an admin typed."""
    phone_number_id = (settings.WHATSAPP_PHONE_NUMBER_ID or "").strip()
    if not phone_number_id:
        return None
    with transaction.atomic():
        account = (
            WhatsAppAccount.objects.select_for_update()
            .filter(phone_number_id=phone_number_id)
            .first()
        )
        created = account is None
        if account is None:
            inbox = Inbox.objects.create(name="WhatsApp", channel="whatsapp")
            account = WhatsAppAccount(inbox=inbox, name="WhatsApp", phone_number_id=phone_number_id)
        changed = created
        if (
            settings.WHATSAPP_ACCESS_TOKEN
            and account.access_token != settings.WHATSAPP_ACCESS_TOKEN
        ):
            account.access_token = settings.WHATSAPP_ACCESS_TOKEN
            changed = True
        if settings.WHATSAPP_APP_SECRET and account.app_secret != settings.WHATSAPP_APP_SECRET:
            account.app_secret = settings.WHATSAPP_APP_SECRET
            changed = True
        if (
            settings.WHATSAPP_VERIFY_TOKEN
            and account.verify_token != settings.WHATSAPP_VERIFY_TOKEN
        ):
            account.verify_token = settings.WHATSAPP_VERIFY_TOKEN
            changed = True
        if _give_sandbox_secret(account):
            changed = True
        if changed:
            account.save()
    accounts_invalidate(phone_number_id)
    if created:
        logger.info(
            "whatsapp_account_bootstrapped",
            phone_number_id=phone_number_id,
            sandbox=account.is_sandbox,
            hint="choose the inbox's default team in the admin (WhatsApp numbers)",
        )
    elif changed:
        logger.info("whatsapp_account_updated_from_env", phone_number_id=phone_number_id)
    return account


def _give_sandbox_secret(account: WhatsAppAccount) -> bool:
    """A sandbox number with no app secret of its own gets a random one, so the
    customer simulator can sign its webhooks; True if it got one. A live
    number never does: Meta signs with the app's real secret, which only its
    admin can type."""
    if not account.is_sandbox or account.app_secret_encrypted or settings.WHATSAPP_APP_SECRET:
        return False
    account.app_secret = secrets.token_hex(32)
    return True


def account_ensure_sandbox_secret(*, account: WhatsAppAccount) -> str:
    """The secret the simulator signs ``account``'s webhooks with: its own app
    secret, else the environment's, else (sandbox numbers only) a new random
    one saved on it. '' when a live number has none."""
    if not account.app_secret_encrypted and _give_sandbox_secret(account):
        account.save(update_fields=["app_secret_encrypted", "updated_at"])
        logger.info("whatsapp_sandbox_secret_generated", phone_number_id=account.phone_number_id)
    return account.app_secret or settings.WHATSAPP_APP_SECRET or ""


DEMO_PHONE_NUMBER_ID = "sandbox-demo"


def account_ensure_demo() -> WhatsAppAccount | None:
    """A sandbox number for a machine that has none, so `make run` can be tried
    end to end with the customer simulator before anyone owns a WhatsApp
    Business account. Returns the number it created, None when one exists."""
    with transaction.atomic():
        if WhatsAppAccount.objects.select_for_update().exists():
            return None
        inbox = Inbox.objects.create(name="WhatsApp (sandbox)", channel="whatsapp")
        account = WhatsAppAccount(
            inbox=inbox, name="WhatsApp (sandbox)", phone_number_id=DEMO_PHONE_NUMBER_ID
        )
        _give_sandbox_secret(account)
        account.save()
    accounts_invalidate(DEMO_PHONE_NUMBER_ID)
    logger.info("whatsapp_demo_number_created", phone_number_id=DEMO_PHONE_NUMBER_ID)
    return account


def account_mark_unhealthy(*, account: WhatsAppAccount, code: str, title: str) -> None:
    """Meta refused the number's token (190): sends stop being tried and the
    admin sees why, until a new token is typed or a call succeeds again."""
    WhatsAppAccount.objects.filter(pk=account.pk).update(
        is_healthy=False, last_error=f"{code}: {title}"[:255], last_error_at=timezone.now()
    )
    accounts_invalidate(account.phone_number_id)
    logger.error("whatsapp_account_unhealthy", account_id=account.pk, code=code)


def account_mark_healthy(*, account: WhatsAppAccount) -> None:
    """A call Meta accepted (a send, a connection check): the token works again."""
    if WhatsAppAccount.objects.filter(pk=account.pk, is_healthy=False).update(is_healthy=True):
        accounts_invalidate(account.phone_number_id)
        logger.info("whatsapp_account_healthy_again", account_id=account.pk)

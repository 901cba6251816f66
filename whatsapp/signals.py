"""Signal wiring of the WhatsApp app; ``connect()`` is called from
``WhatsAppConfig.ready()``."""

from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _bootstrap_after_migrate(sender: AppConfig, **_kwargs: Any) -> None:
    from whatsapp.services import account_bootstrap_from_env

    account_bootstrap_from_env()


def connect() -> None:
    """After ``migrate``: create or update the number configured in the
    environment. After an erasure: forget the person's remembered sends."""
    from conversations.signals import contacts_erased
    from whatsapp.tasks import forget_accepted

    post_migrate.connect(
        _bootstrap_after_migrate,
        sender=apps.get_app_config("whatsapp"),
        dispatch_uid="whatsapp_account_bootstrap_from_env",
    )
    contacts_erased.connect(forget_accepted, dispatch_uid="whatsapp_forget_erased_sends")

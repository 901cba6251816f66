"""Fernet encryption at rest with key rotation.

FERNET_KEYS lists keys newest first: the first encrypts, every one decrypts,
so a new key can be put in front and the old one dropped once everything has
been re-encrypted with ``rotate``.
"""

from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

__all__ = ["DecryptionError", "decrypt", "encrypt", "rotate"]


class DecryptionError(Exception):
    """No key in FERNET_KEYS opens this value (wrong key, or the data is damaged)."""


@lru_cache(maxsize=1)
def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(key) for key in settings.FERNET_KEYS])


@receiver(setting_changed)
def _keys_changed(*, setting: str, **_kwargs: object) -> None:
    if setting == "FERNET_KEYS":
        _fernet.cache_clear()


def encrypt(plaintext: str) -> str:
    return _fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no key in FERNET_KEYS decrypts this value") from None


def rotate(token: str) -> str:
    """Re-encrypt with the newest key (keeps the original timestamp)."""
    try:
        return _fernet().rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionError("no key in FERNET_KEYS decrypts this value") from None

from __future__ import annotations

from collections.abc import Callable

import pytest
from cryptography.fernet import Fernet
from pytest_django.fixtures import Settings

from ispsupport.crypto import DecryptionError, decrypt, encrypt, rotate

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
UNKNOWN_KEY = Fernet.generate_key().decode()
NO_KEY = "no key in FERNET_KEYS decrypts this value"


def refusal(operation: Callable[[str], str], token: str) -> str:
    with pytest.raises(DecryptionError) as error:
        operation(token)
    return str(error.value)


@pytest.mark.parametrize("plaintext", ["123.456.789-09", "Conceição", "Rua São João, 42, Açaí", ""])
def test_encrypt_then_decrypt_gives_the_text_back(plaintext: str) -> None:
    assert decrypt(encrypt(plaintext)) == plaintext


def test_ciphertext_hides_the_text_and_differs_every_time() -> None:
    first = encrypt("123.456.789-09")
    second = encrypt("123.456.789-09")

    assert "123.456.789-09" not in first
    assert first != second
    assert decrypt(first) == decrypt(second) == "123.456.789-09"


def test_the_first_key_encrypts(settings: Settings) -> None:
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    token = encrypt("Conceição")

    assert Fernet(KEY_B).decrypt(token.encode()).decode() == "Conceição"


def test_an_old_key_still_decrypts_after_a_new_one_is_put_in_front(
    settings: Settings,
) -> None:
    settings.FERNET_KEYS = [KEY_A]
    token = encrypt("123.456.789-09")

    settings.FERNET_KEYS = [KEY_B, KEY_A]

    assert decrypt(token) == "123.456.789-09"


def test_rotate_re_encrypts_with_the_newest_key(settings: Settings) -> None:
    settings.FERNET_KEYS = [KEY_A]
    token = encrypt("Conceição")
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    rotated = rotate(token)

    assert rotated != token
    settings.FERNET_KEYS = [KEY_B]
    assert decrypt(rotated) == "Conceição"
    assert refusal(decrypt, token) == NO_KEY


def test_a_value_from_an_unknown_key_says_so(settings: Settings) -> None:
    token = Fernet(UNKNOWN_KEY).encrypt(b"123.456.789-09").decode()
    settings.FERNET_KEYS = [KEY_B, KEY_A]

    assert refusal(decrypt, token) == NO_KEY
    assert refusal(rotate, token) == NO_KEY


@pytest.mark.parametrize("damaged", ["", "not-a-token", "gAAAAA", "çãé"])
def test_damaged_values_raise_decryption_error(damaged: str) -> None:
    assert refusal(decrypt, damaged) == NO_KEY


def test_a_tampered_value_does_not_decrypt() -> None:
    token = encrypt("123.456.789-09")
    # Flip one character in the middle; the HMAC must catch it.
    middle = len(token) // 2
    tampered = token[:middle] + ("A" if token[middle] != "A" else "B") + token[middle + 1 :]

    assert refusal(decrypt, tampered) == NO_KEY

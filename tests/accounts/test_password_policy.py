"""One password policy for admin, API and commands, in pt-BR and English."""

from __future__ import annotations

import pytest
from django.contrib.auth.hashers import identify_hasher
from django.contrib.auth.password_validation import password_validators_help_texts
from django.contrib.auth.password_validation import validate_password as django_validate
from django.core.exceptions import ValidationError
from django.utils import translation

from accounts.models import User

TOO_SIMPLE = {
    "en": "This password must mix at least three of: lower case letters, upper case letters, "
    "digits and symbols.",
    "pt-br": "Esta senha deve combinar pelo menos três destes: letras minúsculas, letras "
    "maiúsculas, números e símbolos.",
}
CONTAINS_NAME = {
    "en": "This password must not contain your username or name.",
    "pt-br": "Esta senha não pode conter seu nome de usuário ou seu nome.",
}
TOO_SHORT = {
    "en": "This password is too short. It must contain at least 10 characters.",
    "pt-br": "Esta senha é muito curta. Ela precisa conter pelo menos 10 caracteres.",
}


def messages(password: str, user: User | None, language: str) -> list[str]:
    with translation.override(language):
        try:
            django_validate(password, user)
        except ValidationError as exc:
            return list(exc.messages)
    return []


@pytest.mark.parametrize("language", ["pt-br", "en"])
@pytest.mark.parametrize(
    ("password", "expected"),
    [
        ("Tr0ca-de-Roteador", []),
        ("fibra#optica9", []),  # lower + digit + symbol: three classes
        ("FIBRAOPTICA9!", []),
        ("Ab1!", ["TOO_SHORT"]),
        ("roteadorwifi", ["TOO_SIMPLE"]),
        ("roteadorwifi2026", ["TOO_SIMPLE"]),
        ("ROTEADOR-WIFI", ["TOO_SIMPLE"]),
    ],
)
def test_policy_messages(password: str, expected: list[str], language: str) -> None:
    texts = {"TOO_SHORT": TOO_SHORT, "TOO_SIMPLE": TOO_SIMPLE}

    assert messages(password, User(username="zeca"), language) == [
        texts[name][language] for name in expected
    ]


@pytest.mark.parametrize("language", ["pt-br", "en"])
@pytest.mark.parametrize(
    "password",
    ["Mariana#2026x", "x9!SOUZA-rede", "Conceicao-77x"],
    ids=["username", "last-word-of-name", "accented-name"],
)
def test_password_may_not_contain_username_or_name(password: str, language: str) -> None:
    user = User(username="mariana", name="Luíza Souza", last_name="Conceição")

    assert CONTAINS_NAME[language] in messages(password, user, language)


def test_help_text_explains_the_whole_policy_in_portuguese() -> None:
    with translation.override("pt-br"):
        help_texts = password_validators_help_texts()

    assert (
        "Sua senha deve ter pelo menos 10 caracteres, combinar pelo menos três destes: "
        "minúsculas, maiúsculas, números e símbolos, e não conter seu nome de usuário ou seu "
        "nome." in help_texts
    )


def test_new_passwords_are_hashed_with_bcrypt_12_rounds(db: None) -> None:
    user = User.objects.create_user(username="novo", password="Tr0ca-de-Roteador")

    assert identify_hasher(user.password).algorithm == "bcrypt_sha256"
    assert user.password.split("$")[3] == "12"

from __future__ import annotations

import re
import unicodedata

from django.conf import settings
from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _


def _fold(text: str) -> str:
    """Lower case without accents, so 'Conceição' and 'conceicao' count as one."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


class StrengthValidator:
    """At least three of lower case, upper case, digits and symbols, and not
    containing the username or any part of the person's name."""

    def __init__(self, min_classes: int = 3) -> None:
        self.min_classes = min_classes

    def validate(self, password: str, user: object = None) -> None:
        classes = sum(
            (
                any(c.islower() for c in password),
                any(c.isupper() for c in password),
                any(c.isdigit() for c in password),
                any(not c.isalnum() for c in password),
            )
        )
        errors = []
        if classes < self.min_classes:
            errors.append(
                ValidationError(
                    _(
                        "This password must mix at least three of: lower case letters, "
                        "upper case letters, digits and symbols."
                    ),
                    code="password_too_simple",
                )
            )
        folded = _fold(password)
        for part in self._personal_parts(user):
            if part in folded:
                errors.append(
                    ValidationError(
                        _("This password must not contain your username or name."),
                        code="password_contains_name",
                    )
                )
                break
        if errors:
            raise ValidationError(errors)

    @staticmethod
    def _personal_parts(user: object) -> list[str]:
        values = [
            getattr(user, field, "") or ""
            for field in ("username", "name", "first_name", "last_name")
        ]
        parts: set[str] = set()
        for value in values:
            folded = _fold(str(value))
            if len(folded) >= 3:
                parts.add(folded)
            # Each word of a name counts on its own ("Ana Souza" → "souza").
            parts.update(word for word in re.split(r"[\W_]+", folded) if len(word) >= 3)
        return sorted(parts)

    def get_help_text(self) -> str:
        return _(
            "Your password must have at least %(min_length)d characters, mix at least three "
            "of lower case, upper case, digits and symbols, and not contain your username "
            "or name."
        ) % {"min_length": settings.PASSWORD_MIN_LENGTH}

"""Every change to staff users goes through here."""

from __future__ import annotations

import secrets
import string

from django.contrib.auth.password_validation import validate_password
from django.db import transaction

from accounts.models import User


def generate_password(length: int = 16) -> str:
    """A random password with lower, upper case and digits, so every validator passes."""
    alphabet = string.ascii_letters + string.digits
    while True:
        password = "".join(secrets.choice(alphabet) for _ in range(length))
        if (
            any(c.islower() for c in password)
            and any(c.isupper() for c in password)
            and any(c.isdigit() for c in password)
        ):
            return password


@transaction.atomic
def user_create_admin(*, username: str, password: str, email: str = "") -> User:
    """Create a superuser with the admin role; the password must pass the policy."""
    user = User(username=username, email=email, role=User.Role.ADMIN)
    validate_password(password, user)
    user.is_staff = True
    user.is_superuser = True
    user.set_password(password)
    user.save()
    return user

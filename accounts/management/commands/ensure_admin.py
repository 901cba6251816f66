"""Make sure someone can log in to a fresh installation.

With DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD set, that admin is
created if missing. Otherwise, when no admin exists at all, an ``admin`` user is
created with a random password that is printed this one time.
"""

from __future__ import annotations

import os
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import generate_password, user_create_admin


class Command(BaseCommand):
    help = "Create the first admin user if there is none (prints its password once)."

    def handle(self, *args: Any, **options: Any) -> None:
        username = os.environ.get("DJANGO_SUPERUSER_USERNAME", "").strip()
        password = os.environ.get("DJANGO_SUPERUSER_PASSWORD", "")
        email = os.environ.get("DJANGO_SUPERUSER_EMAIL", "").strip()
        if bool(username) != bool(password):
            raise CommandError(
                "Set both DJANGO_SUPERUSER_USERNAME and DJANGO_SUPERUSER_PASSWORD, or neither."
            )
        if username:
            if User.objects.filter(username=username).exists():
                self.stdout.write(f"Admin user {username!r} exists.")
                return
            self._create(username, password, email)
            self.stdout.write(self.style.SUCCESS(f"Created admin user {username!r}."))
            return
        if User.objects.filter(is_superuser=True).exists():
            self.stdout.write("An admin user exists; log in with it.")
            return
        password = generate_password()
        username = self._free_username("admin")
        self._create(username, password, email)
        banner = "=" * 60
        self.stdout.write(
            self.style.SUCCESS(
                f"{banner}\nDemo admin created. Save these, they are shown only once:\n"
                f"  username: {username}\n  password: {password}\n{banner}"
            )
        )

    def _free_username(self, base: str) -> str:
        # An agent may already be called "admin"; never take over their account.
        candidate, n = base, 1
        while User.objects.filter(username=candidate).exists():
            n += 1
            candidate = f"{base}{n}"
        return candidate

    def _create(self, username: str, password: str, email: str) -> None:
        try:
            user_create_admin(username=username, password=password, email=email)
        except ValidationError as exc:
            raise CommandError(
                "DJANGO_SUPERUSER_PASSWORD is too weak: " + " ".join(exc.messages)
            ) from None

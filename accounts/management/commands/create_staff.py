"""Create a staff user from the command line.

The password is read from the environment variable named by --password-env
(default STAFF_PASSWORD) or, on a terminal, asked for twice. It must pass the
same policy as in admin and the API.
"""

from __future__ import annotations

import getpass
import os
import sys
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.models import Team, User
from accounts.services import user_create


class Command(BaseCommand):
    help = "Create a staff user (agent, supervisor or admin) and put them in teams."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--role", choices=User.Role.values, default=User.Role.AGENT)
        parser.add_argument("--name", default="", help="Display name, e.g. 'Ana (Suporte)'.")
        parser.add_argument("--email", default="")
        parser.add_argument(
            "--team",
            action="append",
            default=[],
            dest="teams",
            help="Team name; repeat for several teams. The team must exist.",
        )
        parser.add_argument(
            "--password-env",
            default="STAFF_PASSWORD",
            help="Environment variable holding the password (default STAFF_PASSWORD).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        username: str = options["username"]
        if User.objects.filter(username__iexact=username).exists():
            raise CommandError(f"A user named {username!r} exists already.")
        teams = self._teams(options["teams"])
        password = os.environ.get(options["password_env"]) or self._prompt(options)
        try:
            user = user_create(
                username=username,
                password=password,
                role=options["role"],
                name=options["name"],
                email=options["email"],
                teams=teams,
            )
        except ValidationError as exc:
            raise CommandError("Password refused: " + " ".join(exc.messages)) from None
        team_list = ", ".join(t.name for t in teams) or "no team"
        self.stdout.write(
            self.style.SUCCESS(f"Created {user.role} {user.username!r} ({team_list}).")
        )

    def _teams(self, names: list[str]) -> list[Team]:
        teams = []
        for name in names:
            team = Team.objects.filter(name__iexact=name).first()
            if team is None:
                known = ", ".join(Team.objects.values_list("name", flat=True)) or "none yet"
                raise CommandError(f"No team named {name!r} (teams: {known}).")
            teams.append(team)
        return teams

    def _prompt(self, options: dict[str, Any]) -> str:
        if not sys.stdin.isatty():
            raise CommandError(
                f"No password: set {options['password_env']} or run on a terminal to be asked."
            )
        first = getpass.getpass("Password: ")
        if first != getpass.getpass("Password (again): "):
            raise CommandError("The two passwords differ.")
        return first

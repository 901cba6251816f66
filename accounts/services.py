"""Every change to staff users and teams goes through here."""

from __future__ import annotations

import secrets
import string
from collections.abc import Iterable

import structlog
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.dispatch import Signal
from django.utils import timezone
from django.utils.translation import gettext as _
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from accounts.models import ROLE_RANK, Team, User

logger = structlog.get_logger(__name__)

# Sent after a user is deactivated, once the transaction commits. The
# conversations app listens and hands the user's open conversations back to
# the queue (accounts knows nothing of conversations).
user_deactivated = Signal()


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


def _check_may_grant(actor: User | None, role: str) -> None:
    if actor is not None and ROLE_RANK[User.Role(role)] > actor.rank:
        raise PermissionDenied(_("You cannot give a role above your own."))


@transaction.atomic
def user_create(
    *,
    username: str,
    password: str,
    role: str = User.Role.AGENT,
    name: str = "",
    email: str = "",
    teams: Iterable[Team] = (),
    actor: User | None = None,
) -> User:
    """Create a staff user; the password must pass the policy (ValidationError)."""
    _check_may_grant(actor, role)
    user = User(username=username, role=role, name=name, email=email)
    validate_password(password, user)
    user.set_password(password)
    user.is_staff = role == User.Role.ADMIN
    user.save()
    user.teams.set(teams)
    logger.info("user_created", user_id=user.pk, role=role, actor_id=getattr(actor, "pk", None))
    return user


@transaction.atomic
def user_create_admin(*, username: str, password: str, email: str = "") -> User:
    """Create a superuser with the admin role; the password must pass the policy."""
    user = user_create(username=username, password=password, role=User.Role.ADMIN, email=email)
    user.is_superuser = True
    user.save(update_fields=["is_superuser"])
    return user


@transaction.atomic
def user_update(
    *,
    user: User,
    actor: User | None,
    name: str | None = None,
    email: str | None = None,
    role: str | None = None,
    availability: str | None = None,
    teams: Iterable[Team] | None = None,
) -> User:
    fields: list[str] = []
    if name is not None:
        user.name = name
        fields.append("name")
    if email is not None:
        user.email = email
        fields.append("email")
    if role is not None and role != user.role:
        _check_may_grant(actor, role)
        if actor is not None and actor.pk == user.pk:
            raise PermissionDenied(_("You cannot change your own role."))
        user.role = role
        user.is_staff = role == User.Role.ADMIN or user.is_superuser
        fields += ["role", "is_staff"]
    if availability is not None and availability != user.availability:
        user.availability = availability
        user.availability_changed_at = timezone.now()
        fields += ["availability", "availability_changed_at"]
    if fields:
        user.save(update_fields=fields)
    if teams is not None:
        user.teams.set(teams)
    return user


def user_revoke_tokens(*, user: User) -> int:
    """Blacklist every refresh token the user still holds; returns how many."""
    outstanding = OutstandingToken.objects.filter(user=user).exclude(blacklistedtoken__isnull=False)
    revoked = BlacklistedToken.objects.bulk_create(
        [BlacklistedToken(token=token) for token in outstanding], ignore_conflicts=True
    )
    return len(revoked)


@transaction.atomic
def user_change_password(*, user: User, old_password: str, new_password: str) -> User:
    """The user's own change: the old password must be right.

    Every other session and token of the user stops working: refresh tokens
    are blacklisted, access tokens carry a digest of the old hash, and console
    sessions carry Django's session hash of it.
    """
    if not user.check_password(old_password):
        raise ValidationError(
            {"old_password": _("Your old password was entered incorrectly.")}, code="invalid"
        )
    return user_set_password(user=user, password=new_password)


@transaction.atomic
def user_set_password(*, user: User, password: str) -> User:
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    user_revoke_tokens(user=user)
    logger.info("user_password_changed", user_id=user.pk)
    return user


@transaction.atomic
def user_deactivate(*, user: User, actor: User | None) -> User:
    """Stop a user from logging in; their tokens and sessions stop working at once."""
    if actor is not None and actor.pk == user.pk:
        raise PermissionDenied(_("You cannot deactivate yourself."))
    if actor is not None and user.rank > actor.rank:
        raise PermissionDenied(_("You cannot deactivate someone with a role above your own."))
    user.is_active = False
    user.availability = User.Availability.OFFLINE
    user.availability_changed_at = timezone.now()
    user.save(update_fields=["is_active", "availability", "availability_changed_at"])
    user_revoke_tokens(user=user)
    transaction.on_commit(lambda: user_deactivated.send(sender=User, user=user, actor=actor))
    logger.info("user_deactivated", user_id=user.pk, actor_id=getattr(actor, "pk", None))
    return user


@transaction.atomic
def user_activate(*, user: User, actor: User | None) -> User:
    user.is_active = True
    user.save(update_fields=["is_active"])
    logger.info("user_activated", user_id=user.pk, actor_id=getattr(actor, "pk", None))
    return user


@transaction.atomic
def team_create(*, name: str, description: str = "", members: Iterable[User] = ()) -> Team:
    team = Team.objects.create(name=name, description=description)
    team.members.set(members)
    return team


@transaction.atomic
def team_update(*, team: Team, name: str | None = None, description: str | None = None) -> Team:
    if name is not None:
        team.name = name
    if description is not None:
        team.description = description
    team.save()
    return team


def team_add_member(*, team: Team, user: User) -> Team:
    team.members.add(user)
    return team


def team_remove_member(*, team: Team, user: User) -> Team:
    team.members.remove(user)
    return team


def user_logged_in(*, user: User) -> None:
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])

from __future__ import annotations

from django.conf import settings
from django.contrib.auth.models import AbstractUser
from django.db import models
from django.utils.translation import gettext_lazy as _


class User(AbstractUser):
    """A staff member: an agent who answers customers, a supervisor who watches
    the queues, or an admin who runs the system."""

    class Role(models.TextChoices):
        AGENT = "agent", _("Agent")
        SUPERVISOR = "supervisor", _("Supervisor")
        ADMIN = "admin", _("Admin")

    class Availability(models.TextChoices):
        ONLINE = "online", _("Online")
        AWAY = "away", _("Away")
        OFFLINE = "offline", _("Offline")

    role = models.CharField(_("role"), max_length=16, choices=Role.choices, default=Role.AGENT)
    name = models.CharField(
        _("display name"),
        max_length=150,
        blank=True,
        help_text=_("How customers and colleagues see this person, e.g. 'Ana (Suporte)'."),
    )
    availability = models.CharField(
        _("availability"),
        max_length=16,
        choices=Availability.choices,
        default=Availability.OFFLINE,
    )
    availability_changed_at = models.DateTimeField(
        _("availability changed at"), null=True, blank=True
    )

    class Meta(AbstractUser.Meta):
        swappable = "AUTH_USER_MODEL"
        verbose_name = _("user")
        verbose_name_plural = _("users")
        indexes = [models.Index(fields=["role", "is_active"], name="user_role_active_idx")]

    def __str__(self) -> str:
        return self.display_name

    @property
    def display_name(self) -> str:
        return self.name or self.get_full_name() or self.username

    @property
    def rank(self) -> int:
        """Roles in order of power; nobody may grant a role above their own."""
        return ROLE_RANK[self.role] if not self.is_superuser else ROLE_RANK[self.Role.ADMIN]

    @property
    def is_admin(self) -> bool:
        return self.is_superuser or self.role == self.Role.ADMIN

    @property
    def is_supervisor(self) -> bool:
        """Supervisors and admins: both watch the queues and the team."""
        return self.is_admin or self.role == self.Role.SUPERVISOR


ROLE_RANK = {User.Role.AGENT: 0, User.Role.SUPERVISOR: 1, User.Role.ADMIN: 2}


class Team(models.Model):
    """A group of staff who share a queue, e.g. Suporte técnico, Financeiro, Comercial."""

    name = models.CharField(_("name"), max_length=80, unique=True)
    description = models.CharField(_("description"), max_length=255, blank=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, related_name="teams", blank=True, verbose_name=_("members")
    )
    created_at = models.DateTimeField(_("created at"), auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name = _("team")
        verbose_name_plural = _("teams")

    def __str__(self) -> str:
        return self.name

"""Django admin for staff users and teams, and the permission rule every
helpdesk admin page shares.

Who may use Django admin: active staff with the admin role (``user_create``
makes them ``is_staff``) and superusers. Admins run the helpdesk without
Django's per-model permissions, which nobody assigns here: every ModelAdmin of
the project grants them what the model admin itself allows (see
:class:`AdminRolePermissions`). Agents and supervisors work in the console and
are sent to the admin login.

Changes to a user that have side effects go through ``accounts.services``:
role (rank check, ``is_staff``), availability (its timestamp), active
(deactivating revokes tokens and hands conversations back) and the password
(every refresh token of the user is revoked).
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.contrib.auth.forms import AdminPasswordChangeForm, AdminUserCreationForm
from django.contrib.auth.forms import UserChangeForm as DjangoUserChangeForm
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext
from rest_framework_simplejwt.token_blacklist.admin import OutstandingTokenAdmin
from rest_framework_simplejwt.token_blacklist.models import OutstandingToken

from accounts import services
from accounts.models import ROLE_RANK, Team, User
from ispsupport.permissions import is_admin

# --- Who may do what in admin -----------------------------------------------------------


def runs_the_helpdesk(request: HttpRequest) -> bool:
    """Active staff with the admin role, or a superuser."""
    user = request.user
    return bool(user.is_active and user.is_staff and is_admin(user))


class AdminRolePermissions:
    """Admins get every permission the ModelAdmin (or inline) does not take
    away itself; anyone else falls back to Django's per-model permissions.

    Put it first in the bases so that a subclass's own ``has_*_permission``
    (read-only history, a single settings row) still wins.
    """

    def has_module_permission(self, request: HttpRequest) -> bool:
        return runs_the_helpdesk(request) or super().has_module_permission(request)  # type: ignore[misc]

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return runs_the_helpdesk(request) or super().has_view_permission(request, obj)  # type: ignore[misc]

    def has_add_permission(self, request: HttpRequest, *args: Any) -> bool:
        # ModelAdmin takes (request), inlines take (request, obj).
        return runs_the_helpdesk(request) or super().has_add_permission(request, *args)  # type: ignore[misc]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return runs_the_helpdesk(request) or super().has_change_permission(request, obj)  # type: ignore[misc]

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return runs_the_helpdesk(request) or super().has_delete_permission(request, obj)  # type: ignore[misc]


class HelpdeskAdmin(AdminRolePermissions, admin.ModelAdmin):
    """The base of every ModelAdmin of the project."""


class HelpdeskTabularInline(AdminRolePermissions, admin.TabularInline):
    """The base of every inline of the project."""


# --- Users --------------------------------------------------------------------------------


class RoleRankMixin:
    """Nobody gives a role above their own, nor changes their own role: the
    rules of ``accounts.services``, shown on the field instead of a 403."""

    actor: User | None = None  # set by UserAdmin.get_form

    def clean_role(self) -> str:
        role: str = self.cleaned_data["role"]  # type: ignore[attr-defined]
        actor, user = self.actor, self.instance  # type: ignore[attr-defined]
        if actor is None or (user.pk and role == user.role):
            return role
        if ROLE_RANK[User.Role(role)] > actor.rank:
            raise ValidationError(_("You cannot give a role above your own."), code="rank")
        if user.pk and user.pk == actor.pk:
            raise ValidationError(_("You cannot change your own role."), code="own_role")
        return role


class UserAddForm(RoleRankMixin, AdminUserCreationForm):
    pass


class UserEditForm(RoleRankMixin, DjangoUserChangeForm):
    def clean_is_active(self) -> bool:
        active: bool = self.cleaned_data["is_active"]
        actor = self.actor
        if actor is None or active or not self.instance.is_active:
            return active
        if self.instance.pk == actor.pk:
            raise ValidationError(_("You cannot deactivate yourself."), code="self")
        if self.instance.rank > actor.rank:
            raise ValidationError(
                _("You cannot deactivate someone with a role above your own."), code="rank"
            )
        return active


class UserPasswordForm(AdminPasswordChangeForm):
    """Django's admin password form, plus what ``user_set_password`` does
    after: every refresh token of the user stops working."""

    def save(self, commit: bool = True) -> Any:
        user = super().save(commit=commit)
        if commit:
            services.user_revoke_tokens(user=user)
        return user


class TeamMembershipInline(HelpdeskTabularInline):
    model = Team.members.through
    extra = 0
    verbose_name = _("team")
    verbose_name_plural = _("teams")
    autocomplete_fields = ["team"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return super().get_queryset(request).select_related("team")


# Only a superuser hands out Django's own permission switches; is_staff always
# follows the role (admins and superusers), so nobody ticks it by hand.
SUPERUSER_ONLY = ("is_superuser", "groups", "user_permissions")


@admin.register(User)
class UserAdmin(AdminRolePermissions, DjangoUserAdmin):
    form = UserEditForm
    add_form = UserAddForm
    change_password_form = UserPasswordForm
    list_display = (
        "username",
        "display_name",
        "email",
        "role",
        "availability",
        "team_names",
        "is_active",
        "last_login",
    )
    list_filter = ("role", "availability", "is_active", "teams", "is_superuser")
    search_fields = ("username", "name", "first_name", "last_name", "email")
    ordering = ("username",)
    inlines = [TeamMembershipInline]
    actions = ["deactivate", "activate"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        (_("Personal info"), {"fields": ("name", "first_name", "last_name", "email")}),
        (_("Helpdesk"), {"fields": ("role", "availability", "availability_changed_at")}),
        (
            _("Permissions"),
            {"fields": ("is_active", "is_staff", "is_superuser", "groups", "user_permissions")},
        ),
        (_("Important dates"), {"fields": ("last_login", "date_joined")}),
    )
    readonly_fields = ("availability_changed_at", "is_staff", "last_login", "date_joined")
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("Helpdesk"), {"fields": ("name", "email", "role")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("teams")

    def get_form(self, request: HttpRequest, obj: Any = None, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, **kwargs)
        return type(form.__name__, (form,), {"actor": request.user})

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = tuple(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser:
            fields += SUPERUSER_ONLY
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # A superuser bypasses every permission: only another superuser may
        # change one (or set their password), or an admin could become one.
        if obj is not None and obj.is_superuser and not request.user.is_superuser:
            return False
        return super().has_change_permission(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Deleting a user blanks the author of their messages, notes and
        # resolutions: admins deactivate instead; a superuser may still delete
        # (a user created by mistake).
        return request.user.is_superuser and super().has_delete_permission(request, obj)

    def save_model(
        self, request: HttpRequest, obj: User, form: forms.ModelForm, change: bool
    ) -> None:
        actor: User = request.user  # type: ignore[assignment]
        if not change:
            obj.is_staff = obj.role == User.Role.ADMIN or obj.is_superuser
            super().save_model(request, obj, form, change)
            return
        # The form already wrote the new values on obj: put the stored ones
        # back, save the rest, and let the services make these changes.
        updates: dict[str, Any] = {}
        for name in ("role", "availability"):
            if name in form.changed_data:
                updates[name] = getattr(obj, name)
                setattr(obj, name, form.initial[name])
        active: bool | None = None
        if "is_active" in form.changed_data:
            active, obj.is_active = obj.is_active, form.initial["is_active"]
        obj.is_staff = obj.role == User.Role.ADMIN or obj.is_superuser
        super().save_model(request, obj, form, change)
        if updates:
            services.user_update(user=obj, actor=actor, **updates)
        if active is True:
            services.user_activate(user=obj, actor=actor)
        elif active is False:
            services.user_deactivate(user=obj, actor=actor)

    @admin.display(description=_("teams"))
    def team_names(self, user: User) -> str:
        return ", ".join(team.name for team in user.teams.all())

    @admin.action(description=_("Deactivate selected users (logs them out everywhere)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset.filter(is_active=True):
            if user.is_superuser and not request.user.is_superuser:
                # Same rank on paper, but only a superuser acts on a superuser.
                self.message_user(
                    request,
                    _("%(user)s: Only a superuser may deactivate a superuser.")
                    % {"user": user.username},
                    messages.ERROR,
                )
                continue
            try:
                services.user_deactivate(user=user, actor=request.user)  # type: ignore[arg-type]
            except PermissionDenied as exc:
                self.message_user(request, f"{user.username}: {exc}", messages.ERROR)
            else:
                done += 1
        if done:
            self.message_user(
                request,
                ngettext("%(count)d user deactivated.", "%(count)d users deactivated.", done)
                % {"count": done},
                messages.SUCCESS,
            )

    @admin.action(description=_("Activate selected users"))
    def activate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset.filter(is_active=False):
            services.user_activate(user=user, actor=request.user)  # type: ignore[arg-type]
            done += 1
        self.message_user(
            request,
            ngettext("%(count)d user activated.", "%(count)d users activated.", done)
            % {"count": done},
            messages.SUCCESS,
        )


# --- Teams --------------------------------------------------------------------------------


@admin.register(Team)
class TeamAdmin(HelpdeskAdmin):
    list_display = ("name", "description", "member_count", "created_at")
    search_fields = ("name", "description")
    ordering = ("name",)
    filter_horizontal = ("members",)
    fields = ("name", "description", "members", "created_at")
    readonly_fields = ("created_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total  # type: ignore[attr-defined]


# --- JWT refresh tokens ---------------------------------------------------------------------


class RefreshTokenAdmin(OutstandingTokenAdmin):
    """simplejwt's page, minus the token itself: a refresh token is a
    credential, and whoever reads it can act as its user until it expires."""

    def get_readonly_fields(self, *args: Any, **kwargs: Any) -> list[Any]:
        return [name for name in super().get_readonly_fields(*args, **kwargs) if name != "token"]

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[Any]:
        return self.get_readonly_fields(request, obj)


admin.site.unregister(OutstandingToken)
admin.site.register(OutstandingToken, RefreshTokenAdmin)

from __future__ import annotations

from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import PermissionDenied
from django.db.models import Count, QuerySet
from django.http import HttpRequest
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from accounts import services
from accounts.models import Team, User


class TeamMembershipInline(admin.TabularInline):
    model = Team.members.through
    extra = 0
    verbose_name = _("team")
    verbose_name_plural = _("teams")
    autocomplete_fields = ["team"]


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
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
    actions = ["deactivate"]
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
    readonly_fields = ("availability_changed_at", "last_login", "date_joined")
    add_fieldsets = (
        *DjangoUserAdmin.add_fieldsets,
        (_("Helpdesk"), {"fields": ("name", "role")}),
    )

    def get_queryset(self, request: HttpRequest) -> QuerySet[User]:
        return super().get_queryset(request).prefetch_related("teams")

    @admin.display(description=_("teams"))
    def team_names(self, user: User) -> str:
        return ", ".join(team.name for team in user.teams.all())

    @admin.action(description=_("Deactivate selected users (logs them out everywhere)"))
    def deactivate(self, request: HttpRequest, queryset: QuerySet[User]) -> None:
        done = 0
        for user in queryset.filter(is_active=True):
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


@admin.register(Team)
class TeamAdmin(admin.ModelAdmin):
    list_display = ("name", "description", "member_count", "created_at")
    search_fields = ("name", "description")
    filter_horizontal = ("members",)

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return super().get_queryset(request).annotate(member_total=Count("members"))

    @admin.display(description=_("members"), ordering="member_total")
    def member_count(self, team: Team) -> int:
        return team.member_total  # type: ignore[attr-defined]

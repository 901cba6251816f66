"""Users and teams API (/api/v1/users/, /api/v1/teams/)."""

from __future__ import annotations

from typing import Any

import django_filters
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import QuerySet
from django.shortcuts import get_object_or_404
from django.utils.translation import gettext_lazy as _
from drf_spectacular.utils import extend_schema
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response

from accounts import services
from accounts.models import Team, User
from accounts.permissions import IsAdmin, IsSupervisor
from accounts.selectors import team_list, user_list


def password_errors(exc: DjangoValidationError, field: str) -> serializers.ValidationError:
    """Django's password ValidationError as DRF field errors."""
    if hasattr(exc, "error_dict"):
        return serializers.ValidationError(exc.message_dict)
    return serializers.ValidationError({field: exc.messages})


class TeamRefSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["id", "name"]


class UserSerializer(serializers.ModelSerializer):
    teams = TeamRefSerializer(many=True, read_only=True)
    name = serializers.CharField(source="display_name", read_only=True)
    # Not an EmailField: users are created without one, and "" is no e-mail address.
    email = serializers.CharField(
        read_only=True, help_text=_('The e-mail address, or "" when the user has none.')
    )

    class Meta:
        model = User
        fields = [
            "id",
            "username",
            "name",
            "email",
            "role",
            "availability",
            "availability_changed_at",
            "teams",
            "is_active",
            "last_login",
            "date_joined",
        ]
        read_only_fields = fields


class UserCreateSerializer(serializers.Serializer):
    username = serializers.RegexField(
        r"^[\w.@+-]+\Z",
        max_length=150,
        error_messages={"invalid": _("Use letters, digits and @/./+/-/_ only.")},
    )
    password = serializers.CharField(write_only=True, trim_whitespace=False)
    name = serializers.CharField(max_length=150, required=False, allow_blank=True, default="")
    email = serializers.EmailField(required=False, allow_blank=True, default="")
    role = serializers.ChoiceField(User.Role.choices, default=User.Role.AGENT)
    teams = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), many=True, required=False, default=list
    )

    def validate_username(self, value: str) -> str:
        if User.objects.filter(username__iexact=value).exists():
            raise serializers.ValidationError(_("A user with that username already exists."))
        return value


class UserUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    email = serializers.EmailField(required=False, allow_blank=True)
    role = serializers.ChoiceField(User.Role.choices, required=False)
    availability = serializers.ChoiceField(User.Availability.choices, required=False)
    teams = serializers.PrimaryKeyRelatedField(
        queryset=Team.objects.all(), many=True, required=False
    )


# What a supervisor may change, and only on agents.
SUPERVISOR_FIELDS = {"availability", "teams"}


class UserFilter(django_filters.FilterSet):
    team = django_filters.ModelChoiceFilter(field_name="teams", queryset=Team.objects.all())

    class Meta:
        model = User
        fields = ["role", "availability", "is_active", "team"]


class UserViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Staff users. Supervisors and admins read; admins create and change;
    supervisors may change the availability and teams of agents."""

    serializer_class = UserSerializer
    filterset_class = UserFilter
    search_fields = ["username", "name", "first_name", "last_name", "email"]
    ordering_fields = ["username", "name", "role", "last_login", "date_joined"]
    http_method_names = ["get", "post", "patch", "head", "options"]

    def get_queryset(self) -> QuerySet[User]:
        return user_list()

    def get_permissions(self) -> list[Any]:
        if self.action in ("create", "deactivate", "activate"):
            return [IsAdmin()]
        return [IsSupervisor()]

    @extend_schema(request=UserCreateSerializer, responses={201: UserSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = UserCreateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            user = services.user_create(actor=request.user, **data.validated_data)
        except DjangoValidationError as exc:
            raise password_errors(exc, "password") from None
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(UserSerializer(user).data, status=status.HTTP_201_CREATED)

    @extend_schema(request=UserUpdateSerializer, responses=UserSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        user = self.get_object()
        data = UserUpdateSerializer(data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        actor: User = request.user  # type: ignore[assignment]
        if not actor.is_admin:
            extra = set(data.validated_data) - SUPERVISOR_FIELDS
            # is_supervisor, not the role: a superuser keeps the default role, agent.
            if extra or user.is_supervisor:
                raise PermissionDenied(
                    _("Supervisors may only change the availability and teams of agents.")
                )
        try:
            services.user_update(user=user, actor=actor, **data.validated_data)
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(UserSerializer(user_list().get(pk=user.pk)).data)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(request=None, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def deactivate(self, request: Request, pk: str | None = None) -> Response:
        """Block the user's logins, tokens and sessions at once."""
        user = self.get_object()
        try:
            services.user_deactivate(user=user, actor=request.user)  # type: ignore[arg-type]
        except DjangoPermissionDenied as exc:
            raise PermissionDenied(str(exc)) from None
        return Response(UserSerializer(user_list().get(pk=user.pk)).data)

    @extend_schema(request=None, responses=UserSerializer)
    @action(detail=True, methods=["post"])
    def activate(self, request: Request, pk: str | None = None) -> Response:
        user = self.get_object()
        services.user_activate(user=user, actor=request.user)  # type: ignore[arg-type]
        return Response(UserSerializer(user_list().get(pk=user.pk)).data)


class MemberSerializer(serializers.ModelSerializer):
    name = serializers.CharField(source="display_name", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "name", "role"]


class TeamSerializer(serializers.ModelSerializer):
    members = MemberSerializer(many=True, read_only=True)
    member_count = serializers.IntegerField(read_only=True)

    class Meta:
        model = Team
        fields = ["id", "name", "description", "member_count", "members", "created_at"]
        read_only_fields = ["id", "member_count", "members", "created_at"]


class TeamWriteSerializer(serializers.ModelSerializer):
    class Meta:
        model = Team
        fields = ["name", "description"]


class MembershipSerializer(serializers.Serializer):
    user = serializers.PrimaryKeyRelatedField(queryset=User.objects.filter(is_active=True))


class TeamViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Teams and their members. Supervisors and admins read and change
    membership; admins create and rename teams."""

    serializer_class = TeamSerializer
    search_fields = ["name", "description"]
    ordering_fields = ["name", "created_at"]
    http_method_names = ["get", "post", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[Team]:
        return team_list()

    def get_permissions(self) -> list[Any]:
        if self.action in ("create", "partial_update", "update"):
            return [IsAdmin()]
        return [IsSupervisor()]

    def _out(self, team: Team) -> dict[str, Any]:
        return TeamSerializer(team_list().get(pk=team.pk)).data

    @extend_schema(request=TeamWriteSerializer, responses={201: TeamSerializer})
    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        data = TeamWriteSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        team = services.team_create(**data.validated_data)
        return Response(self._out(team), status=status.HTTP_201_CREATED)

    @extend_schema(request=TeamWriteSerializer, responses=TeamSerializer)
    def partial_update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        team = self.get_object()
        data = TeamWriteSerializer(team, data=request.data, partial=True)
        data.is_valid(raise_exception=True)
        services.team_update(team=team, **data.validated_data)
        return Response(self._out(team))

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return self.partial_update(request, *args, **kwargs)

    @extend_schema(request=MembershipSerializer, responses=TeamSerializer)
    @action(detail=True, methods=["post"], url_path="members")
    def add_member(self, request: Request, pk: str | None = None) -> Response:
        team = self.get_object()
        data = MembershipSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        services.team_add_member(team=team, user=data.validated_data["user"])
        return Response(self._out(team))

    # A DELETE is documented as 204 unless told: this one answers the team.
    @extend_schema(request=None, responses={200: TeamSerializer})
    @action(detail=True, methods=["delete"], url_path=r"members/(?P<user_id>\d+)")
    def remove_member(self, request: Request, pk: str | None = None, user_id: str = "") -> Response:
        team = self.get_object()
        user = get_object_or_404(team.members.all(), pk=user_id)
        services.team_remove_member(team=team, user=user)
        return Response(self._out(team))

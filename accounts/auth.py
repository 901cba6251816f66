"""JWT authentication API: /api/v1/auth/login, refresh, logout, me.

Tokens are simplejwt's with ``aud``/``iss`` from settings, the user's ``role``,
a ``jti`` and a digest of the password hash (a password change revokes them).
"""

from __future__ import annotations

from typing import Any

from django.contrib.auth import authenticate, update_session_auth_hash
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import transaction
from django.utils.translation import gettext as _
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.serializers import TokenRefreshSerializer
from rest_framework_simplejwt.settings import api_settings
from rest_framework_simplejwt.tokens import RefreshToken
from rest_framework_simplejwt.utils import get_md5_hash_password
from rest_framework_simplejwt.views import TokenRefreshView

from accounts import services
from accounts.api import UserSerializer, password_errors
from accounts.models import User
from accounts.ratelimit import login_check, login_failed


def tokens_for(user: User) -> dict[str, str]:
    refresh = RefreshToken.for_user(user)
    refresh["role"] = user.role
    return {"access": str(refresh.access_token), "refresh": str(refresh)}


def too_many_attempts(retry_after: int) -> Response:
    return Response(
        {
            "detail": _("Too many failed logins. Try again in %(seconds)d seconds.")
            % {"seconds": retry_after},
            "code": "too_many_attempts",
            "retry_after": retry_after,
        },
        status=status.HTTP_429_TOO_MANY_REQUESTS,
        headers={"Retry-After": str(retry_after)},
    )


class LoginSerializer(serializers.Serializer):
    username = serializers.CharField(max_length=150)
    password = serializers.CharField(max_length=4096, trim_whitespace=False, write_only=True)


class TokenPairSerializer(serializers.Serializer):
    access = serializers.CharField()
    refresh = serializers.CharField()
    user = UserSerializer()


class LoginView(APIView):
    """Exchange username and password for an access and a refresh token."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []

    @extend_schema(request=LoginSerializer, responses={200: TokenPairSerializer})
    def post(self, request: Request) -> Response:
        data = LoginSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        username = data.validated_data["username"]
        limit = login_check(request, username)
        if limit.limited:
            return too_many_attempts(limit.retry_after)
        user = authenticate(
            request._request, username=username, password=data.validated_data["password"]
        )
        if user is None:
            login_failed(request, username)
            return Response(
                {"detail": _("Wrong username or password."), "code": "invalid_credentials"},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        services.user_logged_in(user=user)
        return Response({**tokens_for(user), "user": UserSerializer(user).data})


class RefreshSerializer(TokenRefreshSerializer):
    """simplejwt's refresh, which also refuses a deleted or deactivated user, and a
    token minted before the user's last password change (CVE-2024-22513 class)."""

    def validate(self, attrs: dict[str, Any]) -> dict[str, str]:
        refresh = self.token_class(attrs["refresh"])
        user = User.objects.filter(pk=refresh.payload.get(api_settings.USER_ID_CLAIM)).first()
        if user is None or not user.is_active:
            raise AuthenticationFailed(
                _("No active account found for the given token."), "no_active_account"
            )
        if refresh.get(api_settings.REVOKE_TOKEN_CLAIM) != get_md5_hash_password(user.password):
            raise AuthenticationFailed(
                _("The user's password has been changed."), "password_changed"
            )
        data = super().validate(attrs)
        return data


class RefreshView(TokenRefreshView):
    """Exchange a refresh token for a new access token and a new refresh token
    (the old refresh token is blacklisted)."""

    serializer_class = RefreshSerializer
    throttle_classes: list[Any] = []


class LogoutSerializer(serializers.Serializer):
    refresh = serializers.CharField()


class LogoutView(APIView):
    """Blacklist a refresh token so it can never be used again."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]

    @extend_schema(request=LogoutSerializer, responses={200: None})
    def post(self, request: Request) -> Response:
        data = LogoutSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        try:
            RefreshToken(data.validated_data["refresh"]).blacklist()
        except TokenError:
            return Response(
                {"detail": _("Token is invalid or expired."), "code": "token_not_valid"},
                status=status.HTTP_401_UNAUTHORIZED,
                headers={"WWW-Authenticate": 'Bearer realm="api"'},
            )
        return Response({"detail": _("Logged out.")})


class MeUpdateSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=150, required=False, allow_blank=True)
    availability = serializers.ChoiceField(User.Availability.choices, required=False)
    old_password = serializers.CharField(required=False, trim_whitespace=False, write_only=True)
    new_password = serializers.CharField(required=False, trim_whitespace=False, write_only=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "new_password" in attrs and "old_password" not in attrs:
            raise serializers.ValidationError(
                {"old_password": [_("Give your current password to change it.")]}
            )
        return attrs


class MeView(APIView):
    """The logged-in user: read, change name and availability, change password."""

    permission_classes = [IsAuthenticated]

    @extend_schema(responses=UserSerializer)
    def get(self, request: Request) -> Response:
        return Response(UserSerializer(request.user).data)

    @extend_schema(request=MeUpdateSerializer, responses=UserSerializer)
    def patch(self, request: Request) -> Response:
        user: User = request.user  # type: ignore[assignment]
        data = MeUpdateSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        fields = data.validated_data
        body: dict[str, Any] = {}
        try:
            # All or nothing: a rejected new password leaves the name unchanged too.
            with transaction.atomic():
                services.user_update(
                    user=user,
                    actor=user,
                    name=fields.get("name"),
                    availability=fields.get("availability"),
                )
                if "new_password" in fields:
                    services.user_change_password(
                        user=user,
                        old_password=fields["old_password"],
                        new_password=fields["new_password"],
                    )
        except DjangoValidationError as exc:
            user.refresh_from_db()
            raise password_errors(exc, "new_password") from None
        if "new_password" in fields:
            if isinstance(request.successful_authenticator, SessionAuthentication):
                # Keep this console session; every other one is logged out.
                update_session_auth_hash(request._request, user)
            # The caller's old tokens are revoked with the rest: hand out new ones.
            body.update(tokens_for(user))
        return Response({**UserSerializer(user).data, **body})

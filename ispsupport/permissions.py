from __future__ import annotations

from django.utils.translation import gettext_lazy as _
from rest_framework.permissions import BasePermission
from rest_framework.request import Request
from rest_framework.views import APIView


def is_admin(user: object) -> bool:
    """Superusers and staff with the admin role run the system."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return bool(getattr(user, "is_superuser", False) or getattr(user, "role", None) == "admin")


class IsAdminRole(BasePermission):
    message = _("Only administrators may do this.")

    def has_permission(self, request: Request, view: APIView) -> bool:
        return is_admin(request.user)

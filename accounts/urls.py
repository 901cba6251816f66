from django.urls import include, path
from rest_framework.routers import DefaultRouter

from accounts import api, auth

router = DefaultRouter(trailing_slash=True)
router.include_root_view = False
router.register("users", api.UserViewSet, basename="user")
router.register("teams", api.TeamViewSet, basename="team")

urlpatterns = [
    path("auth/login", auth.LoginView.as_view(), name="auth-login"),
    path("auth/refresh", auth.RefreshView.as_view(), name="auth-refresh"),
    path("auth/logout", auth.LogoutView.as_view(), name="auth-logout"),
    path("auth/me", auth.MeView.as_view(), name="auth-me"),
    path("", include(router.urls)),
]

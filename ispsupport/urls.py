from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path
from django.views.i18n import JavaScriptCatalog
from django_prometheus.exports import ExportToDjangoView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView

from accounts.views import ConsoleLoginView
from ispsupport import api, events, views

admin.site.site_header = "ISP Support"
admin.site.site_title = "ISP Support"

handler404 = "ispsupport.api.not_found"

urlpatterns = [
    path("", views.index, name="index"),
    path("health", views.health, name="health"),
    path("info", views.info, name="info"),
    path("metrics", ExportToDjangoView, name="metrics"),
    path("internal/events", events.relay, name="events-relay"),
    path("circuit-breakers", api.CircuitBreakerListView.as_view(), name="circuit-breakers"),
    path(
        "circuit-breakers/<str:name>/reset",
        api.CircuitBreakerResetView.as_view(),
        name="circuit-breaker-reset",
    ),
    path("api/v1/", api.ApiRootView.as_view(), name="api-root"),
    path("api/v1/", include("accounts.urls")),
    path("api/v1/whatsapp/", include("whatsapp.urls")),
    path("api/v1/", include("conversations.api_urls")),
    path("api/v1/subscribers/", include("subscribers.api_urls")),
    path("api/v1/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path(
        "api/v1/docs/", SpectacularSwaggerSplitView.as_view(url_name="api-schema"), name="api-docs"
    ),
    path("login/", ConsoleLoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    path("jsi18n/", JavaScriptCatalog.as_view(), name="javascript-catalog"),
    path("console/", include("conversations.urls")),
    path("console/panels/", include("chatbot.panel_urls")),
    path("simulator/", include("whatsapp.simulator_urls")),
    path("admin/", admin.site.urls),
]

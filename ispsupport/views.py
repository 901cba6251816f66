"""Operations endpoints: /, /health, /info. JSON, no authentication, no secrets."""

from __future__ import annotations

import platform

import django
from django.conf import settings
from django.http import HttpRequest, JsonResponse
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

import ispsupport
from ispsupport.breakers import storage_kind
from ispsupport.health import run_checks


@require_safe
def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "name": "ISP Support",
            "version": ispsupport.__version__,
            "links": {
                "console": reverse("console"),
                "api": reverse("api-root"),
                "docs": reverse("api-docs"),
                "schema": reverse("api-schema"),
                "admin": reverse("admin:index"),
                "health": reverse("health"),
                "info": reverse("info"),
                "metrics": "/metrics",
                "circuit_breakers": reverse("circuit-breakers"),
            },
        }
    )


@never_cache
@require_safe
def health(request: HttpRequest) -> JsonResponse:
    checks = run_checks(settings.HEALTH_CHECK_TIMEOUT)
    failing = sorted(name for name, result in checks.items() if result["status"] != "ok")
    body: dict[str, object] = {"status": "failing" if failing else "ok", "checks": checks}
    if failing:
        body["failing"] = failing
    return JsonResponse(body, status=503 if failing else 200)


def _backend_names() -> dict[str, str]:
    cache_backend = settings.CACHES["default"]["BACKEND"]
    layer_backend = settings.CHANNEL_LAYERS["default"]["BACKEND"]
    tasks_backend = settings.TASKS["default"]["BACKEND"]
    return {
        "database": settings.DATABASE_VENDOR,
        "cache": "redis" if "redis" in cache_backend.lower() else "locmem",
        "channel_layer": "redis" if "redis" in layer_backend.lower() else "in-memory",
        "tasks": "database" if "django_tasks_db" in tasks_backend else tasks_backend,
        "circuit_breakers": storage_kind(),
    }


@require_safe
def info(request: HttpRequest) -> JsonResponse:
    return JsonResponse(
        {
            "name": "ISP Support",
            "version": ispsupport.__version__,
            "python": platform.python_version(),
            "django": django.get_version(),
            "debug": settings.DEBUG,
            "language": settings.LANGUAGE_CODE,
            "time_zone": settings.TIME_ZONE,
            "backends": _backend_names(),
        }
    )

from __future__ import annotations

import json

import django
import pytest
from django.conf import settings
from django.test import Client

import ispsupport


def test_index_names_the_product_and_links_everywhere(client: Client) -> None:
    response = client.get("/")

    assert response.status_code == 200
    assert response.json() == {
        "name": "ISP Support",
        "version": ispsupport.__version__,
        "links": {
            "console": "/console/",
            "api": "/api/v1/",
            "docs": "/api/v1/docs/",
            "schema": "/api/v1/schema/",
            "admin": "/admin/",
            "health": "/health",
            "info": "/info",
            "metrics": "/metrics",
            "circuit_breakers": "/circuit-breakers",
        },
    }


def test_index_links_all_answer(client: Client, db: None) -> None:
    for url in client.get("/").json()["links"].values():
        assert client.get(url).status_code in (200, 302), url


def _expected_backends() -> dict[str, str]:
    redis = bool(settings.REDIS_URL)
    return {
        "database": settings.DATABASE_VENDOR,
        "cache": "redis" if redis else "locmem",
        "channel_layer": "redis" if redis else "in-memory",
        "tasks": "database",
        "circuit_breakers": "redis" if redis else "memory",
    }


def test_info_reports_versions_and_backends(client: Client) -> None:
    body = client.get("/info").json()

    assert body["version"] == ispsupport.__version__
    assert body["django"] == django.get_version()
    assert body["django"].startswith("5.2")
    assert body["backends"] == _expected_backends()
    assert body["language"] == settings.LANGUAGE_CODE
    assert body["time_zone"] == settings.TIME_ZONE


def test_info_never_shows_a_secret(client: Client) -> None:
    raw = client.get("/info").content.decode()

    assert settings.SECRET_KEY not in raw
    for key in settings.FERNET_KEYS:
        assert key not in raw
    assert "://" not in raw  # no database or Redis URL, with or without a password
    json.loads(raw)


@pytest.mark.postgres
def test_info_says_postgresql_when_database_url_is_postgres(client: Client) -> None:
    assert client.get("/info").json()["backends"]["database"] == "postgresql"


@pytest.mark.redis
def test_info_says_redis_when_redis_url_is_set(client: Client) -> None:
    backends = client.get("/info").json()["backends"]
    assert (backends["cache"], backends["channel_layer"], backends["circuit_breakers"]) == (
        "redis",
        "redis",
        "redis",
    )

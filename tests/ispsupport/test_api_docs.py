"""The API is described by a valid OpenAPI 3 schema with browsable docs, no CDN."""

from __future__ import annotations

import re
from io import StringIO

import yaml
from django.core.management import call_command
from django.test import Client


def test_schema_is_valid_and_warning_free(db: None) -> None:
    out = StringIO()

    call_command("spectacular", "--validate", "--fail-on-warn", stdout=out)

    schema = yaml.safe_load(out.getvalue())
    assert schema["openapi"].startswith("3.")
    assert {
        "/api/v1/auth/login",
        "/api/v1/auth/refresh",
        "/api/v1/auth/logout",
        "/api/v1/auth/me",
        "/api/v1/users/",
        "/api/v1/users/{id}/",
        "/api/v1/users/{id}/deactivate/",
        "/api/v1/teams/",
        "/api/v1/teams/{id}/members/",
        "/circuit-breakers",
        "/circuit-breakers/{name}/reset",
    } <= set(schema["paths"])


def test_docs_page_loads_only_local_assets(client: Client, db: None) -> None:
    page = client.get("/api/v1/docs/").content.decode()

    sources = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert sources, page
    assert all(src.startswith("/") for src in sources), sources
    assert "<script>" not in page  # CSP: no inline script

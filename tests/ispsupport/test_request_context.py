from __future__ import annotations

import gzip
import json
import logging
import re
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from django.http import HttpResponse
from django.test import AsyncClient, Client, override_settings
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from accounts.models import User
from tests.support import bearer, free_port, redis_cache

FRESH_ID = re.compile(r"^[0-9a-f]{32}$")
RESET_ROUTE = "/circuit-breakers/<str:name>/reset"
ERP = "https://erp.example.com"


def _request_lines(caplog: pytest.LogCaptureFixture) -> list[dict[str, Any]]:
    """The structlog event dicts of the request log lines."""
    return [r.msg for r in caplog.records if r.name == "ispsupport.request"]  # type: ignore[misc]


def _without_timing(line: dict[str, Any]) -> dict[str, Any]:
    assert isinstance(line.pop("duration_ms"), float)
    assert line.pop("timestamp")
    return line


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _assert_stamped(response: HttpResponse) -> None:
    assert FRESH_ID.match(response["X-Request-ID"])
    assert re.fullmatch(r"\d+\.\d{6}", response["X-Process-Time"])
    assert float(response["X-Process-Time"]) >= 0


@pytest.mark.parametrize(
    "incoming",
    ["abc", "0f8fad5b-d9cb-469f-a165-70867728950e", "lb:7f3a.edge_01", "a" * 128],
)
def test_a_valid_request_id_is_kept(client: Client, incoming: str) -> None:
    response = client.get("/", headers={"X-Request-ID": incoming})

    assert response["X-Request-ID"] == incoming


@pytest.mark.parametrize(
    "incoming",
    ["has spaces", "abc\nlevel=critical event=forged", "a" * 129, "a" * 200, "ação", ""],
)
def test_an_unsafe_request_id_is_replaced(
    client: Client, caplog: pytest.LogCaptureFixture, incoming: str
) -> None:
    with caplog.at_level(logging.INFO, logger="ispsupport.request"):
        response = client.get("/", headers={"X-Request-ID": incoming})

    fresh = response["X-Request-ID"]
    assert FRESH_ID.match(fresh)
    [line] = _request_lines(caplog)
    assert line["request_id"] == fresh


def test_every_request_gets_its_own_id(client: Client) -> None:
    ids = {client.get("/")["X-Request-ID"] for _ in range(3)}

    assert len(ids) == 3


def test_every_response_is_stamped_whatever_its_status(client: Client, db: None) -> None:
    ok = client.get("/")
    missing = client.get("/no-such-page")
    wrong_method = client.post("/health")
    refused = client.post("/circuit-breakers/whatsapp/reset")

    assert [r.status_code for r in (ok, missing, wrong_method, refused)] == [200, 404, 405, 401]
    for response in (ok, missing, wrong_method, refused):
        _assert_stamped(response)


def test_the_async_stack_stamps_and_logs_too(admin: User, caplog: pytest.LogCaptureFixture) -> None:
    browser = AsyncClient()
    async_to_sync(browser.aforce_login)(admin)

    with caplog.at_level(logging.INFO, logger="ispsupport.request"):
        response = async_to_sync(browser.get)("/circuit-breakers", headers={"X-Request-ID": "a-1"})

    assert response.status_code == 200
    assert response["X-Request-ID"] == "a-1"
    [line] = _request_lines(caplog)
    assert line["request_id"] == "a-1"
    assert line["route"] == "/circuit-breakers"
    assert line["user_id"] == admin.pk


@override_settings(CORS_ALLOWED_ORIGINS=[ERP])
def test_an_allowed_origin_may_read_the_request_headers(client: Client) -> None:
    response = client.get("/circuit-breakers", headers={"Origin": ERP})

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ERP
    exposed = {h.strip() for h in response["Access-Control-Expose-Headers"].split(",")}
    assert exposed == {"X-Request-ID", "X-Process-Time"}


@override_settings(CORS_ALLOWED_ORIGINS=[ERP])
def test_an_allowed_origin_may_send_a_request_id(client: Client) -> None:
    response = client.options(
        "/circuit-breakers",
        headers={
            "Origin": ERP,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization, x-request-id",
        },
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == ERP
    allowed = {h.strip() for h in response["Access-Control-Allow-Headers"].split(",")}
    assert {"authorization", "x-request-id"} <= allowed


@override_settings(CORS_ALLOWED_ORIGINS=[ERP])
def test_an_unknown_origin_gets_no_cors_headers(client: Client) -> None:
    response = client.get("/circuit-breakers", headers={"Origin": "https://evil.example.com"})

    assert response.status_code == 200
    assert "Access-Control-Allow-Origin" not in response
    assert "Access-Control-Expose-Headers" not in response


def test_json_is_gzipped_for_clients_that_accept_it(client: Client) -> None:
    plain = client.get("/circuit-breakers")
    zipped = client.get("/circuit-breakers", headers={"Accept-Encoding": "gzip"})

    assert "Content-Encoding" not in plain
    assert zipped["Content-Encoding"] == "gzip"
    assert "Accept-Encoding" in zipped["Vary"]
    assert json.loads(gzip.decompress(zipped.content)) == plain.json()
    _assert_stamped(zipped)


def test_content_security_policy_allows_no_inline_script(client: Client) -> None:
    header = client.get("/")["Content-Security-Policy"]

    directives = {name: values for name, *values in (part.split() for part in header.split(";"))}
    assert directives["script-src"] == ["'self'"]
    assert directives["default-src"] == ["'self'"]
    assert directives["object-src"] == ["'none'"]
    assert directives["frame-ancestors"] == ["'none'"]
    assert "'unsafe-inline'" not in header
    assert "'unsafe-eval'" not in header


def test_the_log_line_names_the_route_and_the_token_user(
    client: Client, admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ispsupport.request"):
        response = client.post(
            "/circuit-breakers/whatsapp/reset",
            headers={**bearer(admin), "X-Request-ID": "trace-7"},
        )

    assert response.status_code == 200
    [line] = _request_lines(caplog)
    assert _without_timing(line) == {
        "event": "request",
        "level": "info",
        "logger": "ispsupport.request",
        "request_id": "trace-7",
        "method": "POST",
        "path": "/circuit-breakers/whatsapp/reset",
        "route": RESET_ROUTE,
        "status": 200,
        "user_id": admin.pk,
    }


def test_the_log_line_names_the_session_user(
    admin_client: Client, admin: User, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ispsupport.request"):
        admin_client.get("/circuit-breakers")

    [line] = _request_lines(caplog)
    assert (line["route"], line["status"], line["user_id"]) == ("/circuit-breakers", 200, admin.pk)


def test_the_log_line_of_an_anonymous_miss(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.INFO, logger="ispsupport.request"):
        response = client.get("/wp-login.php")

    [line] = _request_lines(caplog)
    assert _without_timing(line) == {
        "event": "request",
        "level": "info",
        "logger": "ispsupport.request",
        "request_id": response["X-Request-ID"],
        "method": "GET",
        "path": "/wp-login.php",
        "route": "<unmatched>",
        "status": 404,
        "user_id": None,
    }


def test_a_server_error_is_logged_as_a_warning(
    client: Client, db: None, caplog: pytest.LogCaptureFixture
) -> None:
    dead = redis_cache(f"redis://127.0.0.1:{free_port()}/0", timeout=0.2)

    with caplog.at_level(logging.INFO, logger="ispsupport.request"), override_settings(CACHES=dead):
        response = client.get("/health")

    assert response.status_code == 503
    [line] = _request_lines(caplog)
    assert (line["level"], line["status"], line["route"]) == ("warning", 503, "/health")


def test_requests_are_counted_by_route_template(client: Client, admin: User) -> None:
    labels = {"method": "POST", "route": RESET_ROUTE, "status": "200"}
    before = _sample("http_requests_total", **labels)
    before_timed = _sample("http_request_duration_seconds_count", method="POST", route=RESET_ROUTE)

    for name in ("whatsapp", "gemini"):
        response = client.post(f"/circuit-breakers/{name}/reset", headers=bearer(admin))
        assert response.status_code == 200

    assert _sample("http_requests_total", **labels) - before == 2
    assert (
        _sample("http_request_duration_seconds_count", method="POST", route=RESET_ROUTE)
        - before_timed
        == 2
    )
    by_path = {**labels, "route": "/circuit-breakers/whatsapp/reset"}
    assert REGISTRY.get_sample_value("http_requests_total", by_path) is None


def test_unmatched_paths_share_one_series(client: Client) -> None:
    labels = {"method": "GET", "route": "<unmatched>", "status": "404"}
    before = _sample("http_requests_total", **labels)

    for path in ("/.env", "/wp-admin/", "/a/b/c"):
        assert client.get(path).status_code == 404

    assert _sample("http_requests_total", **labels) - before == 3


def test_metrics_page_exports_the_http_series(client: Client) -> None:
    before = _sample("http_requests_total", method="GET", route="/circuit-breakers", status="200")
    before_timed = _sample(
        "http_request_duration_seconds_count", method="GET", route="/circuit-breakers"
    )
    client.get("/circuit-breakers")
    client.get("/circuit-breakers")

    response = client.get("/metrics")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    exported = {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        for sample in family.samples
    }
    route = (("method", "GET"), ("route", "/circuit-breakers"))
    assert exported["http_requests_total", (*route, ("status", "200"))] == before + 2
    assert exported["http_request_duration_seconds_count", route] == before_timed + 2
    # django-prometheus' own series sit beside ours.
    assert any(name.startswith("django_http_") for name, _ in exported)

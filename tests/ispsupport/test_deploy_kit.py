"""The deployment kit (deploy/): validated by deploy/check, and the nginx site
really served in front of a stand-in upstream, so the contract the settings
rely on (Host, X-Forwarded-For/-Proto, websockets, static, no media) is
observed rather than read.

Without nginx or promtool these tests skip and say why; CI installs them
(apt-get install nginx prometheus) and sets REQUIRE_DEPLOY_TOOLS=1, which
turns a missing tool into a failure.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import http.client
import importlib.util
import json
import os
import re
import shutil
import socket
import socketserver
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from django.test import RequestFactory

from accounts.ratelimit import client_ip
from ispsupport.asgi import websocket_origin_allowed
from tests.support import ROOT, free_port

CHECK = ROOT / "deploy" / "check"
SITE = ROOT / "deploy" / "nginx" / "ispsupport.conf"
HOST = "suporte.example.com"
WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


def _load_validate() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "deploy_validate", ROOT / "deploy" / "validate.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # dataclasses look their module up in sys.modules while the class is built.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


validate = _load_validate()


def _need(tool: str) -> str:
    found = shutil.which(tool) or (
        f"/usr/sbin/{tool}" if os.path.exists(f"/usr/sbin/{tool}") else None
    )
    if found:
        return found
    reason = f"{tool} is not installed (Debian: apt-get install nginx prometheus)"
    if os.environ.get("REQUIRE_DEPLOY_TOOLS") == "1":
        pytest.fail(f"REQUIRE_DEPLOY_TOOLS=1 but {reason}", pytrace=False)
    pytest.skip(reason)


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), *args],
        env={**os.environ, "PYTHON_FOR_CHECK": sys.executable},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


# --- deploy/check on the kit as shipped ---------------------------------------------


@pytest.mark.parametrize(
    ("piece", "tools", "says"),
    [
        ("nginx", ("nginx",), ("syntax is ok", "test is successful")),
        (
            "rules",
            ("promtool",),
            (
                "$ promtool check rules alerts.yml",
                "SUCCESS: 21 rules found",
                "$ promtool test rules alerts.test.yml",
                "$ promtool check config prometheus.yml",
            ),
        ),
        ("dashboard", (), ("queries over exported metrics",)),
        ("units", (), ("services carry user, env file, stop and hardening settings",)),
        ("consistency", (), ("web ports [8001, 8002, 8003, 8004], workers [9101, 9102]",)),
    ],
)
def test_deploy_check_passes(piece: str, tools: tuple[str, ...], says: tuple[str, ...]) -> None:
    for tool in tools:
        _need(tool)

    done = _check(piece)

    assert done.returncode == 0, done.stdout + done.stderr
    assert f"ok: {piece}" in done.stdout
    assert "deploy/check: 1 of 1 pieces passed" in done.stdout
    for text in says:
        assert text in done.stdout


def test_the_alerts_and_the_dashboard_read_only_metrics_the_project_exports() -> None:
    """No metric is left "proposed": each rule and panel has data to read."""
    exported = validate.exported_metrics()

    done = _check("dashboard")

    assert done.returncode == 0, done.stdout + done.stderr
    assert validate.PROPOSED == {}
    assert "note:" not in done.stdout
    assert exported["circuit_breaker_state"] == {"breaker", "state"}
    assert exported["conversations_queue_oldest_wait_seconds"] == {"team"}
    assert exported["conversations_first_response_overdue"] == {"team"}
    assert exported["tasks_oldest_ready_age_seconds"] == frozenset()


def test_alerts_cover_what_the_issue_asks() -> None:
    import yaml

    rules = yaml.safe_load((ROOT / "deploy/prometheus/alerts.yml").read_text(encoding="utf-8"))
    alerts = {r["alert"]: r for g in rules["groups"] for r in g["rules"]}

    assert "circuit_breaker_state" in alerts["IspSupportCircuitBreakerOpen"]["expr"]
    assert alerts["IspSupportCircuitBreakerOpen"]["for"] == "2m"
    assert "message_queue_size" in alerts["IspSupportMessageQueueGrowing"]["expr"]
    assert 'state="queued"' in alerts["IspSupportConversationQueueGrowing"]["expr"]
    assert "/api/v1/whatsapp/webhook" in alerts["IspSupportWebhookErrors"]["expr"]
    assert (
        "conversations_first_response_overdue"
        in alerts["IspSupportFirstResponseSlaBreached"]["expr"]
    )
    assert 'up{job="ispsupport-worker"}' in alerts["IspSupportNoWorkerRunning"]["expr"]
    assert 'state="unknown"' in alerts["IspSupportCircuitBreakerStateUnknown"]["expr"]
    assert "tasks_oldest_ready_age_seconds" in alerts["IspSupportTasksNotPickedUp"]["expr"]
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in {"critical", "warning"}, name
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], name


# --- deploy/check catches mistakes ------------------------------------------------------


def test_dashboard_check_refuses_a_metric_the_project_does_not_export(tmp_path: Path) -> None:
    dashboard = json.loads((ROOT / "deploy/grafana/ispsupport.json").read_text(encoding="utf-8"))
    panel = next(p for p in dashboard["panels"] if p["type"] != "row")
    panel["targets"][0]["expr"] = 'sum(rate(http_requests_totl{status="500"}[5m]))'
    panel["datasource"] = {"type": "prometheus", "uid": "P1809F7CD0C75ACF3"}
    broken = tmp_path / "dashboard.json"
    broken.write_text(json.dumps(dashboard), encoding="utf-8")

    done = _check("dashboard", "--dashboard", str(broken))

    assert done.returncode == 1
    assert "http_requests_totl is not a metric the project exports" in done.stdout
    assert "datasource must be" in done.stdout
    assert "failed: dashboard" in done.stderr


def test_dashboard_check_refuses_invalid_json(tmp_path: Path) -> None:
    broken = tmp_path / "dashboard.json"
    broken.write_text('{"panels": [', encoding="utf-8")

    done = _check("dashboard", "--dashboard", str(broken))

    assert done.returncode == 1
    assert "is not valid JSON" in done.stdout


def test_rules_check_refuses_wrong_labels_and_missing_severity(tmp_path: Path) -> None:
    _need("promtool")
    rules = tmp_path / "alerts.yml"
    rules.write_text(
        """
groups:
  - name: broken
    rules:
      - alert: Typo
        expr: sum(rate(http_requests_total{stauts="500"}[5m])) > 0
        annotations: {summary: s, description: d}
      - alert: NoSuchMetric
        expr: ispsupport_magic_total > 0
        labels: {severity: page}
        annotations: {summary: s}
""",
        encoding="utf-8",
    )

    done = _check("rules", "--rules", str(rules))

    assert done.returncode == 1, done.stdout
    assert "Typo: http_requests_total has no label 'stauts'" in done.stdout
    assert "Typo: severity must be one of ['critical', 'warning']" in done.stdout
    assert "NoSuchMetric: ispsupport_magic_total is not a metric the project exports" in done.stdout
    assert "NoSuchMetric: no description annotation" in done.stdout


def test_rules_check_fails_on_promtool_syntax_errors(tmp_path: Path) -> None:
    _need("promtool")
    rules = tmp_path / "alerts.yml"
    rules.write_text(
        "groups:\n  - name: x\n    rules:\n      - alert: Bad\n        expr: sum(up[5m]\n",
        encoding="utf-8",
    )

    done = _check("rules", "--rules", str(rules))

    assert done.returncode == 1
    assert "promtool check rules failed" in done.stdout


def test_nginx_check_refuses_a_broken_site_and_exposed_media(tmp_path: Path) -> None:
    _need("nginx")
    text = SITE.read_text(encoding="utf-8")
    broken = tmp_path / "broken.conf"
    broken.write_text(text.replace("least_conn;", "least_conn"), encoding="utf-8")
    exposed = tmp_path / "exposed.conf"
    exposed.write_text(
        re.sub(
            r"location \^~ /media/ \{[^}]*\}",
            "location ^~ /media/ { alias /var/lib/ispsupport/media/; }",
            text,
        ),
        encoding="utf-8",
    )

    refused = _check("nginx", "--site", str(broken))
    media = _check("nginx", "--site", str(exposed))

    assert refused.returncode == 1
    assert "nginx -t refused" in refused.stdout
    assert media.returncode == 1
    assert "/media/ must answer 404, never expose MEDIA_ROOT" in media.stdout


def test_units_check_refuses_daphne_proxy_headers(tmp_path: Path) -> None:
    units = tmp_path / "systemd"
    shutil.copytree(ROOT / "deploy" / "systemd", units)
    web = units / "ispsupport-web@.service"
    web.write_text(
        web.read_text(encoding="utf-8").replace("--port %i", "--port %i --proxy-headers"),
        encoding="utf-8",
    )

    done = _check("units", "--units", str(units))

    assert done.returncode == 1
    assert "--proxy-headers trusts the client-written X-Forwarded-For" in done.stdout


def test_a_missing_tool_is_reported_not_passed(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        (bin_dir / tool).symlink_to(shutil.which(tool) or f"/bin/{tool}")

    done = subprocess.run(
        [str(CHECK), "rules"],
        env={**os.environ, "PYTHON_FOR_CHECK": sys.executable, "PATH": str(bin_dir)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 3, done.stdout + done.stderr
    assert "MISSING TOOL: promtool (apt-get install nginx prometheus)" in done.stdout
    assert "not run, tool missing: rules (promtool)" in done.stderr


def test_promql_parser_finds_names_labels_and_grouping() -> None:
    parsed = validate.parse_promql(
        'sum without (instance, job) (rate(http_requests_total{route=~"/a/?", status=~"5.."}[5m]))'
        " / on (env) group_left max by (le) (x_bucket offset 5m) and bool up"
    )

    assert [(s.metric, s.labels) for s in parsed.selectors] == [
        ("http_requests_total", {"route", "status"}),
        ("x_bucket", set()),
        ("up", set()),
    ]
    assert parsed.grouping == {"instance", "job", "env", "le"}


# --- the nginx site, served for real ----------------------------------------------------


@dataclass
class Upstream:
    """Stands in for daphne: records each request and answers with what it saw."""

    server: socketserver.ThreadingTCPServer
    seen: list[dict[str, Any]] = field(default_factory=list)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def last(self, path_prefix: str) -> dict[str, Any]:
        return [r for r in self.seen if r["path"].startswith(path_prefix)][-1]


def _start_upstream() -> Upstream:
    seen: list[dict[str, Any]] = []

    class Handler(socketserver.StreamRequestHandler):
        def handle(self) -> None:
            while True:
                line = self.rfile.readline()
                if not line:
                    return
                method, path, _ = line.decode("latin-1").split(" ", 2)
                headers: dict[str, str] = {}
                while (raw := self.rfile.readline()) not in (b"\r\n", b"\n", b""):
                    name, _, value = raw.decode("latin-1").partition(":")
                    headers[name.strip().lower()] = value.strip()
                body = self.rfile.read(int(headers.get("content-length", "0")))
                record = {"method": method, "path": path, "headers": headers, "size": len(body)}
                seen.append(record)
                if headers.get("upgrade", "").lower() == "websocket":
                    digest = hashlib.sha1(  # noqa: S324 - the websocket handshake's own hash
                        (headers["sec-websocket-key"] + WS_GUID).encode()
                    ).digest()
                    self.wfile.write(
                        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                        b"Connection: Upgrade\r\nSec-WebSocket-Accept: "
                        + base64.b64encode(digest)
                        + b"\r\n\r\n"
                    )
                    self.wfile.flush()
                    data = self.request.recv(1024)
                    self.request.sendall(b"echo:" + data)
                    return
                payload = json.dumps(record).encode()
                self.wfile.write(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                    + f"Content-Length: {len(payload)}\r\n\r\n".encode()
                    + payload
                )
                self.wfile.flush()

    socketserver.ThreadingTCPServer.allow_reuse_address = True
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Upstream(server, seen)


@dataclass
class Served:
    upstream: Upstream
    https: int
    http: int
    metrics: int
    logs: Path
    state: Path


def _replace(text: str, old: str, new: str) -> str:
    assert old in text, f"the site no longer contains {old!r}: update this test"
    return text.replace(old, new)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    nginx = _need("nginx")
    directory = tmp_path_factory.mktemp("nginx")
    upstream = _start_upstream()
    https, http_port, metrics = free_port(), free_port(), free_port()
    state = directory / "state"
    # The site as shipped, with only its addresses moved onto free loopback ports
    # (IPv6 may be missing here) and STATIC_ROOT's parent onto a temp folder.
    text = SITE.read_text(encoding="utf-8")
    text = re.sub(r"^\s*listen \[::\]:\d+[^;]*;\n", "", text, flags=re.MULTILINE)
    text = _replace(
        text, "listen 80 default_server;", f"listen 127.0.0.1:{http_port} default_server;"
    )
    text = _replace(
        text, "listen 443 ssl default_server;", f"listen 127.0.0.1:{https} ssl default_server;"
    )
    text = _replace(text, "listen 80;", f"listen 127.0.0.1:{http_port};")
    text = _replace(text, "listen 443 ssl http2;", f"listen 127.0.0.1:{https} ssl http2;")
    text = _replace(text, "listen 127.0.0.1:9180;", f"listen 127.0.0.1:{metrics};")
    text = re.sub(r"server 127\.0\.0\.1:800\d", f"server 127.0.0.1:{upstream.port}", text)
    # A variable keeps proxy_pass legal in the regex location, as in the site.
    text = _replace(
        text,
        "proxy_pass http://127.0.0.1:$ispsupport_port/metrics;",
        f"set $upstream_port {upstream.port}; proxy_pass http://127.0.0.1:$upstream_port/metrics;",
    )
    text = _replace(text, "root /var/lib/ispsupport;", f"root {state};")
    # As root, nginx's workers would drop to nobody, who cannot enter pytest's 0700 folders.
    main_extra = "user root;" if os.geteuid() == 0 else ""
    conf = validate.nginx_test_config(text, directory, main_extra=main_extra)
    (state / "static" / "css").mkdir(parents=True)
    css = b"body { color: #222; }\n" * 50
    (state / "static" / "css" / "app.0123456789ab.css").write_bytes(css)
    (state / "static" / "css" / "app.0123456789ab.css.gz").write_bytes(gzip.compress(css))
    (state / "static" / "css" / "app.css").write_bytes(css)
    (state / "media" / "whatsapp").mkdir(parents=True)
    (state / "media" / "whatsapp" / "photo.jpg").write_bytes(b"\xff\xd8personal")
    process = subprocess.Popen(
        [nginx, "-p", str(directory), "-c", str(conf), "-e", str(directory / "logs" / "err.log"),
         "-g", "daemon off;"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", https), timeout=1).close()
                break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    out = process.stdout.read().decode() if process.stdout else ""
                    raise AssertionError(f"nginx did not start: {out}") from None
                time.sleep(0.05)
        yield Served(upstream, https, http_port, metrics, directory / "logs", state)
    finally:
        process.terminate()
        process.wait(timeout=10)
        upstream.server.shutdown()
        upstream.server.server_close()


def _tls_context() -> ssl.SSLContext:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # the throwaway self-signed certificate
    return context


class _Https(http.client.HTTPSConnection):
    """Connects to 127.0.0.1 but says suporte.example.com in SNI, as a browser would."""

    def __init__(self, port: int, sni: str | None = HOST) -> None:
        super().__init__(HOST, port, timeout=10, context=_tls_context())
        self._port, self._sni = port, sni

    def connect(self) -> None:
        raw = socket.create_connection(("127.0.0.1", self._port), timeout=10)
        self.sock = _tls_context().wrap_socket(raw, server_hostname=self._sni)


def _request(
    connection: http.client.HTTPConnection,
    path: str,
    *,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
) -> tuple[int, http.client.HTTPMessage, bytes]:
    connection.request(method, path, body=body, headers={"Host": HOST, **(headers or {})})
    response = connection.getresponse()
    data = response.read()
    connection.close()
    return response.status, response.headers, data


def test_proxied_requests_carry_what_the_settings_trust(served: Served, settings: Any) -> None:
    status, _, body = _request(
        _Https(served.https),
        "/console/?q=11999998888",
        headers={"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http"},
    )

    assert status == 200
    seen = json.loads(body)["headers"]
    assert seen["host"] == HOST
    # nginx overwrites the client's claim: SECURE_PROXY_SSL_HEADER may trust it.
    assert seen["x-forwarded-proto"] == "https"
    assert seen["x-forwarded-for"] == "203.0.113.9, 127.0.0.1"
    assert "connection" not in seen  # empty: upstream keepalive, not an upgrade
    assert re.fullmatch(r"[0-9a-f]{32}", seen["x-request-id"])
    # With TRUSTED_PROXY_COUNT=1 the project takes nginx's entry, not the forged one.
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get(
        "/", REMOTE_ADDR="127.0.0.1", HTTP_X_FORWARDED_FOR=seen["x-forwarded-for"]
    )
    assert client_ip(request) == "127.0.0.1"


def test_a_callers_request_id_is_kept_and_logged_without_query_strings(served: Served) -> None:
    _request(_Https(served.https), "/console/?q=11999998888", headers={"X-Request-ID": "abc-123"})
    _request(
        _Https(served.https),
        "/api/v1/whatsapp/webhook?hub.mode=subscribe&hub.verify_token=s3cret-verify&hub.challenge=7",
    )

    assert served.upstream.last("/console/")["headers"]["x-request-id"] == "abc-123"
    log = (served.logs / "ispsupport.access.log").read_text(encoding="utf-8")
    lines = [json.loads(line) for line in log.splitlines()]
    assert {"request_id": "abc-123", "path": "/console/", "status": 200}.items() <= next(
        line for line in lines if line["request_id"] == "abc-123"
    ).items()
    assert "11999998888" not in log
    assert "s3cret-verify" not in log


def test_websockets_are_upgraded_and_tunnelled(served: Served) -> None:
    key = base64.b64encode(os.urandom(16)).decode()
    with _tls_context().wrap_socket(
        socket.create_connection(("127.0.0.1", served.https), timeout=10), server_hostname=HOST
    ) as sock:
        sock.sendall(
            (
                f"GET /ws/console/ HTTP/1.1\r\nHost: {HOST}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nOrigin: https://{HOST}\r\n\r\n"
            ).encode()
        )
        head = b""
        while b"\r\n\r\n" not in head:
            head += sock.recv(1024)
        sock.sendall(b"ping")
        echoed = sock.recv(1024)

    assert head.startswith(b"HTTP/1.1 101")
    assert echoed == b"echo:ping"
    seen = served.upstream.last("/ws/console/")["headers"]
    assert seen["upgrade"] == "websocket"
    assert seen["connection"] == "upgrade"
    # The Host and Origin that reach daphne pass the project's own origin check.
    scope = {"headers": [(b"host", seen["host"].encode()), (b"origin", seen["origin"].encode())]}
    with pytest.MonkeyPatch.context() as patch:
        from django.conf import settings

        patch.setattr(settings, "ALLOWED_HOSTS", [HOST])
        assert websocket_origin_allowed(scope)


def test_static_files_are_served_by_nginx_with_cache_headers(served: Served) -> None:
    before = len(served.upstream.seen)

    status, hashed, body = _request(
        _Https(served.https),
        "/static/css/app.0123456789ab.css",
        headers={"Accept-Encoding": "gzip"},
    )
    plain_status, plain, _ = _request(_Https(served.https), "/static/css/app.css")

    assert status == 200
    assert hashed["Content-Encoding"] == "gzip"
    assert gzip.decompress(body).startswith(b"body { color: #222; }")
    assert hashed["Cache-Control"] == "public, max-age=31536000, immutable"
    assert hashed["X-Content-Type-Options"] == "nosniff"
    assert plain_status == 200
    assert plain["Cache-Control"] == "public, max-age=3600"
    assert len(served.upstream.seen) == before


def test_media_metrics_and_the_relay_are_not_public(served: Served) -> None:
    before = len(served.upstream.seen)

    media, _, media_body = _request(_Https(served.https), "/media/whatsapp/photo.jpg")
    metrics, _, _ = _request(_Https(served.https), "/metrics")
    relay, _, _ = _request(_Https(served.https), "/internal/events", method="POST", body=b"{}")

    assert (media, metrics, relay) == (404, 404, 404)
    assert b"personal" not in media_body
    assert len(served.upstream.seen) == before


def test_webhook_bodies_up_to_metas_3_mb_pass(served: Served) -> None:
    fits = b"{" + b" " * (2_900_000) + b"}"
    status, _, body = _request(
        _Https(served.https), "/api/v1/whatsapp/webhook", method="POST", body=fits
    )
    too_big, _, _ = _request(
        _Https(served.https), "/api/v1/whatsapp/webhook", method="POST", body=b" " * 3_200_000
    )

    assert status == 200
    assert json.loads(body)["size"] == len(fits)
    assert too_big == 413


def test_plain_http_redirects_and_unknown_hosts_get_nothing(served: Served) -> None:
    status, headers, _ = _request(
        http.client.HTTPConnection("127.0.0.1", served.http, timeout=10), "/console/?x=1"
    )

    assert status == 301
    assert headers["Location"] == f"https://{HOST}/console/?x=1"
    with pytest.raises(http.client.RemoteDisconnected):
        conn = http.client.HTTPConnection("127.0.0.1", served.http, timeout=10)
        conn.request("GET", "/", headers={"Host": "203.0.113.50"})
        conn.getresponse()
    with pytest.raises(ssl.SSLError):
        _request(_Https(served.https, sni="other.example.net"), "/")


def test_metrics_listener_reaches_each_process_with_an_allowed_host(served: Served) -> None:
    listener = http.client.HTTPConnection("127.0.0.1", served.metrics, timeout=10)

    status, _, body = _request(listener, "/metrics/8001")
    other, _, _ = _request(http.client.HTTPConnection("127.0.0.1", served.metrics), "/metrics/5432")

    assert status == 200
    seen = json.loads(body)
    assert seen["path"] == "/metrics"
    assert seen["headers"]["host"] == HOST
    assert other == 404

"""End to end: the real daphne process and the script behind `make run`."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from email.message import Message
from pathlib import Path
from typing import Any
from urllib.error import HTTPError
from urllib.request import urlopen

import pytest

from tests.support import ROOT, free_port, server_env, wait_for_http

pytestmark = pytest.mark.server

_SERVICE_VARS = ("DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES")


def _get(url: str) -> tuple[int, dict[str, Any], Message]:
    try:
        with urlopen(url, timeout=10) as response:  # noqa: S310 - loopback only
            return response.status, json.loads(response.read()), response.headers
    except HTTPError as exc:
        return exc.code, json.loads(exc.read()), exc.headers


def _stop(process: subprocess.Popen[str]) -> str:
    """SIGTERM the process group, wait for all of it, return what it printed."""
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
    try:
        out, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        out, _ = process.communicate()
    return out


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.fixture
def embedded_env(tmp_path: Path) -> dict[str, str]:
    """A fresh machine's environment: nothing set but what the demo needs."""
    env = server_env()
    for name in (
        *_SERVICE_VARS,
        "DEBUG",
        "SECRET_KEY",
        "ALLOWED_HOSTS",
        "SECURE_SSL_REDIRECT",
        "DJANGO_SUPERUSER_USERNAME",
        "DJANGO_SUPERUSER_PASSWORD",
    ):
        env.pop(name, None)
    return {
        **env,
        "PORT": str(free_port()),
        "VENV": sys.prefix,
        "DATABASE_URL": f"sqlite:///{tmp_path / 'db.sqlite3'}",
        "STATIC_ROOT": str(tmp_path / "static"),
    }


@pytest.fixture
def served(embedded_env: dict[str, str]) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    process = subprocess.Popen(
        ["scripts/serve"],
        cwd=ROOT,
        env=embedded_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{embedded_env['PORT']}"
    try:
        wait_for_http(f"{base}/health", timeout=60, process=process)
        yield base, process
    finally:
        _stop(process)


def test_run_script_serves_the_product_on_embedded_defaults(
    served: tuple[str, subprocess.Popen[str]], embedded_env: dict[str, str], tmp_path: Path
) -> None:
    base, process = served

    status, health, headers = _get(f"{base}/health")
    assert status == 200, health
    assert health["status"] == "ok"
    assert set(health["checks"]) == {"database", "cache", "channel_layer", "tasks"}
    assert len(headers["X-Request-ID"]) == 32
    _, info, _ = _get(f"{base}/info")
    assert info["backends"] == {
        "database": "sqlite",
        "cache": "locmem",
        "channel_layer": "in-memory",
        "tasks": "database",
        "circuit_breakers": "memory",
    }

    # The worker started beside daphne runs what is enqueued.
    marker = tmp_path / "worker-ran"
    enqueue = (
        "from ispsupport.tasks import enqueue; "
        "from tests.ispsupport.server_tasks import touch_file; "
        f"enqueue(touch_file, {str(marker)!r})"
    )
    subprocess.run(
        [sys.executable, "manage.py", "shell", "-c", enqueue],
        cwd=ROOT,
        env={**embedded_env, "DEBUG": "true"},
        check=True,
        capture_output=True,
        timeout=60,
    )
    deadline = time.monotonic() + 30
    while not marker.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert marker.read_text() == "done by the worker"

    output = _stop(process)
    assert "Demo admin created" in output
    assert "username: admin" in output
    # Daphne and the worker both went away with the script.
    deadline = time.monotonic() + 10
    while _group_alive(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not _group_alive(process.pid)


def test_health_fails_fast_with_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    port = free_port()
    env = server_env(
        DEBUG="true",
        # Nothing listens on a freshly freed port: every connect is refused.
        DATABASE_URL=f"postgres://postgres:hunter2@127.0.0.1:{free_port()}/ispsupport",
        HEALTH_CHECK_TIMEOUT="1",
        STATIC_ROOT=str(tmp_path / "static"),
    )
    env.pop("REDIS_URL", None)
    process = subprocess.Popen(
        [
            f"{sys.prefix}/bin/daphne",
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "ispsupport.asgi:application",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/info", timeout=30, process=process)
        started = time.monotonic()
        status, body, headers = _get(f"http://127.0.0.1:{port}/health")
        elapsed = time.monotonic() - started
    finally:
        output = _stop(process)

    assert status == 503
    assert body["status"] == "failing"
    assert "database" in body["failing"]
    assert body["checks"]["database"]["status"] == "failing"
    assert body["checks"]["cache"]["status"] == "ok"
    assert elapsed < 3, f"/health took {elapsed:.1f} s"
    assert "X-Request-ID" in headers
    assert "hunter2" not in json.dumps(body)
    assert "hunter2" not in output

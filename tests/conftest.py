"""Shared fixtures.

Tests marked ``postgres`` or ``redis`` need the real service (DATABASE_URL /
REDIS_URL). Without it they skip, saying why, except under REQUIRE_SERVICES=1
(CI's services run), where a missing service fails them: a green services run
must mean the services were really used.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.error import URLError
from urllib.request import urlopen

import pytest
from django.conf import settings
from django.test import Client
from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User
from ispsupport import breakers

ROOT = Path(__file__).resolve().parent.parent


def _service_missing(item: pytest.Item) -> str | None:
    if item.get_closest_marker("postgres") and settings.DATABASE_VENDOR != "postgresql":
        return "needs PostgreSQL: set DATABASE_URL=postgres://..."
    if item.get_closest_marker("redis") and not settings.REDIS_URL:
        return "needs Redis: set REDIS_URL=redis://..."
    return None


def pytest_runtest_setup(item: pytest.Item) -> None:
    reason = _service_missing(item)
    if reason is None:
        return
    if os.environ.get("REQUIRE_SERVICES") == "1":
        pytest.fail(f"REQUIRE_SERVICES=1 but this test {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def _static_without_manifest(settings: object) -> None:
    """Production's manifest storage needs collectstatic first; tests use finders."""
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }


@pytest.fixture(autouse=True)
def _fresh_breakers() -> Iterator[None]:
    """Every test starts with closed breakers, in memory or in Redis."""
    for name in breakers.SPECS:
        breakers.get_breaker(name).close()
    yield
    for name in breakers.SPECS:
        breakers.get_breaker(name).close()
    breakers.forget_breakers()


@pytest.fixture(autouse=True)
def _clear_cache() -> Iterator[None]:
    from django.core.cache import cache

    yield
    try:
        if hasattr(cache, "delete_pattern"):
            # Only our own prefixed keys: REDIS_URL may be a shared Redis.
            cache.delete_pattern("*")
        else:
            cache.clear()
    except Exception:  # noqa: S110 - a test may have pointed the cache at a dead server
        pass


@pytest.fixture
def admin(db: None) -> User:
    return User.objects.create_user(
        username="ana.admin", password="Senha-Forte-123", role=User.Role.ADMIN
    )


@pytest.fixture
def agent(db: None) -> User:
    return User.objects.create_user(
        username="bruno.agente", password="Senha-Forte-123", role=User.Role.AGENT
    )


@pytest.fixture
def admin_client(admin: User) -> Client:
    client = Client()
    client.force_login(admin)
    return client


def bearer(user: User) -> dict[str, str]:
    """Headers for an API call with a JWT access token for ``user``."""
    return {"Authorization": f"Bearer {AccessToken.for_user(user)}"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for_http(
    url: str, *, timeout: float = 30.0, process: subprocess.Popen | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            out = process.stdout.read() if process.stdout else ""
            raise AssertionError(f"server exited with {process.returncode}:\n{out}")
        try:
            with urlopen(url, timeout=2):  # noqa: S310 - loopback only
                return
        except URLError as exc:
            # An HTTP error status means the server is up and answering.
            if getattr(exc, "code", None):
                return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"{url} did not answer within {timeout} s")


def server_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: this one's, minus what tests set."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(overrides)
    return env


@pytest.fixture
def run_manage() -> Callable[..., subprocess.CompletedProcess[str]]:
    def run(
        *args: str, env: dict[str, str] | None = None, timeout: float = 60
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=env if env is not None else server_env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run

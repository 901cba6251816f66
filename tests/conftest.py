"""Shared fixtures.

Tests marked ``postgres`` or ``redis`` need the real service (DATABASE_URL /
REDIS_URL). Without it they skip, saying why, except under REQUIRE_SERVICES=1
(CI's services run), where a missing service fails them: a green services run
must mean the services were really used.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from django.conf import settings
from django.test import Client

from accounts.models import User
from ispsupport import breakers, health
from tests.support import ROOT, server_env


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


# LOG_CAPTURE_FILE=path: every record the suite logs is also written there as
# production JSON, and the run fails at the end if one shows a fixture's phone,
# CPF, name, access token or app secret (LGPD; CI sets it).
_LOG_CAPTURE_FILE = os.environ.get("LOG_CAPTURE_FILE")
_log_capture: logging.Handler | None = None


@pytest.fixture(autouse=True)
def _suite_log_capture() -> None:
    global _log_capture
    if not _LOG_CAPTURE_FILE:
        return
    from tests.ispsupport.test_no_personal_data_in_logs import capture_to_file

    # Re-attached when a test reconfigured logging (dictConfig drops handlers).
    if _log_capture is None or _log_capture not in logging.getLogger().handlers:
        _log_capture = capture_to_file(_LOG_CAPTURE_FILE)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if not _LOG_CAPTURE_FILE or _log_capture is None:
        return
    from tests.ispsupport.test_no_personal_data_in_logs import scan_log_file

    _log_capture.flush()
    found = scan_log_file(_LOG_CAPTURE_FILE)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if found:
        if reporter is not None:
            reporter.write_line(f"personal data in the suite's logs ({_LOG_CAPTURE_FILE}):")
            for line in found[:20]:
                reporter.write_line(f"  {line}")
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif reporter is not None:
        reporter.write_line(f"log capture: no personal data in {_LOG_CAPTURE_FILE}")


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
def _no_health_check_left_running() -> Iterator[None]:
    """A check left hanging by one test must not answer for the next one."""
    yield
    for future in list(health._in_flight.values()):
        with contextlib.suppress(Exception):
            future.result(timeout=5)
    health._in_flight.clear()


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

"""End-to-end fixtures: the product as `make run` serves it (scripts/serve:
daphne + the task worker on the embedded defaults), driven by Debian's
Chromium through Playwright.

Screenshots go to ``E2E_ARTIFACTS`` (default ``var/e2e/``). Without a
Chromium these tests skip and say why; CI installs it and sets
REQUIRE_BROWSER=1, which turns the skip into a failure.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests.support import ROOT, free_port, server_env, wait_for_http

CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = Path(os.environ.get("E2E_ARTIFACTS") or ROOT / "var" / "e2e")
PASSWORD = "e2e-Senha-Forte-2026"
VIEWPORT = {"width": 1366, "height": 768}

# People and teams of the run; the setup script below creates them.
SETUP = """
from accounts.models import Team, User
from chatbot.models import BotSettings
from conversations.models import TeamQueue

support, _ = Team.objects.get_or_create(name="Suporte técnico")
billing, _ = Team.objects.get_or_create(name="Financeiro")
for team in (support, billing):
    TeamQueue.objects.get_or_create(team=team)
for username, name, role, team in (
    ("ana", "Ana Souza", "agent", support),
    ("bruno", "Bruno Lima", "agent", billing),
):
    user, _ = User.objects.get_or_create(username=username)
    user.name = name
    user.role = role
    user.availability = "online"
    user.set_password({password!r})
    user.save()
    user.teams.set([team])
settings, _ = BotSettings.objects.get_or_create(pk=1)
settings.fallback_team = support
settings.save()
print("e2e setup done")
"""


def _browser_missing() -> str | None:
    if not Path(CHROMIUM).exists():
        return f"needs Chromium at {CHROMIUM} (apt-get install chromium)"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "needs the playwright package (pip install -e '.[dev]')"
    return None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    reason = _browser_missing()
    for item in items:
        if "tests/e2e/" not in str(item.fspath).replace(os.sep, "/"):
            continue
        item.add_marker(pytest.mark.e2e)
        if reason is None:
            continue
        if os.environ.get("REQUIRE_BROWSER") == "1":
            item.add_marker(pytest.mark.xfail(reason=reason, run=False, strict=True))
        else:
            item.add_marker(pytest.mark.skip(reason=reason))


@dataclass
class Served:
    base: str
    env: dict[str, str]
    process: subprocess.Popen[str]
    log: Path

    def manage(self, *args: str, code: str | None = None) -> str:
        command = [sys.executable, "manage.py", *args]
        if code is not None:
            command += ["-c", code]
        done = subprocess.run(
            command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    """`scripts/serve` on a fresh SQLite database: what `make run` starts."""
    tmp = tmp_path_factory.mktemp("e2e")
    env = server_env()
    for name in ("DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES", "SECRET_KEY", "ALLOWED_HOSTS"):
        env.pop(name, None)
    env.update(
        {
            "PORT": str(free_port()),
            "VENV": sys.prefix,
            "DEBUG": "true",
            "DATABASE_URL": f"sqlite:///{tmp / 'db.sqlite3'}",
            "STATIC_ROOT": str(tmp / "static"),
            "MEDIA_ROOT": str(tmp / "media"),
            "DJANGO_SUPERUSER_USERNAME": "admin",
            "DJANGO_SUPERUSER_PASSWORD": PASSWORD,
            "LOG_LEVEL": "warning",
        }
    )
    _use_services(env)
    log = tmp / "server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            ["scripts/serve"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{env['PORT']}"
    served = Served(base=base, env=env, process=process, log=log)
    try:
        wait_for_http(f"{base}/health", timeout=90, process=process)
        served.manage("shell", code=SETUP.format(password=PASSWORD))
        yield served
    finally:
        from tests.ispsupport.test_server import _stop

        _stop(process)


def _use_services(env: dict[str, str]) -> None:
    """Under the PostgreSQL + Redis run, serve from a database of its own on
    the same PostgreSQL (the suite's test database belongs to pytest) and the
    same Redis, so the browser run exercises the production components too."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg

    base, _, name = url.rpartition("/")
    e2e_name = f"{name.split('?')[0]}_e2e"
    with psycopg.connect(f"{base}/postgres", autocommit=True) as connection:
        connection.execute(f'DROP DATABASE IF EXISTS "{e2e_name}" WITH (FORCE)')
        connection.execute(f'CREATE DATABASE "{e2e_name}"')
    env["DATABASE_URL"] = f"{base}/{e2e_name}"
    if os.environ.get("REDIS_URL"):
        env["REDIS_URL"] = os.environ["REDIS_URL"]


@dataclass
class PageWatch:
    """Everything the browser complained about while a page was open."""

    errors: list[str] = field(default_factory=list)
    frames: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def artifacts() -> Path:
    if ARTIFACTS.exists():
        shutil.rmtree(ARTIFACTS)
    ARTIFACTS.mkdir(parents=True)
    return ARTIFACTS

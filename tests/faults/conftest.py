"""Fault tests: the real services fail under the product, on 127.0.0.1 only.

- ``PrivateRedis``: a redis-server of the test's own on a free port, to kill
  and bring back on the same port (the shared Redis is never touched).
- ``TcpProxy``: a TCP forwarder in front of PostgreSQL that a test cuts off
  (open connections dropped, new ones refused) and restores on the same port.
- ``fault_database``: a PostgreSQL database of the fault tests' own, migrated
  once per run, whose WhatsApp number is bootstrapped from the environment.
- ``serve``: daphne processes on it, stopped at the end of the test.
- ``breaker_clock``: pybreaker's clock, moved forward instead of slept.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import httpx
import pybreaker
import pytest
import redis
from django.conf import settings

from ispsupport.breakers import SPECS
from tests.support import ROOT, free_port, server_env, wait_for_http
from tests.whatsapp.conftest import APP_SECRET, PHONE_NUMBER_ID
from tests.whatsapp.payloads import MARIA_PHONE, contact, dumps, envelope, sign, text
from tests.whatsapp.payloads import URL as WEBHOOK_PATH

REDIS_SERVER = shutil.which("redis-server")


# --- A Redis of the test's own ------------------------------------------------------


class PrivateRedis:
    """``redis-server`` on a free loopback port, without persistence."""

    def __init__(self, log: Path) -> None:
        if REDIS_SERVER is None:
            pytest.skip("needs redis-server on PATH (apt-get install redis-server)")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._log = log
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self._log.open("ab") as out:
            self._process = subprocess.Popen(
                [
                    str(REDIS_SERVER),
                    "--bind",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--save",
                    "",
                    "--appendonly",
                    "no",
                    "--daemonize",
                    "no",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise AssertionError(f"redis-server exited: {self._log.read_text()[-2000:]}")
            if self.ping():
                return
            time.sleep(0.05)
        raise AssertionError(f"redis-server on port {self.port} did not answer within 10 s")

    def ping(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False

    def kill(self) -> None:
        """Gone at once, as after a crash or an OOM kill: no goodbye to clients."""
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait(timeout=10)
        self._process = None


@pytest.fixture
def private_redis(tmp_path: Path) -> Iterator[PrivateRedis]:
    redis = PrivateRedis(tmp_path / "redis.log")
    redis.start()
    try:
        yield redis
    finally:
        redis.kill()


# --- A TCP proxy that can be cut -----------------------------------------------------


class TcpProxy:
    """Forwards 127.0.0.1:``port`` to ``target``. ``cut()`` drops every open
    connection and refuses new ones, like a database server that went away;
    ``restore()`` listens again on the same port."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._lock = threading.Lock()
        self._sockets: set[socket.socket] = set()
        self._listener: socket.socket | None = None
        self._stop = threading.Event()
        self._acceptor: threading.Thread | None = None
        self._flowing = threading.Event()
        self._flowing.set()

    def freeze(self) -> None:
        """Connections stay open and nothing comes back: a hung server."""
        self._flowing.clear()

    def thaw(self) -> None:
        self._flowing.set()

    def restore(self) -> None:
        # create_server sets SO_REUSEADDR: connections left in TIME_WAIT by the
        # cut do not keep the port from being listened on again.
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self._listener.settimeout(0.05)
        self._stop = threading.Event()
        self._acceptor = threading.Thread(
            target=self._accept, args=(self._listener, self._stop), daemon=True
        )
        self._acceptor.start()

    start = restore

    def cut(self) -> None:
        self._stop.set()
        if self._acceptor is not None:
            self._acceptor.join(timeout=5)
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            doomed, self._sockets = self._sockets, set()
        for sock in doomed:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()

    stop = cut

    def _accept(self, listener: socket.socket, stop: threading.Event) -> None:
        while not stop.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            upstream.settimeout(None)
            client.settimeout(None)
            with self._lock:
                if stop.is_set():
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for src, dst in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                while not self._flowing.wait(timeout=0.05):
                    if src.fileno() < 0:
                        return
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)


# --- A PostgreSQL database of the fault tests' own -----------------------------------


@dataclass(frozen=True)
class FaultDatabase:
    host: str
    port: int
    user: str
    password: str
    name: str

    def url(self, *, port: int | None = None) -> str:
        credentials = quote(self.user, safe="")
        if self.password:
            credentials += ":" + quote(self.password, safe="")
        return f"postgres://{credentials}@{self.host}:{port or self.port}/{self.name}"

    def connect(self, dbname: str | None = None) -> Any:
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password or None,
            dbname=dbname or self.name,
            autocommit=True,
            connect_timeout=5,
        )

    def stored(self, external_ids: Iterable[str]) -> dict[str, int]:
        """How many inbound messages carry each of ``external_ids``."""
        ids = list(external_ids)
        with self.connect() as conn:
            rows = conn.execute(
                "SELECT external_id, count(*) FROM conversations_message"
                " WHERE external_id = ANY(%s) GROUP BY external_id",
                (ids,),
            ).fetchall()
        counts = dict.fromkeys(ids, 0)
        counts.update({external_id: n for external_id, n in rows})
        return counts

    def tasks_about(self, external_id: str) -> list[str]:
        """The task paths enqueued with the message ``external_id`` as first argument."""
        from django_tasks_db.models import DBTaskResult

        with self.connect() as conn:
            rows = conn.execute(
                f"SELECT t.task_path FROM {DBTaskResult._meta.db_table} t"  # noqa: S608
                " JOIN conversations_message m ON t.args_kwargs->'args'->>0 = m.id::text"
                " WHERE m.external_id = %s ORDER BY t.task_path",
                (external_id,),
            ).fetchall()
        return [path for (path,) in rows]


def _fault_env(**overrides: str) -> dict[str, str]:
    """A child process's environment: production-like, loopback only, and
    nothing of the suite's own services unless a test passes them."""
    env = server_env()
    for name in ("DATABASE_URL", "REDIS_URL", "REQUIRE_SERVICES", "WHATSAPP_ACCESS_TOKEN"):
        env.pop(name, None)
    env.update(
        {
            "DEBUG": "false",
            "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
            "WHATSAPP_APP_SECRET": APP_SECRET,
            "CONVERSATION_GREETING": "false",
            "LOG_FORMAT": "json",
            "LOG_LEVEL": "info",
        }
    )
    env.update(overrides)
    return env


@pytest.fixture(scope="session")
def fault_database() -> Iterator[FaultDatabase]:
    """``<DATABASE_URL's name>_faults``, migrated once for every fault test."""
    if settings.DATABASE_VENDOR != "postgresql":
        pytest.skip("needs PostgreSQL: set DATABASE_URL=postgres://...")
    params = settings.DATABASES["default"]
    base_name = os.environ.get("DATABASE_URL", "").rpartition("/")[2].split("?")[0]
    database = FaultDatabase(
        host=params.get("HOST") or "127.0.0.1",
        port=int(params.get("PORT") or 5432),
        user=params.get("USER") or "postgres",
        password=params.get("PASSWORD") or "",
        name=f"{base_name or 'ispsupport'}_faults"[:63],
    )
    with database.connect("postgres") as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{database.name}"')
    try:
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v0"],
            cwd=ROOT,
            env=_fault_env(DATABASE_URL=database.url(), LOG_LEVEL="warning"),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        yield database
    finally:
        with database.connect("postgres") as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{database.name}" WITH (FORCE)')


# --- daphne on it ---------------------------------------------------------------------


class Answer(NamedTuple):
    status: int
    body: dict[str, Any]
    seconds: float
    retry_after: str | None


@dataclass
class Served:
    url: str
    process: subprocess.Popen[bytes]
    log: Path
    http: httpx.Client = field(init=False)

    def __post_init__(self) -> None:
        self.http = httpx.Client(base_url=self.url, timeout=20, trust_env=False)

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        response = self.http.get(path)
        return response.status_code, response.json()

    def post_webhook(self, body: bytes) -> Answer:
        """POST a signed delivery as Meta does."""
        started = time.monotonic()
        response = self.http.post(
            WEBHOOK_PATH,
            content=body,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": sign(body)},
        )
        return Answer(
            status=response.status_code,
            body=response.json(),
            seconds=time.monotonic() - started,
            retry_after=response.headers.get("Retry-After"),
        )

    def breaker(self, name: str) -> dict[str, Any]:
        status, body = self.get("/circuit-breakers")
        assert status == 200, body
        [found] = [b for b in body["breakers"] if b["name"] == name]
        return found

    def wait_until(
        self, what: str, ready: Callable[[], bool], *, timeout: float, interval: float = 0.2
    ) -> float:
        """Poll ``ready`` until it holds; the seconds it took."""
        started = time.monotonic()
        while time.monotonic() - started < timeout:
            if ready():
                return time.monotonic() - started
            time.sleep(interval)
        raise AssertionError(f"{what} not within {timeout:g} s; server log:\n{self.output()}")

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def stop(self) -> str:
        self.http.close()
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait(timeout=10)
        return self.output()


@pytest.fixture
def serve(tmp_path: Path) -> Iterator[Callable[..., Served]]:
    """``serve(DATABASE_URL=..., ...)`` starts daphne as production runs it
    (DEBUG off, JSON logs) and waits until it answers."""
    started: list[Served] = []

    def start(**env: str) -> Served:
        port = free_port()
        log = tmp_path / f"daphne-{port}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [
                    f"{sys.prefix}/bin/daphne",
                    "-b",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "--access-log",
                    os.devnull,
                    "ispsupport.asgi:application",
                ],
                cwd=ROOT,
                env=_fault_env(STATIC_ROOT=str(tmp_path / "static"), **env),
                # A file, not a pipe: a pipe nobody reads fills up and blocks the server.
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        served = Served(url=f"http://127.0.0.1:{port}", process=process, log=log)
        started.append(served)
        try:
            wait_for_http(f"{served.url}/info", timeout=60, process=process)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{served.output()}") from None
        return served

    yield start
    for served in started:
        served.stop()


# --- Signed deliveries ------------------------------------------------------------------


def delivery(external_id: str, body: str = "Minha internet caiu") -> bytes:
    """One customer text as Meta delivers it: the exact bytes that get signed."""
    return dumps(envelope(messages=[text(body, id_=external_id)], contacts=[contact()]))


def assert_no_secrets_in(output: str) -> None:
    """What a server printed while failing holds no secret and no phone number."""
    assert APP_SECRET not in output
    assert MARIA_PHONE not in output


# --- An injected clock for the breakers ----------------------------------------------------


class BreakerClock:
    """pybreaker reads ``datetime.now(UTC)`` to stamp when a breaker opened and
    to decide when it lets a trial call through. This clock stands still
    unless the test moves it, so a loaded machine cannot cross a reset
    timeout behind the test's back."""

    def __init__(self) -> None:
        self.moment = datetime.now(UTC)

    def advance(self, seconds: float) -> None:
        self.moment += timedelta(seconds=seconds)


def _forget_shared_opened_at() -> None:
    """Delete the ``opened_at`` that Redis-stored breakers keep.

    pybreaker's ``CircuitRedisStorage`` only ever moves ``opened_at`` forward
    (it sets it only if it is later than the stored value, so that processes
    racing to open a breaker keep the latest stamp), and ``close()`` never
    clears it. A moved clock stamps it in the future: left in Redis, it would
    outlive the test, and the next test, whose clock starts at the real now,
    could not stamp an earlier opening, so its breaker would stay open until
    that stale future moment plus the reset timeout, out of step with what
    the test advances.
    """
    if not settings.REDIS_URL:
        return
    base = pybreaker.CircuitRedisStorage.BASE_NAMESPACE
    keys = [f"{settings.BREAKER_NAMESPACE}:{name}:{base}:opened_at" for name in SPECS]
    client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
    try:
        client.delete(*keys)
    except redis.RedisError:
        pass  # nothing is stored where nothing can be reached
    finally:
        client.close()


@pytest.fixture
def breaker_clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[BreakerClock]:
    """The clock of every breaker of this process (memory or Redis storage);
    nothing else's clock moves, and no time it stamped outlives the test."""
    # Before too: a run killed mid-test never got to clean up after itself.
    _forget_shared_opened_at()
    clock = BreakerClock()
    real = pybreaker.datetime

    class InjectedDatetime(real):  # type: ignore[misc, valid-type]
        @classmethod
        def now(cls, tz: Any = None) -> datetime:
            if tz is None:
                return clock.moment.astimezone().replace(tzinfo=None)
            return clock.moment.astimezone(tz)

    monkeypatch.setattr(pybreaker, "datetime", InjectedDatetime)
    yield clock
    _forget_shared_opened_at()

"""Soak run: mixed traffic against several daphne processes and a task worker.

Not a test: it prints figures. See bench/README.md ("Soak run").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ispsupport_soak \\
    REDIS_URL=redis://127.0.0.1:6379/8 \\
        .venv/bin/python bench/soak.py --minutes 5 --servers 3
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import secrets
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
from websockets.exceptions import WebSocketException

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The other benchmarks already post Meta's envelopes, run daphne and listen on
# console sockets: the soak drives the same pieces, only more of them at once.
from console_live import (  # noqa: E402 - bench/ is on the path when run as a script
    Listener,
    Post,
    open_socket,
    send,
    stored,
)
from webhook_ingest import (  # noqa: E402
    count_stored,
    ensure_database,
    envelope,
    server_log_tail,
    start_server,
    stop_server,
)

TEAM = "Bench soak"
# Its own number: the soak routes the inbox to its team, which must not change
# what bench/webhook_ingest.py (…001) and bench/console_live.py (…002) measure.
PHONE_NUMBER_ID = "190000000000003"
AGENT_PREFIX = "bench-soak-agent-"
CONSOLE_PREFIX = "bench-soak-console-"
LOG_DIR = ROOT / "var"
MEMORY_EVERY = 5.0  # seconds between RSS samples
GROWTH_LIMIT = 0.20  # RSS growth after warm-up that gets flagged

NEW_TEXTS = (
    "Oi, boa tarde",
    "Quero falar com um atendente",
    "Minha internet caiu, não navega",
    "Preciso da segunda via do boleto",
    "quero falar com atendente por favor",
)
RETURNING_TEXTS = (
    "1",
    "quero falar com um atendente",
    "obrigado",
    "ainda estou sem internet",
    "5",
    "não",
    "oi",
)
REPLY_TEXT = "Olá! Já estou verificando a sua conexão, um momento."


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="Traffic duration.")
    parser.add_argument("--servers", type=int, default=3, help="daphne processes.")
    parser.add_argument("--workers", type=int, default=1, help="Task worker processes.")
    parser.add_argument(
        "--worker-command",
        default="worker",
        choices=("db_worker", "worker"),
        help="manage.py command of the task workers: the project's worker (as "
        "scripts/serve and the systemd units run it) or django-tasks-db's bare db_worker.",
    )
    parser.add_argument(
        "--webhook-rate", type=float, default=5.0, help="Webhook POSTs per second, steady."
    )
    parser.add_argument(
        "--agent-rate", type=float, default=2.0, help="Agents' API calls per second, steady."
    )
    parser.add_argument("--agents", type=int, default=4, help="Agents calling the API (JWT).")
    parser.add_argument("--sockets", type=int, default=20, help="Console websocket clients.")
    parser.add_argument(
        "--new-share", type=float, default=0.3, help="Share of messages from new customers."
    )
    parser.add_argument(
        "--batch-share",
        type=float,
        default=0.1,
        help="Share of envelopes carrying 2 or 3 messages of different customers.",
    )
    parser.add_argument(
        "--redelivery-share",
        type=float,
        default=0.05,
        help="Share of POSTs that repeat an earlier envelope, as Meta redelivers.",
    )
    parser.add_argument(
        "--warmup",
        type=float,
        default=60.0,
        help="Seconds of traffic before the memory baseline (capped at a third of the run).",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=60.0,
        help="Seconds after the traffic for the worker to finish the queued sends.",
    )
    parser.add_argument(
        "--settle",
        type=float,
        default=300.0,
        help="Seconds to wait, before the traffic, for tasks earlier runs left in the queue.",
    )
    parser.add_argument("--report-every", type=float, default=30.0, help="Progress line period.")
    parser.add_argument("--seed", type=int, default=13)
    args = parser.parse_args()
    if min(args.servers, args.workers, args.agents, args.sockets) < 1 or args.minutes <= 0:
        parser.error("--minutes, --servers, --workers, --agents and --sockets must be positive")
    if args.webhook_rate <= 0 or args.agent_rate <= 0:
        parser.error("--webhook-rate and --agent-rate must be positive")
    return args


# --- Set-up ----------------------------------------------------------------------------


def configure() -> None:
    """Environment for this process and the servers it starts; refuse without the services."""
    database_url = os.environ.get("DATABASE_URL", "")
    redis_url = os.environ.get("REDIS_URL", "")
    if not database_url.startswith(("postgres://", "postgresql://")) or not redis_url:
        sys.exit(
            "bench/soak.py needs PostgreSQL and Redis: several processes share state only "
            "through them (SQLite serialises writers; the in-memory channel layer and cache "
            "live inside one process). Set DATABASE_URL=postgres://… and REDIS_URL=redis://…"
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-a41c7e93d05b28f6e1c4a7d9b3f0e6c2")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("LOG_LEVEL", "warning")
    os.environ["WHATSAPP_PHONE_NUMBER_ID"] = PHONE_NUMBER_ID
    os.environ.setdefault("WHATSAPP_APP_SECRET", "bench-app-secret-5f2c8a1e")
    # Nothing may leave the machine: no Graph token (sandbox transport), no
    # Gemini key (the rules answer), and Redis carries the live events.
    for name in ("WHATSAPP_ACCESS_TOKEN", "GEMINI_API_KEY", "EVENTS_RELAY_URL"):
        os.environ.pop(name, None)
    try:
        import redis

        redis.Redis.from_url(redis_url, socket_connect_timeout=3, socket_timeout=3).ping()
    except Exception as exc:  # any failure means the same to the operator
        sys.exit(f"Redis at REDIS_URL does not answer ({type(exc).__name__}): start it first.")
    try:
        ensure_database(database_url)
    except Exception as exc:
        sys.exit(f"PostgreSQL at DATABASE_URL does not answer ({type(exc).__name__}): {exc}")
    import django

    django.setup()


@dataclass
class Cast:
    secret: str
    phone_number_id: str
    inbox_id: int
    cookie: str
    agents: list[tuple[str, str]]  # (username, password) of the API agents
    console_sessions: list[str]


def prepare(*, agents: int, sockets: int) -> Cast:
    """Migrate; the number with its inbox routed to the soak team; agents and console users."""
    from django.conf import settings
    from django.core.management import call_command
    from django.test import Client

    from accounts.models import Team, User
    from whatsapp.services import account_bootstrap_from_env

    call_command("migrate", interactive=False, verbosity=0)
    account = account_bootstrap_from_env()
    if account is None:
        sys.exit("WHATSAPP_PHONE_NUMBER_ID is empty")
    team, _ = Team.objects.get_or_create(name=TEAM)
    inbox = account.inbox
    if inbox.default_team_id != team.pk:
        # Conversations belong to the team from their first message, and the
        # bot's hand-offs keep that team: the agents' take-next finds them and
        # every console socket of the team gets their events.
        inbox.default_team = team
        inbox.save(update_fields=["default_team"])

    def member(username: str) -> User:
        user, _created = User.objects.get_or_create(
            username=username,
            defaults={"name": username, "role": User.Role.AGENT, "is_active": True},
        )
        user.teams.set([team])
        return user

    # A fresh password each run, never printed: the agents log in through the API.
    password = f"Soak-{secrets.token_urlsafe(12)}-9"
    api_agents = []
    for i in range(1, 1 + agents):
        user = member(f"{AGENT_PREFIX}{i:03d}")
        user.set_password(password)
        user.save(update_fields=["password"])
        api_agents.append((user.username, password))

    def session(user: User) -> str:
        client = Client()
        client.force_login(user)
        return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    consoles = [member(f"{CONSOLE_PREFIX}{i:03d}") for i in range(1, 1 + sockets)]
    return Cast(
        secret=str(settings.WHATSAPP_APP_SECRET),
        phone_number_id=account.phone_number_id,
        inbox_id=inbox.pk,
        cookie=settings.SESSION_COOKIE_NAME,
        agents=api_agents,
        console_sessions=[session(user) for user in consoles],
    )


def forget_sessions(cast: Cast) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key__in=cast.console_sessions).delete()


def start_worker(log_path: Path, command: str = "worker") -> subprocess.Popen[bytes]:
    """``manage.py worker`` as scripts/serve runs it (or django-tasks-db's bare
    ``db_worker``); output in a file (a pipe nobody reads would fill up and
    freeze the worker)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        return subprocess.Popen(  # noqa: S603 - our interpreter, a fixed command
            [
                sys.executable,
                "manage.py",
                command,
                "--no-startup-delay",
                # db_worker reloads on code changes under DEBUG; worker never does.
                *(["--no-reload"] if command == "db_worker" else []),
            ],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


# --- Processes and memory --------------------------------------------------------------


def rss_mb(pid: int) -> float | None:
    """VmRSS of ``pid`` in MB; None once the process is gone."""
    try:
        for row in Path(f"/proc/{pid}/status").read_text().splitlines():
            if row.startswith("VmRSS:"):
                return int(row.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


@dataclass
class Proc:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    start: float | None = None
    warm: float | None = None
    end: float | None = None
    peak: float = 0.0
    died: str = ""

    def sample(self) -> float | None:
        value = rss_mb(self.process.pid)
        if value is not None:
            self.peak = max(self.peak, value)
        elif not self.died and self.process.poll() is not None:
            self.died = f"exited with {self.process.returncode}"
        return value

    def growth(self) -> float | None:
        if self.warm is None or self.end is None or not self.warm:
            return None
        return (self.end - self.warm) / self.warm


# --- Figures ---------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


@dataclass
class Stats:
    latencies: dict[str, list[float]] = field(default_factory=dict)
    errors: Counter[tuple[str, str]] = field(default_factory=Counter)
    window: Counter[str] = field(default_factory=Counter)  # requests since the last line

    def record(self, kind: str, seconds: float, outcome: str) -> None:
        """``outcome``: "" when answered as expected, else "HTTP nnn" or an exception name."""
        self.latencies.setdefault(kind, []).append(seconds)
        self.window[kind] += 1
        if outcome:
            self.errors[(kind, outcome)] += 1

    def server_errors(self) -> int:
        """5xx answers and requests that got no answer at all."""
        return sum(
            n
            for (_kind, outcome), n in self.errors.items()
            if not outcome.startswith("HTTP ") or outcome.startswith("HTTP 5")
        )


# --- Webhooks --------------------------------------------------------------------------


@dataclass
class Customers:
    rng: random.Random
    known: list[str] = field(default_factory=list)

    def pick(self, new_share: float) -> tuple[str, bool]:
        if not self.known or self.rng.random() < new_share:
            wa_id = f"55119{self.rng.randrange(10**7, 10**8)}"
            self.known.append(wa_id)
            return wa_id, True
        return self.rng.choice(self.known), False


@dataclass
class Webhooks:
    args: argparse.Namespace
    cast: Cast
    run: str
    stats: Stats
    customers: Customers
    posted: list[tuple[Post, list[str]]] = field(default_factory=list)
    n: int = 0

    def next_post(self) -> tuple[str, Post, list[str]]:
        rng = self.customers.rng
        if self.posted and rng.random() < self.args.redelivery_share:
            earlier, wamids = rng.choice(self.posted)
            return "webhook.redelivery", Post(earlier.wamid, earlier.body), wamids
        size = rng.choice((2, 3)) if rng.random() < self.args.batch_share else 1
        batch, kinds = [], set()
        for _ in range(size):
            self.n += 1
            wa_id, new = self.customers.pick(self.args.new_share)
            kinds.add("new" if new else "returning")
            text = rng.choice(NEW_TEXTS if new else RETURNING_TEXTS)
            batch.append((f"wamid.SOAK{self.run}{self.n:08d}", wa_id, text))
        kind = "webhook.batch" if size > 1 else f"webhook.{kinds.pop()}"
        wamids = [wamid for wamid, _wa_id, _text in batch]
        post = Post(wamids[0], envelope(self.cast.phone_number_id, batch))
        return kind, post, wamids

    async def fire(self, client: httpx.AsyncClient) -> None:
        kind, post, wamids = self.next_post()
        await send(client, self.cast.secret, post)
        self.stats.record(kind, post.answered - post.sent, post.status)
        if kind != "webhook.redelivery":
            self.posted.append((post, wamids))

    def accepted_wamids(self) -> set[str]:
        """Messages whose first POST was answered 200: Meta would not send them again."""
        return {w for post, wamids in self.posted if not post.status for w in wamids}

    def refused_wamids(self) -> set[str]:
        return {w for post, wamids in self.posted if post.status for w in wamids}


# --- Agents ----------------------------------------------------------------------------


@dataclass
class Agent:
    username: str
    password: str
    access: str = ""
    refresh: str = ""
    refreshed_at: float = 0.0
    conversation: int | None = None
    replied: bool = False
    listed: bool = False
    busy: bool = False
    handled: int = 0


class Agents:
    """Each agent works one conversation at a time: list their inbox, take the
    next one (or one of theirs that a customer reopened), reply, resolve."""

    def __init__(self, cast: Cast, stats: Stats, clients: list[httpx.AsyncClient]) -> None:
        from django.conf import settings

        self.agents = [Agent(username, password) for username, password in cast.agents]
        self.stats = stats
        self.clients = clients
        self.turn = 0
        self.skipped = 0  # ticks when every agent was still waiting for an answer
        lifetime = settings.SIMPLE_JWT["ACCESS_TOKEN_LIFETIME"].total_seconds()
        self.refresh_after = max(30.0, lifetime - 120)

    def client(self) -> httpx.AsyncClient:
        # Each call goes to the next server: a conversation taken through one
        # process is replied to and resolved through others.
        self.turn += 1
        return self.clients[self.turn % len(self.clients)]

    async def call(
        self, kind: str, agent: Agent, method: str, url: str, ok: tuple[int, ...], **kw: Any
    ) -> httpx.Response | None:
        headers = {"Authorization": f"Bearer {agent.access}"} if agent.access else {}
        started = time.perf_counter()
        try:
            response = await self.client().request(method, url, headers=headers, **kw)
        except httpx.HTTPError as exc:
            self.stats.record(kind, time.perf_counter() - started, type(exc).__name__)
            return None
        outcome = "" if response.status_code in ok else f"HTTP {response.status_code}"
        self.stats.record(kind, time.perf_counter() - started, outcome)
        return response

    async def login(self, agent: Agent) -> None:
        response = await self.call(
            "api.login",
            agent,
            "POST",
            "/api/v1/auth/login",
            (200,),
            json={"username": agent.username, "password": agent.password},
        )
        if response is None or response.status_code != 200:
            status = response.status_code if response is not None else "no answer"
            sys.exit(f"POST /api/v1/auth/login for {agent.username}: {status}")
        body = response.json()
        agent.access, agent.refresh = body["access"], body["refresh"]
        agent.refreshed_at = time.monotonic()

    async def renew(self, agent: Agent) -> None:
        response = await self.call(
            "api.refresh", agent, "POST", "/api/v1/auth/refresh", (200,),
            json={"refresh": agent.refresh},
        )  # fmt: skip
        if response is not None and response.status_code == 200:
            body = response.json()
            agent.access, agent.refresh = body["access"], body.get("refresh", agent.refresh)
            agent.refreshed_at = time.monotonic()

    async def tick(self) -> None:
        agent = next((a for a in self.agents if not a.busy), None)
        if agent is None:
            self.skipped += 1
            return
        # The next tick starts with whoever has waited longest.
        self.agents.remove(agent)
        self.agents.append(agent)
        agent.busy = True
        try:
            await self.step(agent)
        finally:
            agent.busy = False

    async def step(self, agent: Agent) -> None:
        if time.monotonic() - agent.refreshed_at > self.refresh_after:
            await self.renew(agent)
            return
        pk = agent.conversation
        if pk is None and not agent.listed:
            agent.listed = True
            response = await self.call(
                "api.list", agent, "GET", "/api/v1/conversations/", (200,),
                params={"assignee": "me", "state": "open", "page_size": 20},
            )  # fmt: skip
            if response is not None and response.status_code == 200:
                # A customer who wrote again soon after a resolve reopened their
                # conversation, back to the same agent: serve it before the queue.
                rows = response.json().get("results", [])
                if rows:
                    agent.conversation, agent.replied = rows[0]["id"], False
            return
        if pk is None:
            agent.listed = False
            response = await self.call(
                "api.take_next", agent, "POST", "/api/v1/conversations/take-next/", (200, 204)
            )
            if response is not None and response.status_code == 200:
                agent.conversation, agent.replied = response.json()["id"], False
            return
        if not agent.replied:
            response = await self.call(
                "api.reply", agent, "POST", f"/api/v1/conversations/{pk}/messages/", (201,),
                json={"text": REPLY_TEXT, "client_key": uuid.uuid4().hex},
            )  # fmt: skip
            agent.replied = True
            if response is None or response.status_code != 201:
                agent.conversation = None  # recorded as an error; move on
            return
        await self.call(
            "api.resolve", agent, "POST", f"/api/v1/conversations/{pk}/resolve/", (200,)
        )
        agent.conversation, agent.listed = None, False
        agent.handled += 1


# --- Sockets ---------------------------------------------------------------------------


@dataclass
class Slot:
    """One console tab: its socket, reopened when the server drops it."""

    name: str
    base: str
    cookie: str
    listener: Listener | None = None
    events: Counter[str] = field(default_factory=Counter)
    disconnects: list[str] = field(default_factory=list)
    failed_reconnects: int = 0
    message_ids: set[int] = field(default_factory=set)

    def tally(self) -> None:
        """Count and drop what the listener gathered: hours of events would
        otherwise pile up in this process."""
        if self.listener is None:
            return
        events, self.listener.events = self.listener.events, []
        self.events.update(str(event.get("type")) for _at, event in events)

    async def keep(self, stopping: asyncio.Event) -> None:
        while not stopping.is_set():
            if self.listener is not None:
                await self.listener.listen()
                self.tally()
                self.message_ids |= self.listener.message_ids
                if stopping.is_set():
                    return
                self.disconnects.append(self.listener.closed)
                self.listener = None
                await asyncio.sleep(1)  # the console's own reconnect waits too
            try:
                self.listener = await open_socket(self.base, self.cookie, self.name)
            except (SystemExit, OSError, WebSocketException):
                # open_socket gives up the run on a refused handshake; here it
                # is one failed reconnect of one tab (or a server that is gone),
                # counted and retried.
                self.failed_reconnects += 1
                await asyncio.sleep(2)

    def received(self) -> set[int]:
        live = self.listener.message_ids if self.listener is not None else set()
        return self.message_ids | live


# --- The run ---------------------------------------------------------------------------


@dataclass
class Run:
    args: argparse.Namespace
    cast: Cast
    procs: list[Proc]
    bases: list[str]
    stats: Stats = field(default_factory=Stats)
    started_at: datetime | None = None
    traffic_seconds: float = 0.0
    drain_seconds: float = 0.0
    slots: list[Slot] = field(default_factory=list)
    webhooks: Webhooks | None = None
    agents: Agents | None = None
    loads: list[float] = field(default_factory=list)


def outbound_counts(inbox_id: int, since: datetime) -> dict[str, int]:
    from django.db.models import Count

    from conversations.models import Message

    rows = (
        Message.objects.filter(
            conversation__inbox_id=inbox_id, direction=Message.Direction.OUT, created_at__gte=since
        )
        .values("status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["status"]: row["n"] for row in rows}


def task_counts(since: datetime) -> dict[tuple[str, str], int]:
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    rows = (
        DBTaskResult.objects.filter(enqueued_at__gte=since)
        .values("task_path", "status")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {(row["task_path"].rsplit(".", 1)[-1], row["status"]): row["n"] for row in rows}


def failed_tasks(since: datetime) -> list[tuple[str, str, int]]:
    """(task, exception class, count) of the tasks that gave up: class names only,
    a traceback may quote customer data."""
    from django.db.models import Count
    from django_tasks_db.models import DBTaskResult

    rows = (
        DBTaskResult.objects.filter(enqueued_at__gte=since, status="FAILED")
        .values("task_path", "exception_class_path")
        .annotate(n=Count("id"))
        .order_by("-n")
    )
    return [(r["task_path"], r["exception_class_path"], r["n"]) for r in rows]


def task_waits(since: datetime) -> dict[str, list[float]]:
    """Seconds from enqueue to start per task: how far behind the worker ran."""
    from django_tasks_db.models import DBTaskResult

    waits: dict[str, list[float]] = {}
    rows = DBTaskResult.objects.filter(
        enqueued_at__gte=since, started_at__isnull=False
    ).values_list("task_path", "enqueued_at", "started_at")
    for path, enqueued, started in rows.iterator(chunk_size=5000):
        waits.setdefault(path.rsplit(".", 1)[-1], []).append((started - enqueued).total_seconds())
    return waits


def tasks_waiting() -> int:
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status="READY").count()


def tasks_orphaned() -> int:
    """RUNNING tasks no worker runs: a worker stopped mid-task left them, and
    django-tasks-db never looks at them again (nothing else may be running)."""
    from django_tasks_db.models import DBTaskResult

    return DBTaskResult.objects.filter(status="RUNNING").count()


def settle(limit: float) -> None:
    """Let the worker finish what earlier runs left (a run stopped early, or one
    the worker could not keep up with): otherwise this run's sends wait behind
    them and its figures describe the previous run."""
    orphans = tasks_orphaned()
    if orphans:
        print(
            f"{orphans} tasks are RUNNING before any worker of this run started: "
            "left by a worker stopped mid-task (manage.py requeue_stuck_tasks)."
        )
    left = tasks_waiting()
    if not left:
        return
    print(f"Earlier runs left {left} tasks in the queue; waiting up to {limit:g} s for the worker.")
    started = time.monotonic()
    while (waiting := tasks_waiting()) and time.monotonic() - started < limit:
        time.sleep(2)
    took = time.monotonic() - started
    if waiting:
        print(f"  {waiting} still waiting after {took:.0f} s: this run's sends queue behind them.")
    else:
        print(f"  done in {took:.0f} s.")


def team_queue_length(inbox_id: int) -> int:
    """Queued conversations of the soak inbox, earlier runs' included: the agents
    take the oldest first, so what they handle may predate this run."""
    from conversations.models import Conversation

    return Conversation.objects.filter(inbox_id=inbox_id, state=Conversation.State.QUEUED).count()


def states_of_run(inbox_id: int, since: datetime) -> dict[str, int]:
    from django.db.models import Count

    from conversations.models import Conversation

    rows = (
        Conversation.objects.filter(inbox_id=inbox_id, created_at__gte=since)
        .values("state")
        .annotate(n=Count("id"))
        .order_by()
    )
    return {row["state"]: row["n"] for row in rows}


def progress(run: Run, elapsed: float, period: float, pending: int) -> str:
    stats = run.stats
    window, stats.window = stats.window, Counter()
    webhooks = sum(n for kind, n in window.items() if kind.startswith("webhook"))
    api = sum(n for kind, n in window.items() if kind.startswith("api"))
    hook_lat = [x for k, v in stats.latencies.items() if k.startswith("webhook") for x in v[-200:]]
    events = sum(sum(slot.events.values()) for slot in run.slots)
    drops = sum(len(slot.disconnects) for slot in run.slots)
    rss = " ".join(f"{p.name} {p.sample() or 0:.0f}" for p in run.procs)
    return (
        f"[{elapsed:5.0f} s] webhooks {webhooks / period:4.1f}/s (p99 last 200 "
        f"{pct(hook_lat, 0.99):.0f} ms), API {api / period:4.1f}/s, errors "
        f"{sum(stats.errors.values())} (5xx/none {stats.server_errors()}), ws events {events}, "
        f"disconnects {drops}, sends pending {pending}, RSS MB {rss}, "
        f"load {os.getloadavg()[0]:.2f}"
    )


async def paced(rate: float, until: float, fire: Any, tasks: set[asyncio.Task[None]]) -> None:
    """Start ``fire()`` on schedule whatever the answers take: a slow server must
    not slow the arrivals down, or a backlog would hide in the client."""
    started = time.perf_counter()
    i = 0
    while True:
        at = started + i / rate
        if at >= until:
            return
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        task = asyncio.create_task(fire())
        tasks.add(task)
        task.add_done_callback(tasks.discard)
        i += 1


async def drive(run: Run) -> None:
    from asgiref.sync import sync_to_async
    from django.utils import timezone

    args, cast = run.args, run.cast
    rng = random.Random(f"{args.seed}-{uuid.uuid4().hex}")  # noqa: S311 - test data
    run_id = uuid.uuid4().hex[:8].upper()
    clients = [httpx.AsyncClient(base_url=base, timeout=30) for base in run.bases]
    run.started_at = timezone.now()
    run.webhooks = Webhooks(args, cast, run_id, run.stats, Customers(rng))
    run.agents = agents = Agents(cast, run.stats, clients)
    stopping = asyncio.Event()
    run.slots = [
        Slot(f"console {i + 1}", run.bases[i % len(run.bases)], f"{cast.cookie}={session}")
        for i, session in enumerate(cast.console_sessions)
    ]
    connected = time.perf_counter()
    for slot in run.slots:
        slot.listener = await open_socket(slot.base, slot.cookie, slot.name)
    print(
        f"Connected {len(run.slots)} console sockets in {time.perf_counter() - connected:.1f} s "
        f"across {len(run.bases)} servers."
    )
    keepers = [asyncio.create_task(slot.keep(stopping)) for slot in run.slots]
    for agent in agents.agents:
        await agents.login(agent)

    duration = args.minutes * 60
    warmup = min(args.warmup, duration / 3)
    started = time.perf_counter()
    until = started + duration
    inflight: set[asyncio.Task[None]] = set()
    webhooks = run.webhooks
    turn = 0

    def fire_webhook() -> Any:
        nonlocal turn
        turn += 1
        return webhooks.fire(clients[turn % len(clients)])

    pacers = [
        asyncio.create_task(paced(args.webhook_rate, until, fire_webhook, inflight)),
        asyncio.create_task(paced(args.agent_rate, until, agents.tick, inflight)),
    ]

    async def watch() -> None:
        """Memory every few seconds, a progress line every ``--report-every``."""
        last_line = started
        warm_taken = False
        while True:
            await asyncio.sleep(MEMORY_EVERY)
            now = time.perf_counter()
            for proc in run.procs:
                value = proc.sample()
                if not warm_taken and now - started >= warmup:
                    proc.warm = value
            warm_taken = warm_taken or now - started >= warmup
            for slot in run.slots:
                slot.tally()
            run.loads.append(os.getloadavg()[0])
            if now - last_line >= args.report_every:
                counts = await sync_to_async(outbound_counts)(cast.inbox_id, run.started_at)
                print(progress(run, now - started, now - last_line, counts.get("pending", 0)))
                sys.stdout.flush()
                last_line = now

    watcher = asyncio.create_task(watch())
    try:
        await asyncio.gather(*pacers)
        if inflight:
            await asyncio.gather(*inflight, return_exceptions=True)
        run.traffic_seconds = time.perf_counter() - started

        # The worker still has the last bot answers and sends to do: wait for
        # it, with the sockets open so their events still count.
        drain_started = last_note = time.perf_counter()
        while time.perf_counter() - drain_started < args.drain:
            counts = await sync_to_async(outbound_counts)(cast.inbox_id, run.started_at)
            tasks = await sync_to_async(task_counts)(run.started_at)
            waiting = sum(n for (_t, status), n in tasks.items() if status in ("READY", "RUNNING"))
            if not counts.get("pending") and not waiting:
                break
            if time.perf_counter() - last_note >= 10:
                print(
                    f"Draining: {counts.get('pending', 0)} sends pending, {waiting} tasks waiting."
                )
                last_note = time.perf_counter()
            await asyncio.sleep(2)
        run.drain_seconds = time.perf_counter() - drain_started
        await asyncio.sleep(2)  # the last events of the last sends
    finally:
        watcher.cancel()
        stopping.set()
        for slot in run.slots:
            if slot.listener is not None:
                await slot.listener.ws.close()
        await asyncio.gather(*keepers, watcher, return_exceptions=True)
        for slot in run.slots:
            slot.tally()
        for client in clients:
            await client.aclose()


# --- Report ----------------------------------------------------------------------------


def log_levels(path: Path) -> Counter[str]:
    """Lines per level in a process's log (structlog JSON); other lines as "text"."""
    levels: Counter[str] = Counter()
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return levels
    for raw in lines:
        try:
            levels[str(json.loads(raw).get("level", "?"))] += 1
        except (ValueError, AttributeError):
            levels["text"] += 1
    return levels


def report(run: Run) -> bool:
    stats, webhooks, agents = run.stats, run.webhooks, run.agents
    assert webhooks is not None and agents is not None and run.started_at is not None
    seconds = run.traffic_seconds
    print()
    print(f"Traffic: {seconds:.0f} s; drain {run.drain_seconds:.0f} s.")
    print(f"{'kind':<20} {'requests':>8} {'per s':>7} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}")
    for kind in sorted(stats.latencies):
        samples = stats.latencies[kind]
        print(
            f"{kind:<20} {len(samples):>8} {len(samples) / seconds:>7.2f} "
            f"{pct(samples, 0.5):>8.0f} {pct(samples, 0.99):>8.0f} {max(samples) * 1000:>8.0f}"
        )
    errors = ", ".join(f"{k} {o}: {n}" for (k, o), n in sorted(stats.errors.items())) or "none"
    print(f"Errors by status: {errors}.")
    if agents.skipped:
        print(f"Agent ticks skipped (every agent still waiting for an answer): {agents.skipped}.")
    print(f"Conversations handled by the agents (replied and resolved): "
          f"{sum(a.handled for a in agents.agents)}.")  # fmt: skip

    accepted = webhooks.accepted_wamids()
    refused = webhooks.refused_wamids() - accepted
    stored_count, duplicates = count_stored(accepted)
    lost = len(accepted) - stored_count
    customers = len(webhooks.customers.known)
    print(
        f"Messages: {len(accepted)} accepted from {customers} customers; lost {lost} "
        f"(must be 0), duplicated {duplicates} (must be 0); "
        f"{len(refused)} never accepted (their POST failed)."
    )

    outbound = outbound_counts(run.cast.inbox_id, run.started_at)
    tasks = task_counts(run.started_at)
    print(
        "Outbound messages by status after the drain: "
        + (", ".join(f"{s} {n}" for s, n in sorted(outbound.items())) or "none")
        + f"; pending left: {outbound.get('pending', 0)}."
    )
    print(
        "Tasks enqueued during the run: "
        + ", ".join(f"{name} {status} {n}" for (name, status), n in sorted(tasks.items()))
    )
    for path, exc, n in failed_tasks(run.started_at):
        print(f"  failed: {path} raised {exc or '?'} x{n}")
    for name, waits in sorted(task_waits(run.started_at).items()):
        print(
            f"  {name}: wait from enqueue to start p50 {pct(waits, 0.5) / 1000:.1f} s, "
            f"p99 {pct(waits, 0.99) / 1000:.1f} s, max {max(waits):.1f} s"
        )
    states = states_of_run(run.cast.inbox_id, run.started_at)
    print(
        "Conversations started in the run by state: "
        + ", ".join(f"{s} {n}" for s, n in sorted(states.items()))
        + f"; queued for the team in all (earlier runs included): "
        f"{team_queue_length(run.cast.inbox_id)}."
    )

    # Every console of the team may see every conversation of the soak inbox:
    # each socket open the whole run must have had the message.update of every
    # stored inbound message, whichever server took the webhook.
    ordered = sorted(accepted)
    ids: dict[str, tuple[int, int]] = {}
    for i in range(0, len(ordered), 5000):
        ids |= stored(ordered[i : i + 5000])
    inbound = {pk for pk, _conversation in ids.values()}
    steady = [slot for slot in run.slots if not slot.disconnects and not slot.failed_reconnects]
    missed = sum(len(inbound - slot.received()) for slot in steady)
    by_server: Counter[str] = Counter()
    for slot in steady:
        by_server[slot.base.rsplit(":", 1)[-1]] += len(inbound - slot.received())
    events: Counter[str] = Counter()
    for slot in run.slots:
        events.update(slot.events)
    drops = [reason for slot in run.slots for reason in slot.disconnects]
    print(
        f"Websocket: {sum(events.values())} events on {len(run.slots)} sockets ("
        + ", ".join(f"{t} {n}" for t, n in events.most_common())
        + f"); disconnects {len(drops)}"
        + (f" ({', '.join(sorted(set(drops)))})" if drops else "")
        + f", failed reconnects {sum(s.failed_reconnects for s in run.slots)}; "
        f"inbound message.update missed: {missed} of {len(inbound) * len(steady)} "
        f"(message, socket) pairs on the {len(steady)} sockets open all along"
        + (
            " (by server port: " + ", ".join(f"{p} {n}" for p, n in sorted(by_server.items())) + ")"
            if missed
            else ""
        )
        + "."
    )

    print("Memory (VmRSS, MB): start / after warm-up / end / max, growth end vs warm-up:")
    grew = []
    for proc in run.procs:
        growth = proc.growth()
        flag = ""
        if growth is not None and growth > GROWTH_LIMIT:
            flag = f"  <-- grew more than {GROWTH_LIMIT:.0%} after warm-up"
            grew.append(proc.name)
        print(
            f"  {proc.name:<9} {proc.start or 0:6.1f} / {proc.warm or 0:6.1f} / "
            f"{proc.end or 0:6.1f} / {proc.peak:6.1f}   "
            f"{'n/a' if growth is None else f'{growth:+.1%}'}{flag}"
            + (f"  ({proc.died})" if proc.died else "")
        )
    loads = run.loads or [os.getloadavg()[0]]
    print(
        f"Load average (1 min) during the run: min {min(loads):.2f}, "
        f"mean {sum(loads) / len(loads):.2f}, max {max(loads):.2f} on {os.cpu_count()} cores."
    )
    for proc in run.procs:
        levels = log_levels(proc.log)
        if levels:
            print(f"  {proc.name} log ({proc.log.name}): " + ", ".join(
                f"{lvl} {n}" for lvl, n in levels.most_common()
            ))  # fmt: skip

    died = [p for p in run.procs if p.died]
    ok = lost == 0 and duplicates == 0 and stats.server_errors() == 0 and not died
    if not ok:
        for proc in run.procs:
            if log_levels(proc.log).get("error") or proc.died:
                print(f"--- end of {proc.log} ---\n{server_log_tail(proc.log)}")
    verdict = "PASS" if ok else "FAIL"
    print(
        f"{verdict}: lost {lost}, duplicated {duplicates}, 5xx/unanswered "
        f"{stats.server_errors()}, processes died {len(died)}"
        + (f"; memory growth flagged for {', '.join(grew)}" if grew else "")
        + "."
    )
    return ok


def main() -> int:
    args = parse_args()
    configure()
    from django.conf import settings

    cast = prepare(agents=args.agents, sockets=args.sockets)
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[1]
    print(
        f"Soak: {args.minutes:g} min; {args.servers} daphne + {args.workers} "
        f"{args.worker_command} on "
        f"{settings.DATABASE_VENDOR} + {layer}; webhooks {args.webhook_rate:g}/s "
        f"({args.new_share:.0%} new customers, {args.batch_share:.0%} batches, "
        f"{args.redelivery_share:.0%} redeliveries), agent calls {args.agent_rate:g}/s "
        f"over {args.agents} agents, {args.sockets} console sockets. "
        f"Load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores."
    )
    procs: list[Proc] = []
    bases: list[str] = []
    try:
        for i in range(1, 1 + args.servers):
            log = LOG_DIR / f"bench_soak-daphne-{i}.log"
            base, process = start_server(log)
            bases.append(base)
            procs.append(Proc(f"daphne-{i}", process, log))
        for i in range(1, 1 + args.workers):
            log = LOG_DIR / f"bench_soak-worker-{i}.log"
            procs.append(
                Proc(
                    f"worker-{i}" if args.workers > 1 else "worker",
                    start_worker(log, args.worker_command),
                    log,
                )
            )
        time.sleep(2)  # the worker's imports, before its first figure
        settle(args.settle)
        for proc in procs:
            proc.start = proc.sample()
            if proc.died:
                sys.exit(f"{proc.name} {proc.died}:\n{server_log_tail(proc.log)}")
        print("Servers: " + ", ".join(bases) + f"; logs in {LOG_DIR}/bench_soak-*.log")
        run = Run(args, cast, procs, bases)
        asyncio.run(drive(run))
        for proc in procs:
            proc.end = proc.sample()
    finally:
        for proc in procs:
            stop_server(proc.process)
        forget_sessions(cast)
    return 0 if report(run) else 1


if __name__ == "__main__":
    sys.exit(main())

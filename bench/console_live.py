"""Console live-update benchmark: from a customer's webhook POST to the agents' sockets.

Not a test: it prints figures. See bench/README.md ("Console live updates").

    .venv/bin/python bench/console_live.py                 # SQLite + in-memory channel layer

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ispsupport_bench_live \\
    REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/console_live.py --agents 20 --messages 200 --rate 10
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

# The webhook benchmark already builds Meta's envelopes: the same ones here, so
# both benchmarks post what Meta posts.
from webhook_ingest import (  # noqa: E402 - bench/ is on the path when run as a script
    WEBHOOK,
    ensure_database,
    envelope,
    server_log_tail,
    start_server,
    stop_server,
)

SOCKET = "/ws/console/"
TEAM = "Bench live"
OTHER_TEAM = "Bench live (other team)"
# Not the number bench/webhook_ingest.py uses: this script sets the inbox's
# default team, which must not change what the other benchmark measures.
PHONE_NUMBER_ID = "190000000000002"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--agents", type=int, default=20, help="Agents of the team, one socket each."
    )
    parser.add_argument("--messages", type=int, default=200, help="Customer messages to post.")
    parser.add_argument("--rate", type=float, default=10.0, help="Messages posted per second.")
    parser.add_argument("--customers", type=int, default=50, help="Distinct senders (new per run).")
    parser.add_argument(
        "--timeout",
        type=float,
        default=5.0,
        help="Seconds after its POST within which an event must arrive, or it counts as lost.",
    )
    parser.add_argument(
        "--drain",
        type=float,
        default=15.0,
        help="Seconds to keep listening past the timeout, to count late events apart.",
    )
    parser.add_argument(
        "--quiet",
        type=float,
        default=12.0,
        help="Seconds without any event between the warm-up and the timed messages.",
    )
    parser.add_argument("--warmup", type=int, default=5, help="Untimed messages posted first.")
    parser.add_argument(
        "--url", help="Target a running server (same DATABASE_URL) instead of starting daphne."
    )
    parser.add_argument("--seed", type=int, default=11)
    args = parser.parse_args()
    if args.agents < 1 or args.messages < 1 or args.rate <= 0 or args.customers < 1:
        parser.error("--agents, --messages, --customers and --rate must be positive")
    return args


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-3d8a1f6c0b9e2d5a7c4f1e8b0a3d6c9f")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("LOG_LEVEL", "warning")
    os.environ.setdefault("WHATSAPP_PHONE_NUMBER_ID", PHONE_NUMBER_ID)
    os.environ.setdefault("WHATSAPP_APP_SECRET", "bench-app-secret-5f2c8a1e")
    # No access token: the number is in sandbox mode, nothing could leave the machine.
    os.environ.pop("WHATSAPP_ACCESS_TOKEN", None)
    # The embedded default is the developer's var/db.sqlite3: never seed bench
    # agents and customers there.
    os.environ.setdefault(
        "DATABASE_URL", f"sqlite:///{ROOT / 'var' / 'bench_console_live.sqlite3'}"
    )
    ensure_database(os.environ["DATABASE_URL"])
    import django

    django.setup()


# --- Data ------------------------------------------------------------------------------


@dataclass
class Cast:
    secret: str
    phone_number_id: str
    cookie: str
    agent_sessions: list[str]
    other_session: str


def prepare(*, agents: int) -> Cast:
    """Migrate; the number, its inbox routed to the bench team, the agents and their sessions."""
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
    other, _ = Team.objects.get_or_create(name=OTHER_TEAM)
    inbox = account.inbox
    if inbox.default_team_id != team.pk:
        # New conversations land in the team's inbox: every agent of it may see
        # them (conversations_visible_to), so every socket must get the event.
        inbox.default_team = team
        inbox.save(update_fields=["default_team"])  # also drops the cached account

    def agent(username: str, member_of: Team) -> User:
        user, created = User.objects.get_or_create(
            username=username,
            defaults={"name": username, "role": User.Role.AGENT, "is_active": True},
        )
        if created:
            user.set_unusable_password()
            user.save(update_fields=["password"])
        member_of.members.add(user)
        return user

    def session(user: User) -> str:
        client = Client()
        client.force_login(user)
        return str(client.cookies[settings.SESSION_COOKIE_NAME].value)

    members = [agent(f"bench-live-{i:03d}", team) for i in range(1, 1 + agents)]
    outsider = agent("bench-live-other", other)
    outsider.teams.set([other])  # only ever the other team, whatever an earlier run left
    return Cast(
        secret=str(settings.WHATSAPP_APP_SECRET),
        phone_number_id=account.phone_number_id,
        cookie=settings.SESSION_COOKIE_NAME,
        agent_sessions=[session(user) for user in members],
        other_session=session(outsider),
    )


def forget_sessions(cast: Cast) -> None:
    from django.contrib.sessions.models import Session

    Session.objects.filter(session_key__in=[*cast.agent_sessions, cast.other_session]).delete()


def stored(wamids: list[str]) -> dict[str, tuple[int, int]]:
    """wamid -> (message id, conversation id) of what the server stored."""
    from conversations.models import Message

    rows = Message.objects.filter(external_id__in=wamids).values_list(
        "external_id", "pk", "conversation_id"
    )
    return {wamid: (pk, conversation_id) for wamid, pk, conversation_id in rows}


# --- Server ----------------------------------------------------------------------------

SERVER_LOG = ROOT / "var" / "bench_console_live-daphne.log"


# --- Sockets ---------------------------------------------------------------------------


@dataclass
class Listener:
    """One console tab: every event it receives, with the time it arrived."""

    name: str
    ws: ClientConnection
    events: list[tuple[float, dict[str, Any]]] = field(default_factory=list)
    message_ids: set[int] = field(default_factory=set)  # of every message.update so far
    closed: str = ""

    async def listen(self) -> None:
        try:
            async for raw in self.ws:
                arrived = time.perf_counter()
                event = json.loads(raw)
                self.events.append((arrived, event))
                if event.get("type") == "message.update":
                    self.message_ids.add(event["id"])
        except ConnectionClosed as exc:
            self.closed = f"closed ({exc.rcvd.code if exc.rcvd else 'no close frame'})"
        else:
            self.closed = "closed by the server"


async def open_socket(base: str, cookie: str, name: str) -> Listener:
    ws_url = "ws" + base.removeprefix("http") + SOCKET
    try:
        ws = await connect(
            ws_url,
            origin=base,  # type: ignore[arg-type]  # websockets' Origin is a str NewType
            additional_headers={"Cookie": cookie},
            open_timeout=15,
            compression=None,
        )
    except InvalidStatus as exc:
        sys.exit(
            f"{SOCKET} refused the handshake of {name} with HTTP {exc.response.status_code}: "
            "is the console consumer routed in ispsupport/routing.py, and is the server "
            "using this DATABASE_URL (the sessions are there)?"
        )
    try:
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout=10))
    except (TimeoutError, ConnectionClosed):
        sys.exit(f"{name}: no hello from {SOCKET} within 10 s after the handshake")
    if first.get("type") != "hello":
        sys.exit(f"{name}: the first frame was {first!r}, expected {{'type': 'hello'}}")
    return Listener(name, ws)


# --- Load ------------------------------------------------------------------------------


@dataclass
class Post:
    wamid: str
    body: bytes
    sent: float = 0.0
    answered: float = 0.0
    status: str = ""


def build(
    args: argparse.Namespace, phone_number_id: str, run: str
) -> tuple[list[Post], list[Post]]:
    """(warm-up posts, timed posts): one message per envelope, fresh senders per run."""
    rng = random.Random(f"{args.seed}-{run}")  # noqa: S311 - test data, not secrets
    customers = [f"55119{rng.randrange(10**7, 10**8)}" for _ in range(args.customers)]

    def post(label: str, n: int, wa_id: str) -> Post:
        wamid = f"wamid.LIVE{run}{label}{n:06d}"
        text = f"Sem internet desde cedo ({label}{n}), já reiniciei o roteador"
        return Post(wamid, envelope(phone_number_id, [(wamid, wa_id, text)]))

    warm_sender = f"55119{rng.randrange(10**7, 10**8)}"
    warmup = [post("W", n, warm_sender) for n in range(args.warmup)]
    timed = [post("T", n, rng.choice(customers)) for n in range(args.messages)]
    return warmup, timed


async def send(client: httpx.AsyncClient, secret: str, item: Post) -> None:
    digest = hmac.new(secret.encode(), item.body, hashlib.sha256).hexdigest()
    headers = {"Content-Type": "application/json", "X-Hub-Signature-256": f"sha256={digest}"}
    item.sent = time.perf_counter()
    try:
        response = await client.post(WEBHOOK, content=item.body, headers=headers)
        item.status = "" if response.status_code == 200 else f"HTTP {response.status_code}"
    except httpx.HTTPError as exc:
        item.status = type(exc).__name__
    item.answered = time.perf_counter()


async def paced(client: httpx.AsyncClient, secret: str, items: list[Post], rate: float) -> None:
    """Post at a steady rate whatever the answer time: a slow answer must not
    slow the arrivals down, or a backlog would hide in the client."""
    started = time.perf_counter()
    tasks = []
    for i, item in enumerate(items):
        delay = started + i / rate - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(send(client, secret, item)))
    await asyncio.gather(*tasks)


@dataclass
class Outcome:
    agents: list[Listener]
    other: Listener
    connect_seconds: float
    ids: dict[str, tuple[int, int]]  # wamid -> (message id, conversation id)
    closed_in_quiet: list[str]  # sockets the server closed while nothing happened


async def run_load(
    args: argparse.Namespace, base: str, cast: Cast, warmup: list[Post], timed: list[Post]
) -> Outcome:
    from asgiref.sync import sync_to_async

    started = time.perf_counter()
    agents = await asyncio.gather(
        *(
            open_socket(base, f"{cast.cookie}={s}", f"agent {i + 1}")
            for i, s in enumerate(cast.agent_sessions)
        )
    )
    other = await open_socket(base, f"{cast.cookie}={cast.other_session}", "other-team agent")
    connected = time.perf_counter() - started
    listeners = [*agents, other]
    readers = [asyncio.create_task(listener.listen()) for listener in listeners]
    try:
        async with httpx.AsyncClient(base_url=base, timeout=30) as client:
            # Imports, the cached account, the connection pools: outside the timing.
            await paced(client, cast.secret, warmup, args.rate)
            # A console spends nights with nothing to say: its socket must live
            # through the quiet and carry the first message after it.
            await asyncio.sleep(1 + args.quiet)
            closed_in_quiet = [listener.name for listener in listeners if listener.closed]
            await paced(client, cast.secret, timed, args.rate)
        ids = await sync_to_async(stored)([item.wamid for item in timed])
        expected = {pk for pk, _conversation in ids.values()}
        # Past the timeout an event counts as lost, but waiting longer tells a
        # late event (a server behind) from one that never comes (dropped).
        deadline = max(item.sent for item in timed) + args.timeout + args.drain
        while time.perf_counter() < deadline:
            if all(expected <= listener.message_ids for listener in agents):
                break
            await asyncio.sleep(0.05)
        # Whatever the other team's agent would still get arrives in this second.
        await asyncio.sleep(1)
    finally:
        for listener in listeners:
            await listener.ws.close()
        await asyncio.gather(*readers, return_exceptions=True)
    return Outcome(list(agents), other, connected, ids, closed_in_quiet)


# --- Figures ---------------------------------------------------------------------------


def pct(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


def spread(label: str, samples: list[float]) -> str:
    if not samples:
        return f"{label}: no samples"
    return (
        f"{label}: p50 {pct(samples, 0.50):7.1f} ms  p95 {pct(samples, 0.95):7.1f} ms  "
        f"p99 {pct(samples, 0.99):7.1f} ms  max {max(samples) * 1000:7.1f} ms"
    )


def conversation_of(event: dict[str, Any]) -> Any:
    if event.get("type") in ("conversation.update", "conversation.removed"):
        return event.get("id")
    return event.get("conversation_id", event.get("conversation"))


def report(args: argparse.Namespace, outcome: Outcome, timed: list[Post]) -> bool:
    agents, other, ids = outcome.agents, outcome.other, outcome.ids
    if args.quiet:
        closed = outcome.closed_in_quiet
        names = f": {', '.join(closed)}" if closed else ""
        print(
            f"Sockets closed by the server during {args.quiet:g} s without events: "
            f"{len(closed)} of {len(agents) + 1} (must be 0){names}."
        )
    errors: dict[str, int] = {}
    for item in timed:
        if item.status:
            errors[item.status] = errors.get(item.status, 0) + 1
    window = max(item.sent for item in timed) - min(item.sent for item in timed)
    answers = [item.answered - item.sent for item in timed]
    print(
        f"POST {WEBHOOK}: {len(timed)} in {window:.1f} s "
        f"({(len(timed) - 1) / max(window, 1e-9):.1f}/s), "
        f"p50 {pct(answers, 0.5):.1f} ms, p99 {pct(answers, 0.99):.1f} ms, "
        f"errors: {', '.join(f'{k}: {v}' for k, v in errors.items()) or 'none'}"
    )

    latencies: list[float] = []
    slowest: list[float] = []
    lost = late = duplicates = before_answer = 0
    first_seen: list[dict[int, float]] = []
    for listener in agents:
        seen: dict[int, float] = {}
        events: set[object] = set()
        for arrived, event in listener.events:
            if event.get("type") != "message.update":
                continue
            event_id = event.get("event")
            if event_id is not None and event_id in events:
                duplicates += 1
            events.add(event_id)
            seen.setdefault(event["id"], arrived)
        first_seen.append(seen)
    for item in timed:
        if item.wamid not in ids:
            lost += len(agents)  # never stored: no socket can have it
            continue
        pk = ids[item.wamid][0]
        per_message = []
        for seen in first_seen:
            arrived = seen.get(pk)
            if arrived is None:
                lost += 1
            elif arrived - item.sent > args.timeout:
                late += 1
            else:
                latencies.append(arrived - item.sent)
                per_message.append(arrived - item.sent)
                before_answer += arrived < item.answered
        if len(per_message) == len(agents):
            slowest.append(max(per_message))

    pairs = len(timed) * len(agents)
    print(
        f"message.update, POST sent -> agent socket, {len(latencies)} of {pairs} "
        f"(message, socket) pairs:"
    )
    print("  " + spread("every pair          ", latencies))
    print("  " + spread("slowest socket/msg  ", slowest))
    # The event goes out on commit, before the view has built its answer: a
    # share near 100 % says the time is in the webhook's transaction, not the fan-out.
    share = before_answer / max(len(latencies), 1) * 100
    print(f"  arrived before the POST's own answer: {share:.0f} % of pairs")
    print(
        f"Events lost (not received within {args.timeout:g} s): {lost + late}, must be 0 "
        f"({late} arrived later, {lost} not within {args.timeout + args.drain:g} s). "
        f"Same event delivered twice to a socket: {duplicates}."
    )
    dropped = [f"{listener.name}: {listener.closed}" for listener in agents if listener.closed]
    if dropped and lost:
        more = f"; … {len(dropped) - 5} more" if len(dropped) > 5 else ""
        print(
            f"Agent sockets closed before the end: {len(dropped)} of {len(agents)} "
            f"({'; '.join(dropped[:5])}{more})."
        )

    conversations = {conversation for _pk, conversation in ids.values()}
    leaked = [e for _t, e in other.events if conversation_of(e) in conversations]
    others = [e for _t, e in other.events if e.get("type") not in ("pong",)]
    print(
        f"Other team's agent: {len(leaked)} events of the {len(conversations)} bench "
        f"conversations (must be 0); {len(others)} events in all."
    )
    return lost + late == 0 and not leaked and not errors and not outcome.closed_in_quiet


def main() -> int:
    args = parse_args()
    configure()
    from django.conf import settings

    cast = prepare(agents=args.agents)
    run = uuid.uuid4().hex[:8].upper()
    warmup, timed = build(args, cast.phone_number_id, run)
    layer = settings.CHANNEL_LAYERS["default"]["BACKEND"].rsplit(".", 1)[1]
    print(
        f"Database: {settings.DATABASE_VENDOR}; channel layer: {layer}; {args.agents} agents of "
        f"{TEAM!r} + 1 of another team, one socket each; {args.messages} messages from "
        f"{args.customers} new customers at {args.rate:g}/s."
    )

    load_before = os.getloadavg()[0]
    process = None
    base = args.url.rstrip("/") if args.url else ""
    if not base:
        base, process = start_server(SERVER_LOG)
        print(f"Started daphne at {base} (DEBUG=false, one process, no task worker).")
    try:
        outcome = asyncio.run(run_load(args, base, cast, warmup, timed))
    finally:
        if process is not None:
            stop_server(process)
        forget_sessions(cast)
    print(
        f"Connected {len(outcome.agents) + 1} sockets in {outcome.connect_seconds:.2f} s "
        "(a hello on each)."
    )
    # Client, daphne and the database share the machine: a busy one moves every figure.
    print(f"Load average (1 min): {load_before:.2f} before, {os.getloadavg()[0]:.2f} after.")
    ok = report(args, outcome, timed)
    if process is not None:
        logged = len(SERVER_LOG.read_text(errors="replace").splitlines())
        print(f"daphne wrote {logged} log lines (level {os.environ['LOG_LEVEL']}): {SERVER_LOG}")
        if not ok and logged:
            print(server_log_tail(SERVER_LOG))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

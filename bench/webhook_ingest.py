"""Webhook ingest benchmark: signed WhatsApp envelopes against a real server.

Not a test: it prints figures. See bench/README.md ("Webhook ingest").

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ispsupport_bench \\
    REDIS_URL=redis://127.0.0.1:6379/9 \\
        .venv/bin/python bench/webhook_ingest.py --messages 5000 --concurrency 32
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

WEBHOOK = "/api/v1/whatsapp/webhook"
# The cheapest view that still goes through the whole Django stack (middleware,
# URL resolver, JSON response) and touches neither the database nor the cache.
TRIVIAL = "/info"
SERVER_LOG = ROOT / "var" / "bench_webhook_ingest-daphne.log"


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="Unique messages to post.")
    parser.add_argument("--concurrency", type=int, default=16, help="Client threads.")
    parser.add_argument(
        "--batch-share",
        type=float,
        default=0.3,
        help="Share of envelopes that carry several messages (2 to 5).",
    )
    parser.add_argument(
        "--duplicate-share",
        type=float,
        default=0.1,
        help="Share of envelopes posted a second time on purpose (Meta redelivers).",
    )
    parser.add_argument("--customers", type=int, default=300, help="Distinct senders.")
    parser.add_argument(
        "--url", help="Target a running server (same DATABASE_URL) instead of starting daphne."
    )
    parser.add_argument("--seed", type=int, default=7)
    return parser.parse_args()


def configure() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ.setdefault("DEBUG", "false")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-7c1e9a4b2d6f8e0a3c5b7d9f1e3a5c7b")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    os.environ.setdefault("LOG_LEVEL", "warning")
    os.environ.setdefault("WHATSAPP_PHONE_NUMBER_ID", "190000000000001")
    os.environ.setdefault("WHATSAPP_APP_SECRET", "bench-app-secret-5f2c8a1e")
    # No access token: the number is in sandbox mode, nothing could leave the machine.
    os.environ.pop("WHATSAPP_ACCESS_TOKEN", None)
    if not os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
        print(
            "note: DATABASE_URL is not PostgreSQL; SQLite figures say little about production.",
            file=sys.stderr,
        )

    ensure_database(os.environ.get("DATABASE_URL", ""))
    import django

    django.setup()


def ensure_database(url: str) -> None:
    """Create the benchmark's PostgreSQL database on a machine that has never run it."""
    if not url.startswith(("postgres://", "postgresql://")):
        return
    import psycopg
    from psycopg import sql

    name = url.rsplit("/", 1)[1].split("?", 1)[0]
    maintenance = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(maintenance, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        print(f"Created database {name}.", file=sys.stderr)


def prepare_account() -> str:
    """Migrate and make sure the number from the environment exists; its app secret."""
    from django.conf import settings
    from django.core.management import call_command

    from whatsapp.services import account_bootstrap_from_env

    call_command("migrate", interactive=False, verbosity=0)
    account_bootstrap_from_env()
    return str(settings.WHATSAPP_APP_SECRET)


# --- Envelopes -------------------------------------------------------------------------


def envelope(phone_number_id: str, messages: list[tuple[str, str, str]]) -> bytes:
    """One POST as Meta sends it: (wamid, wa_id, text) per message, one change."""
    now = int(time.time())
    senders = sorted({wa_id for _, wa_id, _ in messages})
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": "551140001234", "phone_number_id": phone_number_id},
        "contacts": [
            {"profile": {"name": f"Cliente {wa_id[-4:]}"}, "wa_id": wa_id} for wa_id in senders
        ],
        "messages": [
            {
                "from": wa_id,
                "id": wamid,
                "timestamp": str(now),
                "type": "text",
                "text": {"body": text},
            }
            for wamid, wa_id, text in messages
        ],
    }
    body = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "190000000000099", "changes": [{"field": "messages", "value": value}]}],
    }
    # Meta escapes non-ASCII (the "ç" and "ã" below) as \\uXXXX; so does json.dumps.
    return json.dumps(body, separators=(",", ":")).encode()


def build(args: argparse.Namespace, phone_number_id: str, run: str) -> tuple[list[bytes], set[str]]:
    rng = random.Random(args.seed)  # noqa: S311 - test data, not secrets
    customers = [f"55119{rng.randrange(10**7, 10**8)}" for _ in range(args.customers)]
    bodies: list[bytes] = []
    wamids: set[str] = set()
    n = 0
    while n < args.messages:
        size = rng.randint(2, 5) if rng.random() < args.batch_share else 1
        size = min(size, args.messages - n)
        batch = []
        for _ in range(size):
            n += 1
            wamid = f"wamid.BENCH{run}{n:08d}"
            wamids.add(wamid)
            batch.append((wamid, rng.choice(customers), f"Minha conexão caiu ({n}), não navega"))
        bodies.append(envelope(phone_number_id, batch))
    duplicates = [body for body in bodies if rng.random() < args.duplicate_share]
    bodies += duplicates
    rng.shuffle(bodies)
    return bodies, wamids


# --- Load ------------------------------------------------------------------------------


@dataclass
class Figures:
    requests: int
    seconds: float
    latencies: list[float]
    errors: dict[str, int]

    def pct(self, p: float) -> float:
        ordered = sorted(self.latencies)
        return ordered[min(len(ordered) - 1, int(p * len(ordered)))] * 1000 if ordered else 0.0


def hammer(
    base: str, items: list[Any], concurrency: int, send: Callable[[httpx.Client, Any], int]
) -> Figures:
    latencies: list[float] = []
    errors: dict[str, int] = {}
    lock = threading.Lock()
    cursor = iter(items)

    def worker() -> None:
        with httpx.Client(base_url=base, timeout=30) as client:
            while True:
                with lock:
                    item = next(cursor, None)
                if item is None:
                    return
                started = time.perf_counter()
                try:
                    status = send(client, item)
                    outcome = "" if status == 200 else f"HTTP {status}"
                except httpx.HTTPError as exc:
                    outcome = type(exc).__name__
                elapsed = time.perf_counter() - started
                with lock:
                    latencies.append(elapsed)
                    if outcome:
                        errors[outcome] = errors.get(outcome, 0) + 1

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return Figures(len(items), time.perf_counter() - started, latencies, errors)


def count_stored(wamids: set[str]) -> tuple[int, int]:
    """(distinct wamids stored, rows beyond one per wamid)."""
    from django.db.models import Count

    from conversations.models import Message

    stored = rows = 0
    ordered = sorted(wamids)
    for i in range(0, len(ordered), 1000):
        chunk = ordered[i : i + 1000]
        counts = (
            Message.objects.filter(external_id__in=chunk)
            .values("external_id")
            .annotate(n=Count("id"))
            .order_by()
        )
        for row in counts:
            stored += 1
            rows += row["n"]
    return stored, rows - stored


# --- Server ----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start_server(log_path: Path) -> tuple[str, subprocess.Popen[bytes]]:
    """daphne on a free port, its output in ``log_path``: a pipe nobody reads
    would fill up with log lines and freeze the server mid-run."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [
                sys.executable,
                "-m",
                "daphne",
                "--bind",
                "127.0.0.1",
                "--port",
                str(port),
                "--access-log",
                os.devnull,
                "ispsupport.asgi:application",
            ],
            cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            sys.exit(f"daphne exited with {process.returncode}:\n{server_log_tail(log_path)}")
        try:
            httpx.get(f"{base}{TRIVIAL}", timeout=2)
            return base, process
        except httpx.HTTPError:
            time.sleep(0.2)
    stop_server(process)
    sys.exit(f"daphne did not answer within 30 s:\n{server_log_tail(log_path)}")


def server_log_tail(log_path: Path, lines: int = 20) -> str:
    try:
        tail = log_path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    # A structlog JSON line carries its whole traceback: the start says what happened.
    return "\n".join(line if len(line) <= 300 else line[:300] + " …" for line in tail)


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def line(label: str, figures: Figures, unit: str, per_request: int = 1) -> str:
    rate = figures.requests * per_request / figures.seconds
    errors = ", ".join(f"{k}: {v}" for k, v in figures.errors.items()) or "none"
    return (
        f"{label:<22} {figures.requests:>6} requests in {figures.seconds:6.2f} s  "
        f"{rate:8.1f} {unit}/s  p50 {figures.pct(0.50):7.2f} ms  p99 {figures.pct(0.99):7.2f} ms"
        f"  errors: {errors}"
    )


def main() -> int:
    args = parse_args()
    configure()
    from django.conf import settings

    secret = prepare_account()
    phone_number_id = settings.WHATSAPP_PHONE_NUMBER_ID
    run = uuid.uuid4().hex[:8].upper()
    bodies, wamids = build(args, phone_number_id, run)
    print(
        f"Database: {settings.DATABASE_VENDOR}; cache: {settings.CACHES['default']['BACKEND']}; "
        f"{len(wamids)} messages in {len(bodies)} POSTs (duplicates included), "
        f"concurrency {args.concurrency}."
    )

    process = None
    base = args.url.rstrip("/") if args.url else ""
    if not base:
        base, process = start_server(SERVER_LOG)
        print(f"Started daphne at {base} (DEBUG=false, one process).")
    try:

        def post(client: httpx.Client, body: bytes) -> int:
            digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
            response = client.post(
                WEBHOOK,
                content=body,
                headers={
                    "Content-Type": "application/json",
                    "X-Hub-Signature-256": f"sha256={digest}",
                },
            )
            return response.status_code

        def get(client: httpx.Client, _item: int) -> int:
            return client.get(TRIVIAL).status_code

        # Warm both paths (imports, connection pool, cached account) outside the timing.
        hammer(base, list(range(args.concurrency)), args.concurrency, get)
        webhook = hammer(base, bodies, args.concurrency, post)
        trivial = hammer(base, list(range(len(bodies))), args.concurrency, get)
    finally:
        if process is not None:
            stop_server(process)

    stored, duplicates = count_stored(wamids)
    lost = len(wamids) - stored
    msg_rate = len(wamids) / webhook.seconds
    print(line(f"POST {WEBHOOK}", webhook, "req"))
    print(f"{'':<22} {msg_rate:8.1f} unique messages/s")
    print(line(f"GET {TRIVIAL}", trivial, "req"))
    web_rps = webhook.requests / webhook.seconds
    triv_rps = trivial.requests / trivial.seconds
    print(
        f"Ratio webhook/trivial: throughput {web_rps / triv_rps:.2f}x, "
        f"p50 {webhook.pct(0.5) / max(trivial.pct(0.5), 1e-9):.2f}x, "
        f"p99 {webhook.pct(0.99) / max(trivial.pct(0.99), 1e-9):.2f}x"
    )
    print(f"Messages lost: {lost} (must be 0); duplicates: {duplicates} (must be 0).")
    ok = lost == 0 and duplicates == 0 and not webhook.errors
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

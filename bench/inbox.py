"""Inbox benchmark on PostgreSQL: the conversation list and take-next under load.

Not a test: it prints figures. See bench/README.md.

    DATABASE_URL=postgres://postgres@127.0.0.1:5432/ispsupport_bench \\
        .venv/bin/python bench/inbox.py --conversations 100000
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
CursorWrapper: Any = None  # django.db.backends.utils.CursorWrapper, once Django is set up


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30, help="Timed runs per request.")
    parser.add_argument("--skip-seed", action="store_true", help="Use the data as it is.")
    parser.add_argument("--takers", type=int, default=8, help="Agents taking at once.")
    parser.add_argument("--queued", type=int, default=2000, help="Conversations to take.")
    parser.add_argument("--seed", type=int, default=42)
    return parser.parse_args()


def configure() -> None:
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith(("postgres://", "postgresql://")):
        sys.exit(
            "bench/inbox.py measures PostgreSQL only: set DATABASE_URL=postgres://... to a "
            "dedicated database (e.g. postgres://postgres@127.0.0.1:5432/ispsupport_bench). "
            "SQLite figures would say nothing about production."
        )
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ispsupport.settings")
    os.environ.setdefault("SECRET_KEY", "bench-only-secret-key-0f3b6c9e2a5d8f1b4e7a0c3d6f9b2e5a")
    os.environ.setdefault("ALLOWED_HOSTS", "testserver,localhost,127.0.0.1")
    os.environ.setdefault("SECURE_SSL_REDIRECT", "false")
    # Thousands of requests in a minute from one user: not what the limit is for.
    os.environ.setdefault("API_RATE_LIMIT", "1000000/m")
    os.environ.setdefault("LOG_LEVEL", "warning")
    os.environ.setdefault("DATABASE_MAX_OVERFLOW", "16")

    import django

    django.setup()
    global CursorWrapper
    from django.db.backends.utils import CursorWrapper


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


@contextmanager
def counting_queries() -> Iterator[list[str]]:
    """Every SQL statement run in this process meanwhile.

    Not CaptureQueriesContext: a request through the test client may run on
    another connection object than the caller's ``connection`` (asgiref's
    context-local connections), and its queries would not be seen.
    """
    seen: list[str] = []
    original = CursorWrapper._execute_with_wrappers

    def counted(self: CursorWrapper, sql: str, *args: Any, **kwargs: Any) -> Any:
        seen.append(sql)
        return original(self, sql, *args, **kwargs)

    CursorWrapper._execute_with_wrappers = counted  # type: ignore[method-assign]
    try:
        yield seen
    finally:
        CursorWrapper._execute_with_wrappers = original  # type: ignore[method-assign]


def measure(label: str, runs: int, call: Callable[[], tuple[int, int]]) -> None:
    """Run ``call`` (returns status and rows) twice to warm up, then ``runs``
    times; print queries of one run and latency percentiles."""
    for _ in range(2):
        call()
    with counting_queries() as queries:
        status, rows = call()
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        timings.append((time.perf_counter() - started) * 1000)
    print(
        f"  {label:<28} {status:>4} {rows:>3} rows {len(queries):>3} queries  "
        f"p50 {statistics.median(timings):7.1f} ms  p95 {percentile(timings, 0.95):7.1f} ms"
    )


def seed(args: argparse.Namespace) -> None:
    from django.core.management import call_command

    from conversations.models import Conversation

    present = Conversation.objects.filter(contact__customer_code__startswith="DEMO-").count()
    if args.skip_seed or present == args.conversations:
        print(f"Seed: {present} demo conversations present, not seeding.")
        return
    started = time.monotonic()
    call_command(
        "seed_demo",
        conversations=args.conversations,
        seed=args.seed,
        reset=present > 0,
        commit=True,
        stdout=open(os.devnull, "w"),  # noqa: SIM115 - progress lines are not figures
    )
    print(f"Seed: {args.conversations} conversations in {time.monotonic() - started:.1f} s.")
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")


def bench_list(args: argparse.Namespace) -> None:
    from django.test import Client
    from django.urls import Resolver404, resolve
    from rest_framework_simplejwt.tokens import AccessToken

    from accounts.models import User
    from conversations import selectors

    agent = User.objects.get(username="joana.ribeiro")
    admin = User.objects.filter(username="bench.admin").first()
    if admin is None:
        admin = User.objects.create_user(
            username="bench.admin", password=None, role=User.Role.ADMIN, is_staff=True
        )
    people = [("agent", agent), ("admin", admin)]
    try:
        resolve("/api/v1/conversations/")
    except Resolver404:
        api = False
    else:
        api = True

    if api:
        print(f"\nGET /api/v1/conversations/ (Django test client, JWT), {args.runs} runs each:")
        for role, user in people:
            client = Client()
            headers = {"Authorization": f"Bearer {AccessToken.for_user(user)}"}

            def get(url: str, c: Client = client, h: dict[str, str] = headers) -> tuple[int, int]:
                response = c.get(url, headers=h)
                body = response.json() if response.status_code == 200 else {}
                return response.status_code, len(body.get("results", []))

            base = "/api/v1/conversations/?page_size=50"
            later = base
            for _ in range(10):
                body = client.get(later, headers=headers).json()
                if not body.get("next"):
                    break
                parts = urlsplit(body["next"])
                later = f"{parts.path}?{parts.query}"
            for label, url in (
                ("first page", base),
                ("page 11 (cursor)", later),
                ("state=queued", f"{base}&state=queued"),
                ("q=Souza", f"{base}&q=Souza"),
                ("state=open&q=Souza", f"{base}&state=open&q=Souza"),
            ):
                measure(f"{role:<5} {label}", args.runs, lambda u=url: get(u))
    else:
        print("\n/api/v1/conversations/ is not routed yet: measuring the selector instead.")

    print(f"\nselectors.inbox_list, first 50 rows, {args.runs} runs each:")
    for role, user in people:
        for label, kwargs in (
            ("all", {}),
            ("state=queued", {"state": "queued"}),
            ("q=Souza", {"q": "Souza"}),
        ):

            def run(u: User = user, k: dict[str, Any] = kwargs) -> tuple[int, int]:
                rows = list(
                    selectors.inbox_list(user=u, **k).order_by("-last_message_at", "-id")[:50]
                )
                for row in rows:
                    list(row.tags.all())
                return 200, len(rows)

            measure(f"{role:<5} {label}", args.runs, run)


def bench_take_next(args: argparse.Namespace) -> None:
    from django.db import connection
    from django.utils import timezone

    from accounts.models import Team, User
    from conversations.models import Contact, Conversation, Inbox
    from conversations.services import conversation_take_next

    team, _ = Team.objects.get_or_create(name="Bench take-next")
    inbox, _ = Inbox.objects.get_or_create(name="Bench", defaults={"default_team": team})
    Conversation.objects.filter(inbox=inbox).delete()
    takers = []
    for n in range(args.takers):
        user, _ = User.objects.get_or_create(
            username=f"bench.taker{n + 1}", defaults={"role": User.Role.AGENT}
        )
        user.teams.set([team])
        takers.append(user)
    contact_ids = list(
        Contact.objects.filter(customer_code__startswith="DEMO-")
        .order_by("pk")
        .values_list("pk", flat=True)[: args.queued]
    )
    now = timezone.now()
    Conversation.objects.bulk_create(
        Conversation(
            contact_id=pk,
            inbox=inbox,
            team=team,
            state=Conversation.State.QUEUED,
            created_at=now,
            last_message_at=now,
            queued_at=now - timezone.timedelta(seconds=len(contact_ids) - i),
        )
        for i, pk in enumerate(contact_ids)
    )
    taken: dict[str, list[int]] = {}
    errors: list[str] = []
    barrier = threading.Barrier(len(takers))

    def take(agent: User) -> None:
        mine: list[int] = []
        try:
            barrier.wait()
            while (conversation := conversation_take_next(agent=agent)) is not None:
                mine.append(conversation.pk)
        except Exception as exc:
            errors.append(f"{agent.username}: {type(exc).__name__}: {exc}")
        finally:
            taken[agent.username] = mine
            connection.close()

    threads = [threading.Thread(target=take, args=(agent,)) for agent in takers]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    every = [pk for ids in taken.values() for pk in ids]
    duplicates = sum(n - 1 for n in Counter(every).values() if n > 1)
    rows = Conversation.objects.filter(inbox=inbox)
    left = rows.filter(state=Conversation.State.QUEUED).count()
    mismatched = sum(
        1
        for pk, assignee in rows.values_list("pk", "assignee__username")
        if pk in set(every) and assignee not in taken
    )
    per_agent = sorted(len(ids) for ids in taken.values())
    print(
        f"\ntake-next: {len(takers)} agents at once on {len(contact_ids)} queued conversations: "
        f"{len(every)} taken, {duplicates} duplicates, {left} left in the queue, "
        f"{mismatched} with a wrong assignee, {elapsed:.1f} s "
        f"({len(every) / elapsed:.0f}/s); per agent {per_agent[0]}-{per_agent[-1]}."
    )
    for line in errors:
        print(f"  error: {line}")
    rows.delete()


def main() -> None:
    args = parse_args()
    configure()
    from django.core.management import call_command
    from django.db import connection

    print(
        f"PostgreSQL {connection.cursor().connection.info.server_version}, database "
        f"{connection.settings_dict['NAME']}"
    )
    call_command("migrate", verbosity=0)
    seed(args)
    bench_list(args)
    bench_take_next(args)


if __name__ == "__main__":
    main()

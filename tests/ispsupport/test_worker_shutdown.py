"""Stopping the task worker never loses a task.

The real thing first (marked ``server``): ``manage.py worker`` (and
django-tasks-db's ``db_worker``, which scripts/serve ran before) as a child
process on a SQLite file, stopped with real signals while a task runs. Then
the same rules in this process, where the task sends the signals itself, so
that the moment is exact.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ispsupport.tasks import background_task, enqueue
from tests.support import ROOT, server_env

HERE = __name__
TABLE = "django_tasks_database_dbtaskresult"
# The slow task's length: long enough to signal the worker while it runs.
SLOW_SECONDS = 2.0
# Starting Django takes a few seconds on a busy CI machine.
START_TIMEOUT = 40.0
EXIT_TIMEOUT = 15.0


# --- Tasks the child worker runs (it imports them from this module) --------------------


@background_task()
def slow_step(name: str, seconds: float) -> str:
    """Leaves ``<name>.started`` and, ``seconds`` later, ``<name>.finished``."""
    folder = Path(os.environ["WORKER_TEST_DIR"])
    (folder / f"{name}.started").touch()
    time.sleep(seconds)
    (folder / f"{name}.finished").touch()
    return name


# --- The child process -------------------------------------------------------------------


def _env(database: Path, folder: Path) -> dict[str, str]:
    env = server_env(
        DATABASE_URL=f"sqlite:///{database}",
        WORKER_TEST_DIR=str(folder),
        DEBUG="false",
        LOG_FORMAT="console",
    )
    for name in ("REDIS_URL", "REQUIRE_SERVICES", "EVENTS_RELAY_URL", "PROMETHEUS_MULTIPROC_DIR"):
        env.pop(name, None)
    return env


def _manage(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.fixture(scope="module")
def queued_database(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file holding two ready tasks, in this order:
    ``slow_step("first", 2 s)`` and ``slow_step("second", 0 s)``."""
    folder = tmp_path_factory.mktemp("worker-template")
    database = folder / "db.sqlite3"
    env = _env(database, folder)
    # One Django start for both steps: starting one takes seconds on a busy machine.
    _manage(
        "shell",
        "-c",
        "from django.core.management import call_command; "
        "call_command('migrate', interactive=False, verbosity=0); "
        "from ispsupport.tasks import enqueue; "
        f"from {HERE} import slow_step; "
        f"enqueue(slow_step, 'first', {SLOW_SECONDS}); "
        "enqueue(slow_step, 'second', 0)",
        env=env,
    )
    return database


class Worker:
    """One worker child process on its own copy of the queued database."""

    def __init__(self, database: Path, folder: Path) -> None:
        self.database = database
        self.folder = folder
        self.process: subprocess.Popen[str] | None = None

    def start(self, command: str = "worker", *extra: str) -> None:
        args = [command, "--no-startup-delay", "--interval", "0.2", *extra]
        if command == "db_worker":
            args.append("--no-reload")  # as scripts/serve runs it
        self.process = subprocess.Popen(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=_env(self.database, self.folder),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )

    def wait_for(self, marker: str, timeout: float = START_TIMEOUT) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while not (self.folder / marker).exists():
            if self.process.poll() is not None:
                raise AssertionError(f"worker exited early:\n{self.output()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"no {marker} within {timeout} s:\n{self.stop()}")
            time.sleep(0.05)

    def signal(self, sig: int) -> None:
        assert self.process is not None
        self.process.send_signal(sig)

    def exit_code(self, timeout: float = EXIT_TIMEOUT) -> int:
        assert self.process is not None
        return self.process.wait(timeout=timeout)

    def output(self) -> str:
        assert self.process is not None
        out, _ = self.process.communicate(timeout=EXIT_TIMEOUT)
        return out

    def stop(self) -> str:
        if self.process is None:
            return ""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        return self.output()

    def results(self) -> dict[str, tuple[str, int]]:
        """{task name: (status, how many workers claimed it)}."""
        with sqlite3.connect(self.database) as db:
            found = db.execute(f"SELECT args_kwargs, status, worker_ids FROM {TABLE}").fetchall()  # noqa: S608 - a constant
        return {
            json.loads(args)["args"][0]: (status, len(json.loads(workers)))
            for args, status, workers in found
        }


@pytest.fixture
def worker(queued_database: Path, tmp_path: Path) -> Iterator[Worker]:
    database = tmp_path / "db.sqlite3"
    shutil.copyfile(queued_database, database)
    child = Worker(database, tmp_path)
    yield child
    child.stop()


@pytest.mark.server
@pytest.mark.parametrize("command", ["worker", "db_worker"])
def test_sigterm_finishes_the_running_task_and_leaves_the_queue_alone(
    worker: Worker, command: str
) -> None:
    worker.start(command)
    worker.wait_for("first.started")

    worker.signal(signal.SIGTERM)
    stopped = time.monotonic()
    code = worker.exit_code()
    took = time.monotonic() - stopped

    output = worker.output()
    assert code == 0, output
    # It waited for the task (about SLOW_SECONDS), not much longer.
    assert took < SLOW_SECONDS + 8, output
    assert (worker.folder / "first.finished").exists()
    assert worker.results() == {"first": ("SUCCESSFUL", 1), "second": ("READY", 0)}
    assert not (worker.folder / "second.started").exists()


@pytest.mark.server
def test_a_second_signal_puts_the_task_back_for_the_next_worker(worker: Worker) -> None:
    worker.start()
    worker.wait_for("first.started")

    worker.signal(signal.SIGTERM)
    time.sleep(0.3)
    worker.signal(signal.SIGTERM)
    code = worker.exit_code()

    output = worker.output()
    assert code == 1, output
    assert "1 task(s) put back in the queue for the next worker" in output
    assert not (worker.folder / "first.finished").exists()
    # READY with its claim on record: the next worker runs it (shown in
    # process below, and by the next test for a killed worker).
    assert worker.results() == {"first": ("READY", 1), "second": ("READY", 0)}


@pytest.mark.server
def test_a_killed_workers_task_is_run_by_the_next_worker(worker: Worker) -> None:
    worker.start()
    worker.wait_for("first.started")

    worker.signal(signal.SIGKILL)
    assert worker.exit_code() == -signal.SIGKILL
    worker.output()
    # Nothing can record the end of a task whose worker was killed.
    assert worker.results() == {"first": ("RUNNING", 1), "second": ("READY", 0)}
    time.sleep(1.1)

    worker.start("worker", "--requeue-stuck-after", "1s")
    worker.wait_for("second.finished", timeout=START_TIMEOUT + SLOW_SECONDS)
    time.sleep(0.3)  # past recording the result: waiting for work now
    assert worker.results() == {"first": ("SUCCESSFUL", 2), "second": ("SUCCESSFUL", 1)}

    # Idle, it stops at once.
    worker.signal(signal.SIGTERM)
    stopped = time.monotonic()
    assert worker.exit_code() == 0
    assert time.monotonic() - stopped < 3


# --- The same rules in this process -------------------------------------------------------

RAN: list[str] = []
SIGNALS_TO_SEND: list[int] = []


@background_task()
def signalling_step(name: str) -> str:
    """Sends this process the signals queued in SIGNALS_TO_SEND, then works on."""
    RAN.append(f"{name}:started")
    while SIGNALS_TO_SEND:
        os.kill(os.getpid(), SIGNALS_TO_SEND.pop(0))
        time.sleep(0.05)  # the handler runs between bytecodes: give it some
    time.sleep(0.05)
    RAN.append(f"{name}:finished")
    return name


@pytest.fixture
def run_worker() -> Iterator[Callable[..., None]]:
    signals = [signal.SIGINT, signal.SIGTERM, signal.SIGQUIT]
    handlers = {sig: signal.getsignal(sig) for sig in signals}
    loggers = {name: logging.getLogger(name).level for name in ("django_tasks", "django_tasks_db")}
    RAN.clear()
    SIGNALS_TO_SEND.clear()

    def run(*extra: str) -> None:
        call_command("worker", "--no-startup-delay", "--interval", "0.05", *extra, verbosity=0)

    yield run
    SIGNALS_TO_SEND.clear()
    for sig, handler in handlers.items():
        signal.signal(sig, handler)
    for name, level in loggers.items():
        logging.getLogger(name).setLevel(level)


def statuses() -> dict[str, str]:
    from django_tasks_db.models import DBTaskResult

    return {r.args_kwargs["args"][0]: r.status for r in DBTaskResult.objects.all()}


@pytest.mark.django_db(transaction=True)
def test_in_process_one_signal_lets_the_task_finish(run_worker: Callable[..., None]) -> None:
    enqueue(signalling_step, "um")
    enqueue(signalling_step, "dois")
    SIGNALS_TO_SEND.append(signal.SIGTERM)

    run_worker()  # no --batch: only the signal ends it

    assert RAN == ["um:started", "um:finished"]
    assert statuses() == {"um": "SUCCESSFUL", "dois": "READY"}


@pytest.mark.django_db(transaction=True)
def test_in_process_a_second_signal_releases_the_task(run_worker: Callable[..., None]) -> None:
    enqueue(signalling_step, "um")
    SIGNALS_TO_SEND.extend([signal.SIGINT, signal.SIGTERM])

    with pytest.raises(CommandError, match=r"1 task\(s\) put back in the queue"):
        run_worker()

    assert RAN == ["um:started"]
    assert statuses() == {"um": "READY"}

    run_worker("--batch")

    assert RAN == ["um:started", "um:started", "um:finished"]
    assert statuses() == {"um": "SUCCESSFUL"}


@pytest.mark.django_db(transaction=True)
def test_in_process_a_signal_ignored_by_whoever_started_it_stays_ignored(
    run_worker: Callable[..., None],
) -> None:
    # A POSIX shell starts background jobs with SIGINT ignored; Ctrl-C at
    # `make run` must then leave the stop to the script's single SIGTERM.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    enqueue(signalling_step, "um")
    enqueue(signalling_step, "dois")
    SIGNALS_TO_SEND.extend([signal.SIGINT, signal.SIGINT])

    run_worker("--batch")

    assert RAN == ["um:started", "um:finished", "dois:started", "dois:finished"]
    assert statuses() == {"um": "SUCCESSFUL", "dois": "SUCCESSFUL"}

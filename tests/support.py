"""Helpers shared by the tests: real servers on 127.0.0.1, tokens, child processes."""

from __future__ import annotations

import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.error import URLError
from urllib.request import urlopen

from rest_framework_simplejwt.tokens import AccessToken

from accounts.models import User

ROOT = Path(__file__).resolve().parent.parent


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


def redis_cache(location: str, *, timeout: float) -> dict[str, dict[str, Any]]:
    """CACHES pointing the default cache at ``location`` through django-redis."""
    return {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": location,
            "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": timeout, "SOCKET_TIMEOUT": timeout},
        }
    }


@contextmanager
def black_hole() -> Iterator[int]:
    """A TCP server on 127.0.0.1 that accepts connections and never answers.

    Like a Redis that hangs: connecting works, every read waits for its timeout.
    Closing it at the end resets the connections, which frees any thread still
    waiting on one.
    """
    server = socket.create_server(("127.0.0.1", 0))
    server.settimeout(0.05)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            accepted.append(conn)

    thread = threading.Thread(target=serve, name="black-hole", daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for conn in accepted:
            conn.close()
        server.close()

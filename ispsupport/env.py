"""Typed readers for the environment, used only by the settings module.

Every reader raises ``ConfigError`` naming the variable, so a wrong value stops
start-up with one clear line instead of a traceback (see ``ispsupport.boot``).
Parsing of lists and URLs is django-environ's; the readers add the strictness
it lacks (``DEBUG=maybe`` is an error here, not a silent False).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterable
from typing import Any

import environ
from django.core.exceptions import ImproperlyConfigured

_env = environ.Env()

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ImproperlyConfigured):
    """A setting read from the environment is missing or wrong."""


def _raw(name: str) -> str | None:
    value = os.environ.get(name)
    if value is None or value.strip() == "":
        return None
    return value.strip()


def env_str(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = _raw(name)
    if value is None:
        if required:
            raise ConfigError(f"{name} is required")
        return default
    return value


def env_bool(name: str, *, default: bool) -> bool:
    value = _raw(name)
    if value is None:
        return default
    lowered = value.lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ConfigError(f"{name} must be true or false (got {value!r})")


def env_int(name: str, *, default: int, minimum: int | None = None) -> int:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"{name} must be a whole number (got {value!r})") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {number})")
    return number


def env_float(name: str, *, default: float, minimum: float | None = None) -> float:
    value = _raw(name)
    if value is None:
        return default
    try:
        number = float(value)
    except ValueError:
        raise ConfigError(f"{name} must be a number (got {value!r})") from None
    if minimum is not None and number < minimum:
        raise ConfigError(f"{name} must be at least {minimum} (got {number})")
    return number


def env_list(name: str, *, default: Iterable[str] = ()) -> list[str]:
    if _raw(name) is None:
        return list(default)
    return [item.strip() for item in _env.list(name) if item.strip()]


def env_choice(name: str, *, default: str, choices: Iterable[str]) -> str:
    allowed = list(choices)
    raw = _raw(name) or default
    if raw.lower() not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)} (got {raw!r})")
    return raw.lower()


def env_database(name: str, *, default: str) -> dict[str, Any]:
    """Parse a database URL; only PostgreSQL and SQLite are supported."""
    url = _raw(name) or default
    try:
        # django-environ warns about a URL without a known scheme by printing
        # everything it parsed, the password included.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            config = environ.Env.db_url_config(url)
    except Exception:
        raise ConfigError(f"{name} is not a valid database URL") from None
    engine = config.get("ENGINE", "")
    if engine not in ("django.db.backends.postgresql", "django.db.backends.sqlite3"):
        raise ConfigError(f"{name} must be a postgres:// or sqlite:// URL")
    if engine == "django.db.backends.postgresql" and not config.get("NAME"):
        raise ConfigError(f"{name} must name a database (postgres://user@host:5432/NAME)")
    return config


def env_url(name: str, *, schemes: Iterable[str]) -> str | None:
    """A URL whose scheme is checked; the value is never echoed (it may hold a password)."""
    value = _raw(name)
    if value is None:
        return None
    allowed = tuple(schemes)
    scheme, sep, rest = value.partition("://")
    if not sep or scheme not in allowed or not rest:
        raise ConfigError(
            f"{name} must be a URL starting with {' or '.join(s + '://' for s in allowed)}"
        )
    return value

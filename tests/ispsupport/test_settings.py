"""Configuration from the environment, as a freshly started process sees it.

Each case starts a child Python (``manage.py check`` or a probe that calls
``ispsupport.boot.setup()`` and prints settings as JSON) with a controlled
environment, because the settings module is read once per process.
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet

from ispsupport.env import env_bool, env_list

ROOT = Path(__file__).resolve().parents[2]

# Every variable ispsupport/settings.py reads.
CONFIG_VARS = (
    "DEBUG",
    "SECRET_KEY",
    "ALLOWED_HOSTS",
    "CSRF_TRUSTED_ORIGINS",
    "DATABASE_URL",
    "DATABASE_POOL_SIZE",
    "DATABASE_MAX_OVERFLOW",
    "DATABASE_POOL_TIMEOUT",
    "DATABASE_CONNECT_TIMEOUT",
    "DATABASE_STATEMENT_TIMEOUT",
    "DATABASE_WEBHOOK_TIMEOUT",
    "REDIS_URL",
    "REDIS_TIMEOUT",
    "JWT_AUDIENCE",
    "JWT_ISSUER",
    "CORS_ALLOWED_ORIGINS",
    "FERNET_KEYS",
    "SECURE_SSL_REDIRECT",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SECURE_PROXY_SSL_HEADER",
    "LANGUAGE_CODE",
    "TIME_ZONE",
    "STATIC_ROOT",
    "MEDIA_ROOT",
    "HEALTH_CHECK_TIMEOUT",
    "BREAKER_NAMESPACE",
    "LOG_FORMAT",
    "LOG_LEVEL",
)

# What production must set when DEBUG is off; nothing else.
PRODUCTION = {
    "SECRET_KEY": "prod-like-secret-7f3a9c1e5b2d8f4a6c0e2b4d6f8a1c3e5b7d9f2a4c6e8b0d",
    "ALLOWED_HOSTS": "suporte.example.com",
}

# The password placed in every URL below; it must never reach the output.
PASSWORD = "hunter2-Pa55"
POSTGRES_URL = f"postgres://ispsupport:{PASSWORD}@db.internal:5432/ispsupport"
REDIS_URL = f"redis://:{PASSWORD}@cache.internal:6379/3"

_PROBE = (
    "import json, sys\n"
    "from ispsupport import boot\n"
    "boot.setup()\n"
    "from django.conf import settings\n"
    "print(json.dumps({name: getattr(settings, name) for name in sys.argv[1:]}, default=str))\n"
)


def child_env(**values: str) -> dict[str, str]:
    """This process's environment without pytest's and the settings' own variables.

    Settings variables are passed empty rather than left out: empty counts as
    unset, and unlike a missing variable it cannot be filled in from a
    developer's .env file.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    env.update(dict.fromkeys(CONFIG_VARS, ""))
    env.update(values)
    return env


def run_python(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def load_settings(*names: str, **env: str) -> dict[str, Any]:
    result = run_python("-c", _PROBE, *names, env=child_env(**env))
    assert (result.returncode, result.stderr) == (0, ""), result.stderr
    return json.loads(result.stdout)


def _connection(database: dict[str, Any]) -> dict[str, Any]:
    """The keys settings.py sets; Django adds its own defaults to the same dict."""
    keys = ("ENGINE", "NAME", "USER", "PASSWORD", "HOST", "PORT", "CONN_MAX_AGE", "OPTIONS")
    return {key: database[key] for key in keys if key in database}


# --- Wrong values stop start-up with one line ----------------------------------

REDIS_SCHEMES = "REDIS_URL must be a URL starting with redis:// or rediss:// or unix://"
NOT_POSTGRES_OR_SQLITE = "DATABASE_URL must be a postgres:// or sqlite:// URL"
NO_DATABASE_NAME = "DATABASE_URL must name a database (postgres://user@host:5432/NAME)"
NOT_A_FERNET_KEY = (
    "is not a Fernet key (32 url-safe base64-encoded bytes; see README.md, 'Encryption keys')"
)
# Looks like a key, is not one (too short): a typo'd real key must not be echoed.
BAD_FERNET_KEY = "c2VjcmV0LWtleS10aGF0LWlzLXRvby1zaG9ydA=="
GOOD_FERNET_KEY = Fernet.generate_key().decode()

BAD_VALUES = [
    pytest.param({"DEBUG": "maybe"}, "DEBUG must be true or false (got 'maybe')", id="debug"),
    pytest.param(
        {"SECRET_KEY": ""}, "SECRET_KEY is required when DEBUG is off", id="no-secret-key"
    ),
    pytest.param(
        {"ALLOWED_HOSTS": ""},
        "ALLOWED_HOSTS is required when DEBUG is off (e.g. suporte.example.com)",
        id="no-allowed-hosts",
    ),
    pytest.param(
        {"ALLOWED_HOSTS": " , "},
        "ALLOWED_HOSTS is required when DEBUG is off (e.g. suporte.example.com)",
        id="allowed-hosts-only-commas",
    ),
    pytest.param(
        {"DATABASE_URL": f"mysql://root:{PASSWORD}@db.internal:3306/ispsupport"},
        NOT_POSTGRES_OR_SQLITE,
        id="database-mysql",
    ),
    pytest.param(
        # The scheme forgotten: django-environ used to warn with the password in it.
        {"DATABASE_URL": f"//ispsupport:{PASSWORD}@db.internal:5432/ispsupport"},
        NOT_POSTGRES_OR_SQLITE,
        id="database-no-scheme",
    ),
    pytest.param(
        {"DATABASE_URL": f"postgres://ispsupport:{PASSWORD}@db.internal:5432/"},
        NO_DATABASE_NAME,
        id="database-no-name",
    ),
    pytest.param(
        {"DATABASE_URL": f"postgres://ispsupport:{PASSWORD}@db.internal:5432"},
        NO_DATABASE_NAME,
        id="database-no-path",
    ),
    pytest.param(
        {"DATABASE_URL": f"postgres://ispsupport:{PASSWORD}@db.internal:pg/ispsupport"},
        "DATABASE_URL is not a valid database URL",
        id="database-bad-port",
    ),
    pytest.param(
        {"REDIS_URL": f"http://:{PASSWORD}@cache.internal:6379/0"}, REDIS_SCHEMES, id="redis-http"
    ),
    pytest.param(
        {"REDIS_URL": f":{PASSWORD}@cache.internal:6379/0"}, REDIS_SCHEMES, id="redis-no-scheme"
    ),
    pytest.param(
        {"CORS_ALLOWED_ORIGINS": "*"},
        "CORS_ALLOWED_ORIGINS must list origins like https://erp.example.com (never '*'; got '*')",
        id="cors-star",
    ),
    pytest.param(
        {"CORS_ALLOWED_ORIGINS": "https://erp.example.com,erp2.example.com"},
        "CORS_ALLOWED_ORIGINS must list origins like https://erp.example.com "
        "(never '*'; got 'erp2.example.com')",
        id="cors-no-scheme",
    ),
    pytest.param(
        {"CORS_ALLOWED_ORIGINS": "https://erp.example.com/api"},
        "CORS_ALLOWED_ORIGINS entries have no path (got 'https://erp.example.com/api')",
        id="cors-path",
    ),
    pytest.param(
        {"FERNET_KEYS": "not-a-key"}, f"FERNET_KEYS entry 1 {NOT_A_FERNET_KEY}", id="fernet"
    ),
    pytest.param(
        {"FERNET_KEYS": f"{GOOD_FERNET_KEY},{BAD_FERNET_KEY}"},
        f"FERNET_KEYS entry 2 {NOT_A_FERNET_KEY}",
        id="fernet-second",
    ),
    pytest.param(
        {"DATABASE_URL": POSTGRES_URL, "DATABASE_POOL_SIZE": "abc"},
        "DATABASE_POOL_SIZE must be a whole number (got 'abc')",
        id="pool-size-text",
    ),
    pytest.param(
        {"DATABASE_URL": POSTGRES_URL, "DATABASE_POOL_SIZE": "-1"},
        "DATABASE_POOL_SIZE must be at least 1 (got -1)",
        id="pool-size-negative",
    ),
    pytest.param(
        {"DATABASE_URL": POSTGRES_URL, "DATABASE_POOL_SIZE": "0"},
        "DATABASE_POOL_SIZE must be at least 1 (got 0)",
        id="pool-size-zero",
    ),
    pytest.param(
        {"DATABASE_URL": POSTGRES_URL, "DATABASE_MAX_OVERFLOW": "-2"},
        "DATABASE_MAX_OVERFLOW must be at least 0 (got -2)",
        id="max-overflow-negative",
    ),
    pytest.param(
        {"LOG_FORMAT": "XML"}, "LOG_FORMAT must be one of json, console (got 'XML')", id="log"
    ),
    pytest.param(
        {"TIME_ZONE": "Mars/Olympus"},
        "TIME_ZONE is not a known time zone (got 'Mars/Olympus')",
        id="time-zone",
    ),
    pytest.param(
        {"TIME_ZONE": "../etc/passwd"},
        "TIME_ZONE is not a known time zone (got '../etc/passwd')",
        id="time-zone-path",
    ),
    pytest.param(
        {"LANGUAGE_CODE": "fr"},
        "LANGUAGE_CODE must be one of pt-br, en (got 'fr')",
        id="language",
    ),
    pytest.param(
        {"PROMETHEUS_MULTIPROC_DIR": ""},
        "PROMETHEUS_MULTIPROC_DIR must not be set (not even empty): scrape each process "
        "on its own port instead (README, Metrics)",
        id="multiprocess-metrics-empty",
    ),
    pytest.param(
        {"PROMETHEUS_MULTIPROC_DIR": "/var/lib/metrics"},
        "PROMETHEUS_MULTIPROC_DIR must not be set (not even empty): scrape each process "
        "on its own port instead (README, Metrics)",
        id="multiprocess-metrics",
    ),
]


@pytest.mark.parametrize(("values", "message"), BAD_VALUES)
def test_a_wrong_value_stops_start_up_with_one_line(values: dict[str, str], message: str) -> None:
    result = run_python("manage.py", "check", env=child_env(**{**PRODUCTION, **values}))

    assert result.returncode == 2
    assert result.stderr == f"ispsupport: configuration error: {message}\n"
    assert result.stdout == ""
    assert PASSWORD not in result.stderr
    assert BAD_FERNET_KEY not in result.stderr


@pytest.mark.parametrize(
    "entry_point",
    [
        pytest.param(["manage.py", "check"], id="manage.py"),
        pytest.param(["-c", "import ispsupport.asgi"], id="asgi"),
        pytest.param(["-c", "import ispsupport.wsgi"], id="wsgi"),
    ],
)
def test_every_entry_point_reports_a_wrong_value_the_same_way(entry_point: list[str]) -> None:
    result = run_python(*entry_point, env=child_env(**PRODUCTION, DEBUG="maybe"))

    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "ispsupport: configuration error: DEBUG must be true or false (got 'maybe')\n",
    )


# --- Good values ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("pool_size", "max_overflow", "min_size", "max_size"),
    [
        pytest.param("", "", 4, 12, id="defaults"),
        pytest.param("10", "5", 10, 15, id="set"),
        pytest.param("2", "0", 2, 2, id="no-overflow"),
    ],
)
def test_a_postgres_url_gives_a_pooled_connection(
    pool_size: str, max_overflow: str, min_size: int, max_size: int
) -> None:
    loaded = load_settings(
        "DATABASES",
        "DATABASE_VENDOR",
        **PRODUCTION,
        DATABASE_URL=POSTGRES_URL,
        DATABASE_POOL_SIZE=pool_size,
        DATABASE_MAX_OVERFLOW=max_overflow,
    )

    assert _connection(loaded["DATABASES"]["default"]) == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "ispsupport",
        "USER": "ispsupport",
        "PASSWORD": PASSWORD,
        "HOST": "db.internal",
        "PORT": 5432,
        "CONN_MAX_AGE": 0,
        "OPTIONS": {
            "pool": {"min_size": min_size, "max_size": max_size, "timeout": 2.0},
            "connect_timeout": 5,
            "application_name": "ispsupport",
            "keepalives": 1,
            "keepalives_idle": 30,
            "keepalives_interval": 10,
            "keepalives_count": 3,
            "tcp_user_timeout": 10000,
            "options": "-c statement_timeout=30000",
        },
    }
    assert loaded["DATABASE_VENDOR"] == "postgresql"


def test_redis_url_moves_cache_and_channel_layer_to_redis() -> None:
    loaded = load_settings(
        "REDIS_URL", "CACHES", "CHANNEL_LAYERS", **PRODUCTION, REDIS_URL=REDIS_URL
    )

    assert loaded == {
        "REDIS_URL": REDIS_URL,
        "CACHES": {
            "default": {
                "BACKEND": "django_redis.cache.RedisCache",
                "LOCATION": REDIS_URL,
                "KEY_PREFIX": "ispsupport",
                "OPTIONS": {"SOCKET_CONNECT_TIMEOUT": 1.0, "SOCKET_TIMEOUT": 1.0},
            }
        },
        "CHANNEL_LAYERS": {
            "default": {
                "BACKEND": "channels_redis.core.RedisChannelLayer",
                "CONFIG": {
                    # The read timeout outlasts channels-redis' 5 s blocking
                    # pop, or idle console sockets die.
                    "hosts": [
                        {"address": REDIS_URL, "socket_connect_timeout": 1.0, "socket_timeout": 8.0}
                    ],
                    "prefix": "ispsupport:asgi",
                    "capacity": 1000,
                },
            }
        },
    }


def test_without_services_everything_is_embedded() -> None:
    loaded = load_settings(
        "DATABASES",
        "DATABASE_VENDOR",
        "REDIS_URL",
        "CACHES",
        "CHANNEL_LAYERS",
        "FERNET_KEYS",
        **PRODUCTION,
    )

    database = loaded["DATABASES"]["default"]
    assert (database["ENGINE"], database["NAME"]) == (
        "django.db.backends.sqlite3",
        str(ROOT / "var" / "db.sqlite3"),
    )
    assert loaded["DATABASE_VENDOR"] == "sqlite"
    assert loaded["REDIS_URL"] is None
    assert loaded["CACHES"] == {
        "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
    }
    assert loaded["CHANNEL_LAYERS"] == {
        "default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}
    }
    # A key derived from SECRET_KEY, so a demo can encrypt without FERNET_KEYS.
    [derived] = loaded["FERNET_KEYS"]
    Fernet(derived)
    assert derived != PRODUCTION["SECRET_KEY"]


SECURE_DEFAULTS = {
    "SECURE_SSL_REDIRECT": True,
    "SECURE_HSTS_SECONDS": 31_536_000,
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": True,
    "SECURE_HSTS_PRELOAD": True,
    "SESSION_COOKIE_SECURE": True,
    "CSRF_COOKIE_SECURE": True,
}


def test_debug_off_is_secure_by_default() -> None:
    loaded = load_settings(*SECURE_DEFAULTS, "DEBUG", "LOG_FORMAT", **PRODUCTION)

    assert loaded == {**SECURE_DEFAULTS, "DEBUG": False, "LOG_FORMAT": "json"}


@pytest.mark.parametrize(
    ("name", "value", "off"),
    [
        ("SECURE_SSL_REDIRECT", "false", False),
        ("SECURE_HSTS_SECONDS", "0", 0),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "no", False),
        ("SECURE_HSTS_PRELOAD", "off", False),
        ("SESSION_COOKIE_SECURE", "0", False),
        ("CSRF_COOKIE_SECURE", "False", False),
    ],
)
def test_each_secure_default_has_its_own_switch(name: str, value: str, off: object) -> None:
    loaded = load_settings(*SECURE_DEFAULTS, **PRODUCTION, **{name: value})

    assert loaded == {**SECURE_DEFAULTS, name: off}


def test_debug_on_runs_with_nothing_else_set() -> None:
    loaded = load_settings(*SECURE_DEFAULTS, "ALLOWED_HOSTS", "LOG_FORMAT", DEBUG="true")

    assert loaded == {
        "SECURE_SSL_REDIRECT": False,
        "SECURE_HSTS_SECONDS": 0,
        "SECURE_HSTS_INCLUDE_SUBDOMAINS": False,
        "SECURE_HSTS_PRELOAD": False,
        "SESSION_COOKIE_SECURE": False,
        "CSRF_COOKIE_SECURE": False,
        "ALLOWED_HOSTS": ["localhost", "127.0.0.1", "[::1]"],
        "LOG_FORMAT": "console",
    }


def test_lists_keep_their_order_and_lose_blanks_and_trailing_slashes() -> None:
    newest, oldest = Fernet.generate_key().decode(), Fernet.generate_key().decode()

    loaded = load_settings(
        "FERNET_KEYS",
        "ALLOWED_HOSTS",
        "CORS_ALLOWED_ORIGINS",
        SECRET_KEY=PRODUCTION["SECRET_KEY"],
        FERNET_KEYS=f"{newest}, {oldest}",
        ALLOWED_HOSTS="suporte.example.com, ,api.example.com",
        CORS_ALLOWED_ORIGINS="https://erp.example.com/,http://localhost:3000",
    )

    assert loaded == {
        "FERNET_KEYS": [newest, oldest],
        "ALLOWED_HOSTS": ["suporte.example.com", "api.example.com"],
        "CORS_ALLOWED_ORIGINS": ["https://erp.example.com", "http://localhost:3000"],
    }


def test_check_deploy_passes_with_only_the_required_variables() -> None:
    secret_key = secrets.token_urlsafe(50)
    env = child_env(DEBUG="false", SECRET_KEY=secret_key, ALLOWED_HOSTS="suporte.example.com")

    result = run_python("manage.py", "check", "--deploy", "--fail-level", "WARNING", env=env)

    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "System check identified no issues (0 silenced).\n"


# --- The typed readers ------------------------------------------------------------


@pytest.mark.parametrize("value", ["1", "true", "TRUE", " yes ", "on"])
def test_env_bool_accepts_the_usual_spellings_of_true(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FEATURE_X", value)

    assert env_bool("FEATURE_X", default=False) is True


@pytest.mark.parametrize("value", ["0", "false", "False", "no", " off "])
def test_env_bool_accepts_the_usual_spellings_of_false(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("FEATURE_X", value)

    assert env_bool("FEATURE_X", default=True) is False


@pytest.mark.parametrize("value", [None, "", "   "])
def test_unset_or_blank_means_the_default(
    monkeypatch: pytest.MonkeyPatch, value: str | None
) -> None:
    if value is None:
        monkeypatch.delenv("FEATURE_X", raising=False)
    else:
        monkeypatch.setenv("FEATURE_X", value)

    assert env_bool("FEATURE_X", default=True) is True
    assert env_list("FEATURE_X", default=["a"]) == ["a"]

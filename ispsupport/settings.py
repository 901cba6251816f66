"""The one settings module. Everything that differs between machines comes from
the environment (or a ``.env`` file beside manage.py); README.md documents each
variable and .env.example lists them all.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import sys
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import environ
from cryptography.fernet import Fernet

from ispsupport.env import (
    ConfigError,
    env_bool,
    env_choice,
    env_database,
    env_float,
    env_int,
    env_list,
    env_str,
    env_url,
)
from ispsupport.logs import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

# A developer's .env fills in what the real environment does not set; the real
# environment always wins (django-environ never overwrites os.environ).
if (BASE_DIR / ".env").is_file():
    environ.Env.read_env(BASE_DIR / ".env")

# --- Core -------------------------------------------------------------------

DEBUG = env_bool("DEBUG", default=False)

_DEV_SECRET_KEY = "django-insecure-dev-only-never-use-in-production-0123456789abcdef"  # noqa: S105 - DEBUG only; check --deploy rejects it
SECRET_KEY = env_str("SECRET_KEY") or (_DEV_SECRET_KEY if DEBUG else None)
if SECRET_KEY is None:
    raise ConfigError("SECRET_KEY is required when DEBUG is off")

ALLOWED_HOSTS = env_list(
    "ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"] if DEBUG else []
)
if not ALLOWED_HOSTS:
    raise ConfigError("ALLOWED_HOSTS is required when DEBUG is off (e.g. suporte.example.com)")

CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "corsheaders",
    "csp",
    "django_prometheus",
    "rest_framework",
    "rest_framework_simplejwt",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "channels",
    "django_tasks",
    "django_tasks_db",
    "ispsupport",
    "accounts",
    "subscribers",
    "conversations",
    "whatsapp",
    "chatbot",
]

MIDDLEWARE = [
    "django_prometheus.middleware.PrometheusBeforeMiddleware",
    "ispsupport.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.gzip.GZipMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_prometheus.middleware.PrometheusAfterMiddleware",
]

ROOT_URLCONF = "ispsupport.urls"
ASGI_APPLICATION = "ispsupport.asgi.application"
WSGI_APPLICATION = "ispsupport.wsgi.application"
AUTH_USER_MODEL = "accounts.User"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
LOGIN_URL = "/login/"
LOGIN_REDIRECT_URL = "/console/"
LOGOUT_REDIRECT_URL = "/login/"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "csp.context_processors.nonce",
                "whatsapp.context.simulator",
            ],
        },
    },
]

# --- Database ---------------------------------------------------------------

_db = env_database("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}")


def _serves_requests() -> bool:
    """daphne, the task worker, runserver and the tests, as opposed to a one-off
    ``manage.py`` command (migrate, purge_old_data, seed_demo,
    rotate_encryption_keys...) started by hand or by a timer."""
    argv = sys.argv
    if Path(argv[0]).name != "manage.py" or len(argv) < 2:
        return True
    return argv[1] in ("worker", "runserver")


# How long a webhook delivery may spend on the database before its connection
# is cut and Meta gets a 503 it retries (whatsapp/webhook.py). An ingest takes
# milliseconds; Meta's retry is safe, since ingest is idempotent.
DATABASE_WEBHOOK_TIMEOUT = env_float("DATABASE_WEBHOOK_TIMEOUT", default=2.0, minimum=0.1)

if _db["ENGINE"] == "django.db.backends.postgresql":
    # Django's psycopg pool is per process and needs CONN_MAX_AGE=0. The defaults
    # (4 + 8 = 12 connections at most) keep four daphne processes and two workers
    # at 72, under PostgreSQL's default max_connections=100 with room for admin.
    DATABASE_POOL_SIZE = env_int("DATABASE_POOL_SIZE", default=4, minimum=1)
    DATABASE_MAX_OVERFLOW = env_int("DATABASE_MAX_OVERFLOW", default=8, minimum=0)
    # A connection is normally free within milliseconds (a transaction holds
    # one for a few ms), so waiting longer means PostgreSQL is gone: 2 s keeps
    # the 503 under the 3 s Meta is given, until the `database` breaker opens.
    DATABASE_POOL_TIMEOUT = env_float("DATABASE_POOL_TIMEOUT", default=2.0, minimum=0.1)
    # Server side: a query (or lock wait) running longer is cancelled, so a slow
    # query cannot hold a request and a pooled connection for ever. One-off
    # commands run without it: a migration's index build or a dry run's count
    # may rightly take minutes (bound them with PGOPTIONS='-c statement_timeout=...').
    DATABASE_STATEMENT_TIMEOUT = env_float("DATABASE_STATEMENT_TIMEOUT", default=30.0, minimum=0)
    _db["CONN_MAX_AGE"] = 0
    _db["OPTIONS"] = {
        "pool": {
            "min_size": DATABASE_POOL_SIZE,
            "max_size": DATABASE_POOL_SIZE + DATABASE_MAX_OVERFLOW,
            "timeout": DATABASE_POOL_TIMEOUT,
        },
        "connect_timeout": env_int("DATABASE_CONNECT_TIMEOUT", default=5, minimum=1),
        "application_name": "ispsupport",
        # A server or network that vanishes without a word (power loss, a
        # dropped route) would leave a connection waiting for ever. Keepalives
        # find an idle one dead within 30 + 3 x 10 s; tcp_user_timeout drops
        # one whose sent data has gone unacknowledged for 10 s. Neither helps
        # against a server process that is alive but stuck: statement_timeout,
        # the webhook's deadline and daphne's --http-timeout cover that.
        "keepalives": 1,
        "keepalives_idle": 30,
        "keepalives_interval": 10,
        "keepalives_count": 3,
        "tcp_user_timeout": 10_000,
        # Whatever the URL's query string sets (?sslmode=require...) wins.
        **_db.get("OPTIONS", {}),
    }
    if _serves_requests() and DATABASE_STATEMENT_TIMEOUT:
        # In milliseconds; sent at connect, so every pooled connection has it.
        _db["OPTIONS"].setdefault(
            "options", f"-c statement_timeout={round(DATABASE_STATEMENT_TIMEOUT * 1000)}"
        )
else:
    if _db["NAME"] != ":memory:":
        Path(_db["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Daphne and the task worker write to the same file: WAL lets readers go on
    # while one writes, IMMEDIATE takes the write lock up front so a transaction
    # never fails half-way with "database is locked", and timeout waits for it.
    _db["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
DATABASES = {"default": _db}
DATABASE_VENDOR = "postgresql" if _db["ENGINE"].endswith("postgresql") else "sqlite"

# --- Redis: cache, channel layer, breaker state -----------------------------

REDIS_URL = env_url("REDIS_URL", schemes=("redis", "rediss", "unix"))
REDIS_TIMEOUT = env_float("REDIS_TIMEOUT", default=1.0, minimum=0.05)

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django_redis.cache.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": "ispsupport",
            "OPTIONS": {
                "SOCKET_CONNECT_TIMEOUT": REDIS_TIMEOUT,
                "SOCKET_TIMEOUT": REDIS_TIMEOUT,
            },
        }
    }
    CHANNEL_LAYERS = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {
                "hosts": [
                    {
                        "address": REDIS_URL,
                        "socket_connect_timeout": REDIS_TIMEOUT,
                        # A console socket waits for events with a 5 s blocking
                        # pop (channels-redis' brpop_timeout); redis-py 8 gives
                        # reads a 5 s timeout by default, which killed every
                        # idle socket. Longer than the pop, still bounded.
                        "socket_timeout": 5 + 2 + REDIS_TIMEOUT,
                    }
                ],
                "prefix": "ispsupport:asgi",
                # channels-redis drops a group message for a socket whose
                # queue is full (default 100), silently: a busy console missed
                # live updates under load (bench/soak.py). Room for bursts.
                "capacity": 1000,
            },
        }
    }
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}
    # Without Redis, rate-limit counts are per process: right for the one
    # process of `make run`; several processes need REDIS_URL (README).
    SILENCED_SYSTEM_CHECKS = ["django_ratelimit.E003", "django_ratelimit.W001"]

# --- Background tasks (django-tasks API, django-tasks-db durable queue) ------

TASKS = {
    "default": {
        "BACKEND": "django_tasks_db.DatabaseBackend",
        "QUEUES": ["default"],
    }
}

# --- Auth, passwords ---------------------------------------------------------

# bcrypt first (Django's BCryptSHA256 hasher, 12 rounds); hashes made by the
# others still verify and are upgraded to bcrypt at the next login.
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.BCryptSHA256PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2SHA1PasswordHasher",
    "django.contrib.auth.hashers.ScryptPasswordHasher",
]
PASSWORD_MIN_LENGTH = 10
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {
        "NAME": "django.contrib.auth.password_validation.MinimumLengthValidator",
        "OPTIONS": {"min_length": PASSWORD_MIN_LENGTH},
    },
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
    {"NAME": "accounts.validators.StrengthValidator"},
]

# --- Rate limits (django-ratelimit, counted in the shared cache) --------------

LOGIN_RATE_LIMIT = env_str("LOGIN_RATE_LIMIT", "5/m")
API_RATE_LIMIT = env_str("API_RATE_LIMIT", "600/m")
for _name, _rate in (("LOGIN_RATE_LIMIT", LOGIN_RATE_LIMIT), ("API_RATE_LIMIT", API_RATE_LIMIT)):
    _count, _, _period = _rate.partition("/")
    if not _count.isdigit() or _period not in ("s", "m", "h", "d"):
        raise ConfigError(f"{_name} must look like 5/m (count per s, m, h or d; got {_rate!r})")
# How many proxies in front of daphne append to X-Forwarded-For. 0: the socket
# address is the client. Never more than really exist, or clients can forge it.
TRUSTED_PROXY_COUNT = env_int("TRUSTED_PROXY_COUNT", default=0, minimum=0)
RATELIMIT_IP_META_KEY = "accounts.ratelimit.client_ip_key"
RATELIMIT_HASH_ALGORITHM = "hashlib.sha256"

# --- REST API ----------------------------------------------------------------

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_THROTTLE_CLASSES": ["accounts.ratelimit.ApiRateThrottle"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "ispsupport.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
if DEBUG:
    REST_FRAMEWORK["DEFAULT_RENDERER_CLASSES"].append(
        "rest_framework.renderers.BrowsableAPIRenderer"
    )

SIMPLE_JWT = {
    "ALGORITHM": "HS256",
    "SIGNING_KEY": SECRET_KEY,
    "AUDIENCE": env_str("JWT_AUDIENCE", "ispsupport"),
    "ISSUER": env_str("JWT_ISSUER", "ispsupport"),
    "AUTH_HEADER_TYPES": ("Bearer",),
    "ACCESS_TOKEN_LIFETIME": timedelta(
        minutes=env_int("ACCESS_TOKEN_EXPIRE_MINUTES", default=15, minimum=1)
    ),
    "REFRESH_TOKEN_LIFETIME": timedelta(
        minutes=env_int("REFRESH_TOKEN_EXPIRE_MINUTES", default=24 * 60, minimum=1)
    ),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    # Access tokens carry a digest of the password hash: a password change
    # revokes them at once instead of at expiry.
    "CHECK_REVOKE_TOKEN": True,
    "CHECK_USER_IS_ACTIVE": True,
    "TOKEN_REFRESH_SERIALIZER": "accounts.auth.RefreshSerializer",
}

SPECTACULAR_SETTINGS = {
    "TITLE": "ISP Support API",
    "VERSION": "v1",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # "state" names both a conversation's and a circuit breaker's states.
    "ENUM_NAME_OVERRIDES": {
        "ConversationStateEnum": "conversations.models.Conversation.State",
        # What an agent may send through the API (the message kinds it may write).
        "OutboundMessageKindEnum": ["text", "template"],
        "MessageKindEnum": "conversations.models.Message.Kind",
    },
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        # 400/401/403/404 where they apply, each with the shared error body.
        "ispsupport.openapi.document_errors",
    ],
}

# --- CORS --------------------------------------------------------------------

CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
for _origin in CORS_ALLOWED_ORIGINS:
    _parts = urlsplit(_origin)
    if _origin == "*" or _parts.scheme not in ("http", "https") or not _parts.netloc:
        raise ConfigError(
            "CORS_ALLOWED_ORIGINS must list origins like https://erp.example.com "
            f"(never '*'; got {_origin!r})"
        )
    if _parts.path not in ("", "/"):
        raise ConfigError(f"CORS_ALLOWED_ORIGINS entries have no path (got {_origin!r})")
CORS_ALLOWED_ORIGINS = [o.rstrip("/") for o in CORS_ALLOWED_ORIGINS]
CORS_EXPOSE_HEADERS = ["X-Request-ID", "X-Process-Time"]
CORS_ALLOW_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "x-csrftoken",
    "x-request-id",
)

# --- Encryption at rest ------------------------------------------------------


def _fernet_keys() -> list[str]:
    keys = env_list("FERNET_KEYS")
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except ValueError:
            # Never echo the key itself.
            raise ConfigError(
                f"FERNET_KEYS entry {position} is not a Fernet key "
                "(32 url-safe base64-encoded bytes; see README.md, 'Encryption keys')"
            ) from None
    if keys:
        return keys
    # Without FERNET_KEYS a key is derived from SECRET_KEY so a demo works; set
    # FERNET_KEYS in production, or rotating SECRET_KEY orphans encrypted data.
    digest = hashlib.sha256(b"ispsupport-fernet:" + SECRET_KEY.encode()).digest()
    return [base64.urlsafe_b64encode(digest).decode()]


FERNET_KEYS = _fernet_keys()

# --- Security ------------------------------------------------------------------

_secure = not DEBUG
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", default=_secure)
# Load balancers and Prometheus usually probe over plain http inside the network.
SECURE_REDIRECT_EXEMPT = [r"^health$", r"^metrics$"]
SECURE_HSTS_SECONDS = env_int(
    "SECURE_HSTS_SECONDS", default=31_536_000 if _secure else 0, minimum=0
)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=_secure)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", default=_secure)
SESSION_COOKIE_SECURE = env_bool("SESSION_COOKIE_SECURE", default=_secure)
CSRF_COOKIE_SECURE = env_bool("CSRF_COOKIE_SECURE", default=_secure)
if env_bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Only behind a proxy that sets X-Forwarded-Proto itself and strips the client's.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
# The console's JavaScript reads the CSRF token from the page, never the cookie.
CSRF_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:", "blob:"],
        "media-src": ["'self'", "blob:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'self'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}

# --- Internationalisation ------------------------------------------------------

LANGUAGE_CODE = env_choice("LANGUAGE_CODE", default="pt-br", choices=("pt-br", "en"))
LANGUAGES = [("pt-br", "Português (Brasil)"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = env_str("TIME_ZONE", "America/Sao_Paulo")
try:
    import zoneinfo

    zoneinfo.ZoneInfo(TIME_ZONE)
except (zoneinfo.ZoneInfoNotFoundError, ValueError):
    raise ConfigError(f"TIME_ZONE is not a known time zone (got {TIME_ZONE!r})") from None
USE_I18N = True
USE_TZ = True

# --- Conversations ---------------------------------------------------------------

# A customer who writes within this time after a conversation was resolved
# reopens it (same protocol); later, a new conversation starts.
CONVERSATION_REOPEN_MINUTES = env_int("CONVERSATION_REOPEN_MINUTES", default=120, minimum=0)
# Without the bot, a new conversation answers the customer at once with its
# protocol number (in LANGUAGE_CODE); the bot gives it itself when installed.
CONVERSATION_GREETING = env_bool("CONVERSATION_GREETING", default=True)

# --- Subscribers (the ISP's customer records) ----------------------------------------

# Where the bot and the console look subscribers up: a dotted path to a
# subscribers.directory.SubscriberDirectory subclass (an ERP adapter), or the
# built-in one on this database.
SUBSCRIBER_DIRECTORY = env_str("SUBSCRIBER_DIRECTORY", "subscribers.builtin.DatabaseDirectory")
# Trust unlock ("desbloqueio de confiança") in the built-in directory: a
# contract suspended for non-payment is unlocked for TRUST_UNLOCK_DAYS, at most
# once every TRUST_UNLOCK_INTERVAL_DAYS.
TRUST_UNLOCK_DAYS = env_int("TRUST_UNLOCK_DAYS", default=3, minimum=1)
TRUST_UNLOCK_INTERVAL_DAYS = env_int("TRUST_UNLOCK_INTERVAL_DAYS", default=30, minimum=1)

# --- Chatbot and Gemini ------------------------------------------------------------------

# Without GEMINI_API_KEY the bot runs on its rules alone.
GEMINI_API_KEY = env_str("GEMINI_API_KEY") or ""
GEMINI_MODEL = env_str("GEMINI_MODEL", "gemini-2.5-flash")
# Tests point this at a fake served on 127.0.0.1; empty means Google's endpoint.
GEMINI_BASE_URL = (env_url("GEMINI_BASE_URL", schemes=("https", "http")) or "").rstrip("/")
GEMINI_TIMEOUT = env_float("GEMINI_TIMEOUT", default=8.0, minimum=0.5)
# Below this confidence Gemini's reading of a message is ignored.
GEMINI_MIN_CONFIDENCE = env_float("GEMINI_MIN_CONFIDENCE", default=0.7, minimum=0.0)

# --- WhatsApp Cloud API -------------------------------------------------------------

# A single-number deployment is configured from these alone (the number is
# created or updated at migrate); more numbers are added in admin. Without an
# access token the sandbox transport records outbound messages instead.
WHATSAPP_PHONE_NUMBER_ID = env_str("WHATSAPP_PHONE_NUMBER_ID") or ""
# Where the customer simulator posts its signed webhooks; empty = this
# server, at the host the simulator page was opened on.
SIMULATOR_WEBHOOK_URL = env_str("SIMULATOR_WEBHOOK_URL") or ""
# Only for a worker process on the embedded defaults (no REDIS_URL): where it
# hands its live events to daphne, whose in-memory layer it cannot reach.
# scripts/serve sets it; with Redis leave it empty.
EVENTS_RELAY_URL = env_str("EVENTS_RELAY_URL") or ""
WHATSAPP_ACCESS_TOKEN = env_str("WHATSAPP_ACCESS_TOKEN") or ""
WHATSAPP_APP_SECRET = env_str("WHATSAPP_APP_SECRET") or ""
WHATSAPP_VERIFY_TOKEN = env_str("WHATSAPP_VERIFY_TOKEN") or ""
WHATSAPP_API_BASE_URL = (
    env_url("WHATSAPP_API_BASE_URL", schemes=("https", "http")) or "https://graph.facebook.com"
).rstrip("/")
WHATSAPP_API_VERSION = env_str("WHATSAPP_API_VERSION", "v24.0")
WHATSAPP_API_TIMEOUT = env_float("WHATSAPP_API_TIMEOUT", default=10.0, minimum=0.5)
# Retryable send failures are retried with exponential backoff and jitter up
# to this many attempts in all, then the message is marked failed.
WHATSAPP_SEND_MAX_ATTEMPTS = env_int("WHATSAPP_SEND_MAX_ATTEMPTS", default=6, minimum=1)
WHATSAPP_MEDIA_MAX_BYTES = env_int(
    "WHATSAPP_MEDIA_MAX_BYTES", default=100 * 1024 * 1024, minimum=1024
)

# --- Static and media ------------------------------------------------------------

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env_str("STATIC_ROOT") or VAR_DIR / "static")
# WhiteNoise warns on every start until collectstatic has made it.
with contextlib.suppress(OSError):
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)
MEDIA_URL = "/media/"
MEDIA_ROOT = Path(env_str("MEDIA_ROOT") or VAR_DIR / "media")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Operations ------------------------------------------------------------------

HEALTH_CHECK_TIMEOUT = env_float("HEALTH_CHECK_TIMEOUT", default=2.0, minimum=0.1)
# Retention (LGPD): what purge_old_data deletes by default. Messages, media
# and notes of conversations resolved longer ago than this; 0 = say it on
# the command line. Media files of any conversation after MEDIA_RETENTION_DAYS
# (0 = kept as long as their messages).
MESSAGE_RETENTION_DAYS = env_int("MESSAGE_RETENTION_DAYS", default=365, minimum=0)
MEDIA_RETENTION_DAYS = env_int("MEDIA_RETENTION_DAYS", default=0, minimum=0)
# Only a task worker's unit sets it: a process without HTTP serves its own
# /metrics on 127.0.0.1 at this port (what the worker counts: sends, bot, Gemini).
METRICS_EXPORT_PORT = env_int("METRICS_EXPORT_PORT", default=0, minimum=0)
if METRICS_EXPORT_PORT:
    PROMETHEUS_METRICS_EXPORT_PORT = METRICS_EXPORT_PORT
    PROMETHEUS_METRICS_EXPORT_ADDRESS = "127.0.0.1"
# prometheus_client's multiprocess mode makes /metrics serve only its files'
# counters: every gauge the alerts read at scrape time would vanish (and an
# empty value answers 500). Each process is scraped on its own instead.
if "PROMETHEUS_MULTIPROC_DIR" in environ.Env.ENVIRON:
    raise ConfigError(
        "PROMETHEUS_MULTIPROC_DIR must not be set (not even empty): scrape each process "
        "on its own port instead (README, Metrics)"
    )
BREAKER_NAMESPACE = env_str("BREAKER_NAMESPACE", "ispsupport")

LOG_FORMAT = env_choice(
    "LOG_FORMAT", default="console" if DEBUG else "json", choices=("json", "console")
)
LOG_LEVEL = env_choice(
    "LOG_LEVEL", default="info", choices=("debug", "info", "warning", "error")
).upper()
LOGGING = logging_config(fmt=LOG_FORMAT, level=LOG_LEVEL)

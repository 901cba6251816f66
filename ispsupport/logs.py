"""structlog set-up: JSON lines in production, readable lines in development.

Django's and the libraries' own stdlib loggers go through the same renderer, so
every line carries the request id bound by ``RequestContextMiddleware``.
"""

from __future__ import annotations

import re
from collections.abc import MutableMapping
from typing import Any

import structlog

# Keys whose values must never reach a log line, whatever logs them. Matched as
# whole words of the key (access_token, X-Hub-Signature-256) so that counts such
# as prompt_tokens or words such as passage stay readable.
_SECRET_KEY = re.compile(
    r"(?:^|[_\-\s])(?:pass|password|passwd|secret|token|authorization|cookie|set-cookie"
    r"|signature|credentials?|api[_-]?key|apikey|fernet[_-]?keys?|csrftoken|sessionid)"
    r"(?:$|[_\-\s\d])",
    re.IGNORECASE,
)
REDACTED = "[redacted]"


def _redact(value: Any, depth: int = 0) -> Any:
    if depth > 5:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if isinstance(k, str) and _SECRET_KEY.search(k) else _redact(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return type(value)(_redact(v, depth + 1) for v in value)
    return value


def redact_secrets(
    _logger: Any, _method: str, event: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    for key in list(event):
        if key == "event":
            continue
        if _SECRET_KEY.search(key):
            event[key] = REDACTED
        else:
            event[key] = _redact(event[key])
    return event


def _shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]


def logging_config(*, fmt: str, level: str) -> dict[str, Any]:
    """Configure structlog and return the matching ``LOGGING`` dict for Django."""
    _configure_structlog()
    return logging_dict(fmt=fmt, level=level)


def _configure_structlog() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            *_shared_processors(),
            structlog.processors.StackInfoRenderer(),
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )


def logging_dict(*, fmt: str, level: str) -> dict[str, Any]:
    """The ``LOGGING`` dict alone. Unlike ``logging_config`` it leaves structlog
    as it is: loggers cached on first use keep the processor list they were
    built with, so configuring again would hide their records from
    ``structlog.testing.capture_logs``."""
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(
            colors=False,
            # Pretty tracebacks (rich) print local variables: a phone or a token
            # held in one would reach the log.
            exception_formatter=structlog.dev.plain_traceback,
        )
    )
    final: list[Any] = [structlog.stdlib.ProcessorFormatter.remove_processors_meta]
    if fmt == "json":
        final.append(structlog.processors.format_exc_info)
    final.append(renderer)
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "structlog": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": final,
                "foreign_pre_chain": _shared_processors(),
            }
        },
        "handlers": {
            "console": {"class": "logging.StreamHandler", "formatter": "structlog"},
        },
        "root": {"handlers": ["console"], "level": level},
        "loggers": {
            # Django's default config gives "django" a plain console handler
            # (active under DEBUG) and stops "django.server" propagating; either
            # way a line would skip the renderer above.
            "django": {"handlers": [], "propagate": True},
            # The request line comes from RequestContextMiddleware, with the
            # request id; Django's and daphne's own access lines would repeat it.
            "django.server": {"level": "WARNING", "propagate": True},
            "django.request": {"level": "ERROR"},
            "daphne": {"level": "WARNING"},
        },
    }

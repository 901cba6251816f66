"""Rate limits on django-ratelimit, counted in the shared cache (Redis when
REDIS_URL is set, so every process sees the same counts).

Login counts failures only: a limit on attempts would lock out an agent who
logs in and out all day. The client IP is the socket address, or the entry in
X-Forwarded-For added by the outermost of TRUSTED_PROXY_COUNT proxies: entries
to the left of it were written by the client and prove nothing.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import structlog
from django.conf import settings
from django.http import HttpRequest
from django_ratelimit.core import get_usage
from rest_framework.throttling import BaseThrottle

if TYPE_CHECKING:
    # rest_framework.views imports the throttle classes named in settings.
    from rest_framework.request import Request
    from rest_framework.views import APIView

logger = structlog.get_logger(__name__)


def client_ip(request: HttpRequest) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or "0.0.0.0"  # noqa: S104 - a label, not a bind
    hops = settings.TRUSTED_PROXY_COUNT
    if hops <= 0:
        return remote
    forwarded = [
        part.strip()
        for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if part.strip()
    ]
    if len(forwarded) < hops:
        return remote
    candidate = forwarded[-hops]
    try:
        return str(ipaddress.ip_address(candidate))
    except ValueError:
        return remote


def client_ip_key(request: HttpRequest) -> str:
    """RATELIMIT_IP_META_KEY: django-ratelimit's "ip" key uses our client_ip."""
    return client_ip(request)


@dataclass(frozen=True)
class Limit:
    limited: bool
    retry_after: int


def _usage(request: HttpRequest, group: str, value: str, rate: str, increment: bool) -> Any:
    try:
        return get_usage(
            request,
            group=group,
            key=lambda _group, _request: value,
            rate=rate,
            increment=increment,
        )
    except Exception as exc:
        # A cache outage must not lock everybody out: fail open, loudly.
        logger.warning("ratelimit_cache_error", group=group, error=type(exc).__name__)
        return None


def _limit(usages: list[Any]) -> Limit:
    waits = [max(1, u["time_left"]) for u in usages if u and u["should_limit"]]
    return Limit(limited=bool(waits), retry_after=max(waits, default=0))


def _login_keys(request: HttpRequest, username: str) -> list[tuple[str, str]]:
    return [("login-ip", client_ip(request)), ("login-user", username.strip().casefold())]


def login_check(request: HttpRequest, username: str) -> Limit:
    """Whether this IP or this username has used up its failed logins."""
    rate = settings.LOGIN_RATE_LIMIT
    usages = []
    for group, value in _login_keys(request, username):
        usage = _usage(request, group, value, rate, increment=False)
        # get_usage without increment reports count > limit; at count == limit
        # the next failure would already be over, so block from there on.
        if usage and usage["count"] >= usage["limit"]:
            usage = {**usage, "should_limit": True}
        usages.append(usage)
    return _limit(usages)


def login_failed(request: HttpRequest, username: str) -> None:
    rate = settings.LOGIN_RATE_LIMIT
    for group, value in _login_keys(request, username):
        _usage(request, group, value, rate, increment=True)


class ApiRateThrottle(BaseThrottle):
    """API_RATE_LIMIT per user (per client IP for anonymous calls)."""

    def allow_request(self, request: Request, view: APIView) -> bool:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated:
            value = f"user:{user.pk}"
        else:
            value = f"ip:{client_ip(request)}"
        usage = _usage(request, "api", value, settings.API_RATE_LIMIT, increment=True)
        self._wait = max(1, usage["time_left"]) if usage and usage["should_limit"] else None
        return self._wait is None

    def wait(self) -> float | None:
        return self._wait

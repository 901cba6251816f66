"""Request id, timing, the request log line and the HTTP metrics."""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Awaitable, Callable

import structlog
from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponseBase
from django.utils.functional import SimpleLazyObject, empty

from ispsupport.metrics import HTTP_REQUEST_DURATION, HTTP_REQUESTS

logger = structlog.get_logger("ispsupport.request")

REQUEST_ID_HEADER = "X-Request-ID"
# A caller's id is kept only if it cannot forge log fields or blow up a label.
_VALID_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
UNMATCHED_ROUTE = "<unmatched>"


def request_id_from(request: HttpRequest) -> str:
    incoming = request.headers.get(REQUEST_ID_HEADER, "")
    if _VALID_REQUEST_ID.match(incoming):
        return incoming
    return uuid.uuid4().hex


def route_of(request: HttpRequest) -> str:
    """The URL pattern, not the path: /circuit-breakers/<str:name>/reset."""
    match = getattr(request, "resolver_match", None)
    if match is None or match.route is None:
        return UNMATCHED_ROUTE
    return "/" + match.route.lstrip("^").rstrip("$")


def _user_id(request: HttpRequest) -> int | None:
    user = getattr(request, "user", None)
    if user is not None and user.is_authenticated:
        return user.pk
    return None


async def _auser_id(request: HttpRequest) -> int | None:
    # In the async stack an unevaluated request.user would query the session
    # from the event loop, which Django forbids; auser() does it in a thread.
    # DRF replaces request.user with the token's user, so only a still-lazy
    # session user needs loading.
    user = getattr(request, "user", None)
    if isinstance(user, SimpleLazyObject) and user._wrapped is empty and hasattr(request, "auser"):
        user = await request.auser()
    if user is not None and user.is_authenticated:
        return user.pk
    return None


class RequestContextMiddleware:
    """Give every request an id, bind it to the logs, time it and count it.

    Works in both sync and async stacks, so daphne does not pay a thread hop
    for it on every request.
    """

    sync_capable = True
    async_capable = True

    def __init__(
        self, get_response: Callable[[HttpRequest], HttpResponseBase | Awaitable[HttpResponseBase]]
    ) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> HttpResponseBase | Awaitable[HttpResponseBase]:
        if self.is_async:
            return self.__acall__(request)
        started = self._start(request)
        try:
            response = self.get_response(request)
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        return self._finish(request, response, started, _user_id(request))  # type: ignore[arg-type]

    async def __acall__(self, request: HttpRequest) -> HttpResponseBase:
        started = self._start(request)
        try:
            response = await self.get_response(request)  # type: ignore[misc]
        finally:
            structlog.contextvars.unbind_contextvars("request_id")
        return self._finish(request, response, started, await _auser_id(request))

    def _start(self, request: HttpRequest) -> float:
        request.request_id = request_id_from(request)  # type: ignore[attr-defined]
        structlog.contextvars.bind_contextvars(request_id=request.request_id)  # type: ignore[attr-defined]
        return time.perf_counter()

    def _finish(
        self,
        request: HttpRequest,
        response: HttpResponseBase,
        started: float,
        user_id: int | None,
    ) -> HttpResponseBase:
        elapsed = time.perf_counter() - started
        route = route_of(request)
        response[REQUEST_ID_HEADER] = request.request_id  # type: ignore[attr-defined]
        response["X-Process-Time"] = f"{elapsed:.6f}"
        HTTP_REQUESTS.labels(request.method, route, str(response.status_code)).inc()
        HTTP_REQUEST_DURATION.labels(request.method, route).observe(elapsed)
        log = logger.warning if response.status_code >= 500 else logger.info
        log(
            "request",
            request_id=request.request_id,  # type: ignore[attr-defined]
            method=request.method,
            path=request.path,
            route=route,
            status=response.status_code,
            duration_ms=round(elapsed * 1000, 2),
            user_id=user_id,
        )
        return response

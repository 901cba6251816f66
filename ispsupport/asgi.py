"""ASGI entry point: HTTP through Django, websockets through Channels."""

from ispsupport import boot

boot.setup()

from collections.abc import Awaitable, Callable, MutableMapping  # noqa: E402
from typing import Any  # noqa: E402
from urllib.parse import urlsplit  # noqa: E402

from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import WebsocketDenier  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402
from django.http.request import is_same_domain, split_domain_port, validate_host  # noqa: E402

from ispsupport.routing import websocket_urlpatterns  # noqa: E402

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _header(scope: Scope, name: bytes) -> list[str]:
    return [
        value.decode("latin-1") for key, value in scope.get("headers", []) if key.lower() == name
    ]


def _trusted(origin: str) -> bool:
    """Listed in CSRF_TRUSTED_ORIGINS, read the way Django's CSRF check reads it
    (``https://*.example.com`` matches any subdomain)."""
    parsed = urlsplit(origin)
    for trusted in settings.CSRF_TRUSTED_ORIGINS:
        if "*" not in trusted:
            if origin == trusted.lower():
                return True
            continue
        pattern = urlsplit(trusted.lower())
        if pattern.scheme == parsed.scheme and is_same_domain(
            parsed.netloc, pattern.netloc.lstrip("*")
        ):
            return True
    return False


def websocket_origin_allowed(scope: Scope) -> bool:
    """A console socket opens only from a page of this site.

    Browsers send cookies with a cross-site websocket handshake, so without
    this check any page could open one with the agent's session. The rule is
    the browser's own: the Origin must be the Host the socket was opened on
    (or a trusted origin, as for CSRF). ALLOWED_HOSTS may be ``*``, so it is
    not the rule, but a Host it refuses is refused here too.
    """
    origins, hosts = _header(scope, b"origin"), _header(scope, b"host")
    if len(origins) != 1 or len(hosts) != 1:
        return False
    origin = origins[0].strip().lower()
    try:
        parsed = urlsplit(origin)
        origin_port = parsed.port
    except ValueError:
        return False
    if parsed.scheme not in _DEFAULT_PORTS or not parsed.hostname:
        return False
    domain, port = split_domain_port(hosts[0])
    if not domain or not validate_host(domain, settings.ALLOWED_HOSTS):
        return False
    if _trusted(origin):
        return True
    origin_host = f"[{parsed.hostname}]" if ":" in parsed.hostname else parsed.hostname
    default = _DEFAULT_PORTS[parsed.scheme]
    # A proxy in front may speak TLS while daphne does not: the Host has no
    # scheme, so a port left out means the Origin's default port.
    host_port = int(port) if port else default
    return origin_host == domain and (origin_port or default) == host_port


class SameOriginWebsocket:
    """Refuses a websocket handshake that does not come from this site's own pages."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket" and not websocket_origin_allowed(scope):
            # Closing before the accept answers the handshake with 403.
            await WebsocketDenier()(scope, receive, send)
            return
        await self.app(scope, receive, send)


application = ProtocolTypeRouter(
    {
        "http": get_asgi_application(),
        "websocket": SameOriginWebsocket(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)

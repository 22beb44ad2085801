"""Browser-facing protections: cross-origin state changes are refused, and every response carries
headers that stop framing, sniffing, inline script and referrer leaks.

Why an Origin check even with tokens: with auth off (local use) any web page the operator visits could
otherwise POST a multipart table list or a task to the gateway (a "simple" cross-origin request needs
no CORS preflight). Browsers send `Origin` on every state-changing request and `Sec-Fetch-Site` on
all requests; a request that carries neither (curl, dpctl, scripts) is not a browser acting for a
third-party page and passes unchanged.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar
from urllib.parse import urlsplit

from aiohttp import web

from services.api_gateway.errors import ApiError

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

# The UI is one page, one script and one stylesheet from /static: nothing inline, nothing third-party.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Cross-Origin-Resource-Policy": "same-origin",
}


class CrossOriginRejected(ApiError):
    """A browser sent a state-changing request on behalf of a page from another origin (CSRF)."""

    status: ClassVar[int] = 403
    error_type: ClassVar[str] = "forbidden"


def _host_port(origin: str) -> str | None:
    """`host[:port]` of an origin (`scheme://host[:port]`), lower-cased with default ports dropped."""
    try:
        parts = urlsplit(origin)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    default = 443 if parts.scheme == "https" else 80
    return host if port in (None, default) else f"{host}:{port}"


def _own_hosts(request: web.Request, public_base_url: str | None) -> set[str]:
    own: set[str] = set()
    for scheme in ("http", "https"):
        if request.host and (value := _host_port(f"{scheme}://{request.host}")):
            own.add(value)
    if public_base_url and (value := _host_port(public_base_url)):
        own.add(value)
    return own


def cross_origin_reason(request: web.Request, public_base_url: str | None = None) -> str | None:
    """Why a state-changing request must be refused, or None when it is same-origin or not a browser's."""
    if request.method in SAFE_METHODS:
        return None
    site = request.headers.get("Sec-Fetch-Site", "").strip().lower()
    if site in ("cross-site", "same-site"):
        return f"cross-origin request refused (Sec-Fetch-Site: {site})"
    origin = request.headers.get("Origin")
    if origin is None:
        return None
    origin = origin.strip()
    if origin.lower() == "null":
        return "cross-origin request refused (Origin: null)"
    if _host_port(origin) not in _own_hosts(request, public_base_url):
        return f"cross-origin request refused: Origin {origin[:200]!r} is not this gateway"
    return None


def origin_middleware(public_base_url: str | None) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        reason = cross_origin_reason(request, public_base_url)
        if reason is not None:
            raise CrossOriginRejected(reason, extra={"reason": "cross_origin"})
        return await handler(request)

    return middleware


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """`on_response_prepare`: every response (JSON, files, streams, errors) gets the same headers."""
    for name, value in SECURITY_HEADERS.items():
        response.headers.setdefault(name, value)

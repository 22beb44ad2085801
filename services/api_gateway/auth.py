"""Bearer-token authentication. With no tokens configured the gateway is open (local development)."""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Sequence

from aiohttp import web
from pydantic import SecretStr

from services.api_gateway.errors import Unauthorized

# Probes must answer without credentials; the UI shell is static (it asks for a token and sends it
# with every API call), so a browser can load it at all.
PUBLIC_PATHS = frozenset(
    {
        "/healthz",
        "/readyz",
        "/api/v0/data_pipeline/healthz",
        "/api/v0/data_pipeline/readyz",
        "/",
        "/favicon.ico",
    }
)
PUBLIC_PREFIXES = ("/static/",)


def token_matches(presented: str, tokens: Sequence[SecretStr]) -> bool:
    """Constant-time comparison against every configured token (no early exit on the first match)."""
    given = presented.encode()
    matched = False
    for token in tokens:
        matched |= hmac.compare_digest(given, token.get_secret_value().encode())
    return matched


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def auth_middleware(tokens: Sequence[SecretStr]) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if tokens and not is_public(request.path):
            scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
            if (
                scheme.lower() != "bearer"
                or not credentials
                or not token_matches(credentials.strip(), tokens)
            ):
                raise Unauthorized(
                    "missing or invalid bearer token",
                    headers={"WWW-Authenticate": 'Bearer realm="data_pipeline"'},
                )
        return await handler(request)

    return middleware

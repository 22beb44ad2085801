"""Who is calling, and may they: bearer tokens with roles, checked against the route table.

Every route in the table (services.api_gateway.spec) states the least role it needs; the middleware
authenticates the token, then compares the token's role with the route's. With no tokens configured the
gateway is open (settings allow that on loopback only, or with DP_ALLOW_INSECURE=1) and every caller is
an admin. The same middleware charges the rate limit of expensive routes.
"""

from __future__ import annotations

import contextlib
import hmac
import math
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

import structlog
from aiohttp import web
from pydantic import SecretStr

from services.api_gateway.adapters import read_models
from services.api_gateway.errors import Forbidden, TooManyRequests, Unauthorized
from services.api_gateway.keys import POOL, ROUTES, SETTINGS
from services.api_gateway.limits import Limits
from services.api_gateway.spec import RouteSpec
from shared.credentials import ROLES, ApiToken, Role
from shared.ids import is_valid_task_id
from shared.logging import get_logger

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
ALL_CONNECTIONS = "*"
_PRINCIPAL = web.RequestKey("principal", object)
_LIMITS = web.RequestKey("limits", Limits)


@dataclass(frozen=True)
class Principal:
    """The caller of one request: a configured token, or everyone when auth is off."""

    name: str
    role: Role
    # None: every named connection; otherwise exactly these names.
    connections: frozenset[str] | None
    # A token scoped to named connections may not send ad-hoc URLs.
    adhoc_allowed: bool
    # Key of the per-client stream and rate limits.
    client: str

    def has_role(self, needed: Role) -> bool:
        return ROLES.index(self.role) >= ROLES.index(needed)

    def may_use(self, connection: str) -> bool:
        return self.connections is None or connection in self.connections

    @property
    def unrestricted(self) -> bool:
        """Every named connection and ad-hoc URLs: no task is out of this caller's reach."""
        return self.connections is None and self.adhoc_allowed

    def may_act_on(self, task_connection: str | None) -> bool:
        """Whether the caller may act on a task made with this named connection (None: a URL)."""
        return self.adhoc_allowed if task_connection is None else self.may_use(task_connection)


def principal_for(token: ApiToken, index: int) -> Principal:
    name = token.name or f"token-{index + 1}"
    if token.connections is not None:
        names = frozenset(token.connections)
        scope = None if ALL_CONNECTIONS in names else names
        return Principal(name, token.role, scope, adhoc_allowed=False, client=f"token:{name}")
    scope = None if token.role == "admin" else frozenset()
    return Principal(name, token.role, scope, adhoc_allowed=True, client=f"token:{name}")


def anonymous(request: web.Request) -> Principal:
    return Principal("anonymous", "admin", None, adhoc_allowed=True, client=f"ip:{request.remote}")


def find_token(presented: str, tokens: Sequence[ApiToken]) -> int | None:
    """Index of the matching token; constant-time, no early exit on the first match."""
    given = presented.encode()
    found: int | None = None
    for index, token in enumerate(tokens):
        if hmac.compare_digest(given, token.token.get_secret_value().encode()):
            found = index
    return found


def is_public(path: str) -> bool:
    return path in PUBLIC_PATHS or path.startswith(PUBLIC_PREFIXES)


def request_principal(request: web.Request) -> Principal:
    principal = request.get(_PRINCIPAL)
    return principal if isinstance(principal, Principal) else anonymous(request)


def request_limits(request: web.Request) -> Limits:
    return request[_LIMITS]


def usable_connections(request: web.Request, value: str) -> Mapping[str, SecretStr]:
    """The named connections the caller may use, for resolving `value` (a name or a URL).

    Names the caller may not use are left out, so they read as unknown: a 400 never lists them and
    does not tell them apart from names that do not exist. A token scoped to named connections gets
    403 for an ad-hoc URL.
    """
    principal = request_principal(request)
    if "://" in value and not principal.adhoc_allowed:
        raise Forbidden(
            f"token {principal.name!r} may use only its named connections, not a connection URL",
            extra={"required": "named connection"},
        )
    configured = request.app[SETTINGS].connections
    return {name: url for name, url in configured.items() if principal.may_use(name)}


async def check_task_scope(request: web.Request, spec: RouteSpec, principal: Principal) -> None:
    """A caller limited in its connections acts on a task (beyond reading it) only when it may use the
    task's connection: execute, cancel, table lists, downloads and deletes of other connections' tasks
    are 403. Bulk deletes name tasks in the body, so they need an unrestricted token."""
    if principal.unrestricted or spec.role == "viewer":
        return
    task_id = request.match_info.get("task_id")
    if task_id is None:
        if spec.method == "DELETE":
            raise Forbidden(
                f"token {principal.name!r} is limited to some connections: delete tasks one by one",
                extra={"required": "unrestricted token"},
            )
        return
    if not is_valid_task_id(task_id):
        return  # the handler answers 400
    row = await read_models.get_task(request.app[POOL], task_id)
    if row is None:
        return  # the handler answers 404
    stored = row["parameters"] if isinstance(row["parameters"], Mapping) else {}
    if not principal.may_act_on(stored.get("db_connection_name")):
        raise Forbidden(
            f"token {principal.name!r} may not act on tasks of this task's connection",
            extra={"required": "connection"},
        )


def charge_rate_limit(request: web.Request) -> None:
    """Take one expensive request from the caller's bucket, or 429 with Retry-After."""
    wait = request_limits(request).rate.take(request_principal(request).client)
    if wait > 0:
        raise TooManyRequests(
            "too many expensive requests (training search, table listing, streams); retry later",
            headers={"Retry-After": str(math.ceil(wait))},
        )


def stream_slot(request: web.Request) -> contextlib.AbstractContextManager[None]:
    """Hold one of the caller's (and the gateway's) event-stream slots, or 503 with Retry-After."""
    return request_limits(request).streams.hold(request_principal(request).client)


def waiting_slot(request: web.Request) -> contextlib.AbstractContextManager[None]:
    """Hold one of the caller's (and the gateway's) slots for a waiting read, or 503 with Retry-After."""
    return request_limits(request).waits.hold(request_principal(request).client)


def auth_middleware(tokens: Sequence[ApiToken]) -> Callable[..., Awaitable[web.StreamResponse]]:
    principals = [principal_for(token, i) for i, token in enumerate(tokens)]
    specs: dict[str, RouteSpec] = {}
    limits: list[Limits] = []

    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        if not limits:  # built on the first request, from the running app's settings and routes
            limits.append(Limits(request.app[SETTINGS]))
            specs.update({spec.operation_id: spec for spec in request.app[ROUTES]})
        request[_LIMITS] = limits[0]
        if tokens and not is_public(request.path):
            scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
            index = find_token(credentials.strip(), tokens) if credentials.strip() else None
            if scheme.lower() != "bearer" or index is None:
                raise Unauthorized(
                    "missing or invalid bearer token",
                    headers={"WWW-Authenticate": 'Bearer realm="data_pipeline"'},
                )
            request[_PRINCIPAL] = principals[index]
        principal = request_principal(request)
        route_name = request.match_info.route.name
        spec = specs.get(route_name) if route_name else None
        if spec is not None and not spec.public:
            if not principal.has_role(spec.role):
                get_logger().warning(
                    "refused: role too low",
                    caller=principal.name,
                    role=principal.role,
                    required=spec.role,
                    route=spec.operation_id,
                )
                raise Forbidden(
                    f"this route needs the {spec.role} role; token {principal.name!r} is {principal.role}",
                    extra={"required_role": spec.role},
                )
            await check_task_scope(request, spec, principal)
            if spec.rate_limited:
                charge_rate_limit(request)
        # Every log line of the request names the caller (the token's name, never the token).
        with structlog.contextvars.bound_contextvars(caller=principal.name):
            return await handler(request)

    return middleware

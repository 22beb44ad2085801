"""A client's `db_connection`: a PostgreSQL URL, or the name of a connection configured on the server.

Parsed once with `shared.connection_url` (the driver's rules, an allow-list of query parameters) and
checked against DP_ALLOWED_DB_HOSTS and DP_ALLOW_ADHOC_CONNECTIONS. What the gateway keeps is the parse:
a canonical masked URL to show and, for an ad-hoc URL, the canonical URL with its password to encrypt.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import SecretStr

from services.api_gateway.errors import InvalidParams
from shared import business_db
from shared.connection_url import ConnectionUrlError, DbUrl, HostNotAllowed, HostPolicy, parse_db_url
from shared.settings import CommonSettings


@dataclass(frozen=True)
class ResolvedConnection:
    db: DbUrl
    name: str | None

    @property
    def url(self) -> str:
        """The canonical URL with its password: only ever stored encrypted, never shown."""
        return self.db.secret_url()

    @property
    def masked(self) -> str:
        return self.db.masked()

    @property
    def database(self) -> str | None:
        return self.db.database or None


def masked_url(url: str) -> str:
    """The canonical, masked form of a URL (a parse of it, not a pattern over it)."""
    return parse_db_url(url).masked()


def host_policy(settings: CommonSettings) -> HostPolicy:
    return HostPolicy(tuple(settings.allowed_db_hosts))


def _invalid(exc: ValueError) -> InvalidParams:
    # The message names refused query parameters; it never quotes a value.
    return InvalidParams(str(exc), invalid=["db_connection"])


def resolve_connection(
    value: str, configured: Mapping[str, SecretStr], *, settings: CommonSettings
) -> ResolvedConnection:
    """The connection to use, from `configured` (the named connections the caller may use) or an ad-hoc
    URL; raises InvalidParams that never echoes the value (it may hold a password).

    Host names are checked without DNS here; `check_hosts` resolves them (the step runner does again)."""
    value = value.strip()
    if value in configured:
        try:
            db = parse_db_url(configured[value].get_secret_value())
        except ConnectionUrlError as exc:
            raise InvalidParams(
                f"the server's connection {value!r} is misconfigured: {exc}", invalid=["db_connection"]
            ) from None
        name: str | None = value
    elif "://" not in value:
        raise InvalidParams(
            "db_connection must be a postgresql:// URL or the name of a connection configured on the server",
            invalid=["db_connection"],
        )
    elif not settings.allow_adhoc_connections:
        raise InvalidParams(
            "db_connection must name a connection configured on the server (ad-hoc URLs are disabled)",
            invalid=["db_connection"],
        )
    else:
        try:
            db = parse_db_url(value)
        except ConnectionUrlError as exc:
            raise _invalid(exc) from None
        name = None
    try:
        host_policy(settings).check_static(db)
    except HostNotAllowed as exc:
        raise _invalid(exc) from None
    return ResolvedConnection(db=db, name=name)


async def check_hosts(url: str, settings: CommonSettings) -> None:
    """DP_ALLOWED_DB_HOSTS for every host of `url` (a masked URL will do), resolving names."""
    try:
        await host_policy(settings).pinned(parse_db_url(url))
    except (ConnectionUrlError, HostNotAllowed) as exc:
        raise _invalid(exc) from None


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def policy_warnings(settings: CommonSettings, listen_host: str) -> list[str]:
    """What an operator should hear at start-up about where business connections may go."""
    if settings.allowed_db_hosts or _is_loopback(listen_host):
        return []
    return [
        "DP_ALLOWED_DB_HOSTS is empty and the gateway listens beyond loopback: callers can make the "
        "pipeline connect to any host it reaches; list the business-database hosts or networks"
    ]


def business_db_failure(exc: business_db.BusinessDbError | TimeoutError, deadline: float) -> InvalidParams:
    """A business database that stalled past `deadline`, is unreachable, refused by policy or unknown: the
    caller's to fix, so a 400 naming db_connection (a failure to connect is one generic message with a
    reference; the cause is in the server log)."""
    if isinstance(exc, TimeoutError):
        reason = f"the business database did not answer within {deadline:g} s"
        return InvalidParams(reason, invalid=["db_connection"], extra={"reason": reason, "retryable": True})
    reason = str(exc)
    return InvalidParams(
        reason, invalid=["db_connection"], extra={"reason": reason, "retryable": exc.retryable}
    )

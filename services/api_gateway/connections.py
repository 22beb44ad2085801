"""A client's `db_connection`: a PostgreSQL URL, or the name of a connection configured on the server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

from pydantic import SecretStr

from services.api_gateway.errors import InvalidParams

_SCHEMES = {"postgresql", "postgres"}


@dataclass(frozen=True)
class ResolvedConnection:
    url: str
    name: str | None

    @property
    def database(self) -> str | None:
        path = urlsplit(self.url).path.lstrip("/")
        return path or None


def resolve_connection(value: str, configured: Mapping[str, SecretStr]) -> ResolvedConnection:
    """The URL to use; raises InvalidParams (without echoing the value, which may hold a password)."""
    value = value.strip()
    if value in configured:
        return ResolvedConnection(url=configured[value].get_secret_value(), name=value)
    if "://" not in value:
        known = ", ".join(sorted(configured)) or "none configured"
        raise InvalidParams(
            f"db_connection must be a postgresql:// URL or the name of a configured connection ({known})",
            invalid=["db_connection"],
        )
    try:
        parts = urlsplit(value)
        _ = parts.port  # raises ValueError for a non-numeric port
    except ValueError:
        raise InvalidParams("db_connection is not a valid URL", invalid=["db_connection"]) from None
    if parts.scheme.lower() not in _SCHEMES:
        raise InvalidParams("db_connection must use the postgresql:// scheme", invalid=["db_connection"])
    if not parts.hostname and "host" not in parse_qs(parts.query):
        raise InvalidParams("db_connection has no host", invalid=["db_connection"])
    if not parts.path.lstrip("/"):
        raise InvalidParams(
            "db_connection names no database (postgresql://.../<db>)", invalid=["db_connection"]
        )
    return ResolvedConnection(url=value, name=None)

"""A client's `db_connection`: a PostgreSQL URL, or the name of a connection configured on the server."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit, urlunsplit

from pydantic import SecretStr

from services.api_gateway.errors import InvalidParams
from shared.secrets import MASK, mask_url

_SCHEMES = {"postgresql", "postgres"}


@dataclass(frozen=True)
class ResolvedConnection:
    url: str
    name: str | None

    @property
    def database(self) -> str | None:
        path = urlsplit(self.url).path.lstrip("/")
        return path or None


def masked_url(url: str) -> str:
    """`mask_url`, and where its pattern leaves a password showing (a server-configured URL with a space
    or an unencoded `@` in it), the password masked by the URL's structure instead."""
    text = mask_url(url)
    try:
        parts = urlsplit(text)
        password = parts.password
    except ValueError:
        return text
    if not password or password == MASK:
        return text
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:{MASK}@{host}"))


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
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise InvalidParams(
            "db_connection must not contain spaces or control characters (percent-encode them)",
            invalid=["db_connection"],
        )
    if parts.password and urlsplit(mask_url(value)).password != MASK:
        # The mask (here and in every service's logs) ends a password at the first `@`: refuse rather
        # than store and show a password it cannot hide.
        raise InvalidParams(
            "db_connection: percent-encode special characters in the password (@ as %40)",
            invalid=["db_connection"],
        )
    if parts.scheme.lower() not in _SCHEMES:
        raise InvalidParams("db_connection must use the postgresql:// scheme", invalid=["db_connection"])
    if not parts.hostname and "host" not in parse_qs(parts.query):
        raise InvalidParams("db_connection has no host", invalid=["db_connection"])
    if not parts.path.lstrip("/"):
        raise InvalidParams(
            "db_connection names no database (postgresql://.../<db>)", invalid=["db_connection"]
        )
    return ResolvedConnection(url=value, name=None)

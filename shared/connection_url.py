"""A business-database URL, parsed once by the rules asyncpg uses, and the policy that says where it may go.

The gateway parses a caller's `db_connection` here, moves the password (from the userinfo or from any
query key that percent-decodes to `password`) into the encrypted field and keeps only the canonical,
masked form for display. The step runner parses the decrypted URL with the same function and connects
with explicit keyword arguments built from the parse (`DbUrl.connect_kwargs`), never by handing the raw
text to the driver, so what is shown, what is checked and what is used cannot drift apart.

Only an explicit set of query parameters is accepted (`ALLOWED_PARAMS`): no file paths (`passfile`,
`sslrootcert`, `sslcert`, `sslkey`, `sslcrl`), no unix sockets, no `options` or other server settings,
no `service` lookups. Everything else is refused by name.
"""

from __future__ import annotations

import asyncio
import fnmatch
import ipaddress
import re
import socket
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlparse

from shared.secrets import MASK

MAX_URL_LENGTH = 2048
MAX_HOSTS = 8
MAX_QUERY_FIELDS = 16
SCHEMES = frozenset({"postgresql", "postgres"})
DEFAULT_PORT = 5432

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
TARGET_SESSION_ATTRS = ("any", "primary", "standby", "prefer-standby", "read-write", "read-only")
CONNECT_TIMEOUT_RANGE = (1, 60)
APPLICATION_NAME_MAX = 63

# Accepted query parameters; their values are checked below. `user`, `password`, `dbname` and
# `database` are accepted too but folded into the canonical URL's userinfo and path.
ALLOWED_PARAMS = ("application_name", "connect_timeout", "sslmode", "target_session_attrs")
_FOLDED = frozenset({"user", "password", "dbname", "database"})

_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")
_APP_NAME = re.compile(r"[A-Za-z0-9 ._:/-]*")


class ConnectionUrlError(ValueError):
    """A `db_connection` the pipeline refuses; `params` names the offending query parameters, if any.

    The message never quotes the URL or a value from it (either may hold a password)."""

    def __init__(self, message: str, params: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.params = tuple(params)


@dataclass(frozen=True)
class DbUrl:
    """A parsed business-database URL. `str()` and `repr()` never show the password."""

    user: str
    hosts: tuple[tuple[str, int | None], ...]
    database: str
    params: tuple[tuple[str, str], ...] = ()
    password: str | None = field(default=None, repr=False)

    def _render(self, password: str | None) -> str:
        userinfo = quote(self.user, safe="")
        if password is not None:
            userinfo += ":" + password
        hosts = ",".join(_render_host(h) + (f":{p}" if p is not None else "") for h, p in self.hosts)
        query = f"?{urlencode(self.params)}" if self.params else ""
        return f"postgresql://{userinfo}@{hosts}/{quote(self.database, safe='')}{query}"

    def masked(self) -> str:
        """The canonical URL with `***` for the password: what events, tables and responses show."""
        return self._render(MASK if self.password else None)

    def secret_url(self) -> str:
        """The canonical URL with the password; only ever stored encrypted."""
        return self._render(quote(self.password, safe="") if self.password else None)

    def __str__(self) -> str:
        return self.masked()

    @property
    def param(self) -> dict[str, str]:
        return dict(self.params)

    def connect_kwargs(self) -> dict[str, Any]:
        """asyncpg.connect keyword arguments. `password=""` when none is given, so the driver never falls
        back to PGPASSWORD or a passfile of the service's own account."""
        params = self.param
        kwargs: dict[str, Any] = {
            "host": [h for h, _ in self.hosts],
            "port": [p or DEFAULT_PORT for _, p in self.hosts],
            "user": self.user,
            "password": self.password or "",
            "database": self.database,
            "ssl": params.get("sslmode", "prefer"),
            "direct_tls": False,
        }
        if "target_session_attrs" in params:
            kwargs["target_session_attrs"] = params["target_session_attrs"]
        if "connect_timeout" in params:
            kwargs["timeout"] = float(params["connect_timeout"])
        return kwargs

    def with_hosts(self, hosts: Sequence[tuple[str, int | None]]) -> DbUrl:
        return DbUrl(self.user, tuple(hosts), self.database, self.params, self.password)


def _render_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _refuse(message: str, params: Iterable[str] = ()) -> ConnectionUrlError:
    return ConnectionUrlError(f"db_connection: {message}", params)


def is_ip(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _check_host(host: str) -> str:
    if not host:
        raise _refuse("names no host (postgresql://user@host/database)")
    if host.startswith("/") or "/" in host or "\\" in host:
        raise _refuse("unix-domain sockets are not allowed; give a TCP host name or address")
    if is_ip(host):
        return str(ipaddress.ip_address(host))
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_LABEL.fullmatch(label) for label in name.split(".")):
        raise _refuse(
            "host is not a valid host name or IP address (percent-encode special characters in the password, @ as %40)"
        )
    return name.lower()


def _parse_port(text: str) -> int:
    if not text.isascii() or not text.isdigit() or not 1 <= int(text) <= 65535:
        raise _refuse("port must be a number from 1 to 65535")
    return int(text)


def _parse_hosts(hostspec: str) -> tuple[tuple[str, int | None], ...]:
    """asyncpg's `_parse_hostlist` with `unquote=True`: comma-separated, `[v6]:port` or `host:port`."""
    specs = hostspec.split(",")
    if len(specs) > MAX_HOSTS:
        raise _refuse(f"at most {MAX_HOSTS} hosts")
    hosts: list[tuple[str, int | None]] = []
    for spec in specs:
        if spec.startswith("["):
            addr, sep, rest = spec[1:].partition("]")
            if not sep or (rest and not rest.startswith(":")):
                raise _refuse("invalid IPv6 address")
            port_text = rest[1:] if rest else ""
        else:
            addr, _, port_text = spec.partition(":")
        host = _check_host(unquote(addr))
        hosts.append((host, _parse_port(port_text) if port_text else None))
    return tuple(hosts)


def _check_param(key: str, value: str) -> str:
    if key == "sslmode":
        if value not in SSL_MODES:
            raise _refuse(f"sslmode must be one of {', '.join(SSL_MODES)}", [key])
    elif key == "target_session_attrs":
        if value not in TARGET_SESSION_ATTRS:
            raise _refuse(f"target_session_attrs must be one of {', '.join(TARGET_SESSION_ATTRS)}", [key])
    elif key == "connect_timeout":
        low, high = CONNECT_TIMEOUT_RANGE
        if not (value.isascii() and value.isdigit() and low <= int(value) <= high):
            raise _refuse(f"connect_timeout must be whole seconds from {low} to {high}", [key])
        value = str(int(value))
    elif key == "application_name":
        if len(value) > APPLICATION_NAME_MAX or not _APP_NAME.fullmatch(value):
            raise _refuse(
                f"application_name must be at most {APPLICATION_NAME_MAX} letters, digits or ' ._:/-'", [key]
            )
    return value


def parse_db_url(url: str) -> DbUrl:
    """Parse a PostgreSQL URL the way asyncpg's `_parse_connect_dsn_and_args` does, and check it.

    Same rules as the driver: the userinfo ends at the first `@` and the user at the first `:`, user,
    password, host and database are percent-decoded, query keys and values are percent-decoded
    (`pass%77ord` is `password`), the last of a repeated key wins and a query `password` is used
    only when the userinfo has none. Raises ConnectionUrlError for anything the pipeline does not allow.
    """
    if len(url) > MAX_URL_LENGTH:
        raise _refuse(f"longer than {MAX_URL_LENGTH} characters")
    if not url.isprintable() or any(ch.isspace() for ch in url):
        raise _refuse("must not contain spaces or control characters (percent-encode them)")
    try:
        parsed = urlparse(url)
    except ValueError:
        raise _refuse("is not a valid URL") from None
    if parsed.scheme not in SCHEMES:
        raise _refuse("must use the postgresql:// scheme")
    if parsed.fragment or "#" in url:
        raise _refuse("must not contain '#' (percent-encode it as %23)")
    if parsed.params:
        raise _refuse("must not contain ';' in the path (percent-encode it as %3B)")
    auth, at, hostspec = parsed.netloc.partition("@")
    if not at:
        auth, hostspec = "", parsed.netloc
    user_text, _, password_text = auth.partition(":")

    try:
        query = parse_qsl(
            parsed.query,
            keep_blank_values=True,
            strict_parsing=bool(parsed.query),
            max_num_fields=MAX_QUERY_FIELDS,
        )
    except ValueError:
        raise _refuse(f"query string is malformed or has more than {MAX_QUERY_FIELDS} parameters") from None
    values: dict[str, str] = {}
    for key, value in query:
        values[key] = value  # the last one wins, as in asyncpg
    refused = sorted(k for k in values if k not in ALLOWED_PARAMS and k not in _FOLDED)
    if refused:
        shown = ", ".join(k[:40] for k in refused[:8])
        raise _refuse(
            f"query parameters not allowed: {shown} (allowed: {', '.join(ALLOWED_PARAMS)})",
            [k[:40] for k in refused],
        )

    user = unquote(user_text) if user_text else values.get("user", "")
    password = unquote(password_text) if password_text else values.get("password") or None
    database = unquote(parsed.path[1:]) if parsed.path.startswith("/") else unquote(parsed.path)
    if not database:
        database = values.get("dbname") or values.get("database") or ""
    hosts = _parse_hosts(hostspec) if hostspec else ()
    if not hosts:
        raise _refuse("names no host (postgresql://user@host/database)")
    if not user:
        raise _refuse("names no user (postgresql://user@host/database)")
    if not database:
        raise _refuse("names no database (postgresql://user@host/<database>)")
    for text in (user, database, password or ""):
        if "\x00" in text:
            raise _refuse("must not contain NUL characters")
    params = tuple(sorted((k, _check_param(k, v)) for k, v in values.items() if k in ALLOWED_PARAMS))
    return DbUrl(user=user, hosts=hosts, database=database, params=params, password=password)


# --- where a connection may go ------------------------------------------------------------------


class HostNotAllowed(ValueError):
    """A host (or what its name resolves to) is outside DP_ALLOWED_DB_HOSTS."""


@dataclass(frozen=True)
class HostPolicy:
    """DP_ALLOWED_DB_HOSTS: host-name patterns (`db.internal`, `*.corp.example`) and IP networks
    (`10.0.0.0/8`, `192.0.2.7`). Empty allows every host. `allow_adhoc` is DP_ALLOW_ADHOC_CONNECTIONS,
    which the step runner checks again before it decrypts a caller's URL.

    A host matched by a name pattern is connected to by name (so `sslmode=verify-full` works). Any other
    host is resolved here, every address must lie in an allowed network, and the connection goes to those
    checked addresses, so a DNS answer that changes between the check and the connect cannot redirect it.
    """

    patterns: tuple[str, ...] = ()
    allow_adhoc: bool = True

    @property
    def allow_all(self) -> bool:
        return not self.patterns

    @property
    def _networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        return [n for n in (network_or_none(p) for p in self.patterns) if n is not None]

    def _name_allowed(self, host: str) -> bool:
        names = [p.lower() for p in self.patterns if network_or_none(p) is None]
        return any(fnmatch.fnmatchcase(host.lower(), p) for p in names)

    def _address_allowed(self, address: str) -> bool:
        ip = ipaddress.ip_address(address)
        return any(ip.version == n.version and ip in n for n in self._networks)

    def check_static(self, db: DbUrl) -> None:
        """The check that needs no DNS: IP literals against the networks. Raises HostNotAllowed."""
        if self.allow_all:
            return
        for host, _ in db.hosts:
            if is_ip(host) and not (self._address_allowed(host) or self._name_allowed(host)):
                raise HostNotAllowed("db_connection: host is not allowed by DP_ALLOWED_DB_HOSTS")

    async def pinned(self, db: DbUrl) -> DbUrl:
        """`db` with every host checked, resolving names; raises HostNotAllowed."""
        if self.allow_all:
            return db
        self.check_static(db)
        loop = asyncio.get_running_loop()
        hosts: list[tuple[str, int | None]] = []
        for host, port in db.hosts:
            if self._name_allowed(host) or is_ip(host):
                hosts.append((host, port))
                continue
            try:
                infos = await loop.getaddrinfo(host, port or DEFAULT_PORT, type=socket.SOCK_STREAM)
            except OSError:
                raise HostNotAllowed("db_connection: host name does not resolve") from None
            addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
            if not addresses or not all(self._address_allowed(a) for a in addresses):
                raise HostNotAllowed("db_connection: host is not allowed by DP_ALLOWED_DB_HOSTS")
            hosts.extend((a, port) for a in addresses)
        return db.with_hosts(hosts[: MAX_HOSTS * 4])


def network_or_none(pattern: str) -> ipaddress.IPv4Network | ipaddress.IPv6Network | None:
    try:
        return ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return None


def check_host_pattern(pattern: str) -> str:
    """A DP_ALLOWED_DB_HOSTS entry: an IP network, or a host name where `*` may stand for labels."""
    pattern = pattern.strip()
    if network_or_none(pattern) is not None:
        return pattern
    labels = pattern.lower().split(".")
    if not pattern or len(pattern) > 253 or not all(lb == "*" or _LABEL.fullmatch(lb) for lb in labels):
        raise ValueError(f"not an IP network or host-name pattern: {pattern[:80]!r}")
    return pattern.lower()

"""The business-database URL parser: asyncpg's rules, an allow-list of parameters, masking from the parse."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from shared.connection_url import (
    ALLOWED_PARAMS,
    ConnectionUrlError,
    HostNotAllowed,
    HostPolicy,
    check_host_pattern,
    parse_db_url,
)

SECRET = "S3cret"


def asyncpg_reading(url: str) -> dict[str, Any]:
    """What asyncpg itself makes of `url` (its own parser, no connection)."""
    from asyncpg import connect_utils

    addrs, params = connect_utils._parse_connect_dsn_and_args(  # type: ignore[attr-defined]
        dsn=url,
        host=None,
        port=None,
        user=None,
        password=None,
        passfile=None,
        database=None,
        ssl=None,
        service=None,
        servicefile=None,
        direct_tls=None,
        server_settings=None,
        target_session_attrs=None,
        krbsrvname=None,
        gsslib=None,
    )
    return {"addrs": addrs, "user": params.user, "password": params.password, "database": params.database}


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql://u:{SECRET}@db.example:5433/shop",
        f"postgresql://u@db.example/shop?pass%77ord={SECRET}",
        f"postgresql://u@db.example/shop?password={SECRET}&sslmode=require",
        "postgresql://u:p%40s%3As@db.example/shop",
        f"postgres://us%65r:{SECRET}@h1:5432,h2:5433/my%20db",
        f"postgresql://u:{SECRET}@[::1]:5432/shop",
        f"postgresql://u:pa:ss{SECRET}@db.example/shop",
    ],
)
def test_the_parse_agrees_with_asyncpg(url: str) -> None:
    ours = parse_db_url(url)
    theirs = asyncpg_reading(url)
    assert ours.user == theirs["user"]
    assert ours.password == theirs["password"]
    assert ours.database == theirs["database"]
    assert [(h, p or 5432) for h, p in ours.hosts] == theirs["addrs"]
    # and the canonical secret URL reads the same again
    again = asyncpg_reading(ours.secret_url())
    assert again == theirs


@pytest.mark.parametrize(
    ("url", "masked"),
    [
        (f"postgresql://u:{SECRET}@db.example:5432/shop", "postgresql://u:***@db.example:5432/shop"),
        (f"postgresql://u@h/db?pass%77ord={SECRET}", "postgresql://u:***@h/db"),
        (f"postgresql://u@h/db?password={SECRET}&sslmode=require", "postgresql://u:***@h/db?sslmode=require"),
        ("postgresql://u@h/db", "postgresql://u@h/db"),
        ("postgresql://u@H.Example./db?user=x&dbname=y", "postgresql://u@h.example/db"),
        ("postgresql://h/?user=u&dbname=d", "postgresql://u@h/d"),
    ],
)
def test_the_password_moves_out_and_the_display_is_canonical(url: str, masked: str) -> None:
    db = parse_db_url(url)
    assert db.masked() == masked
    assert str(db) == masked and SECRET not in repr(db)


@pytest.mark.parametrize(
    ("url", "named"),
    [
        ("postgresql://u@h/db?passfile=/etc/shadow", ["passfile"]),
        ("postgresql://u@h/db?pass%66ile=/etc/shadow", ["passfile"]),
        ("postgresql://u@h/db?sslrootcert=/etc/shadow", ["sslrootcert"]),
        ("postgresql://u@h/db?sslcert=/x&sslkey=/y&sslcrl=/z", ["sslcert", "sslcrl", "sslkey"]),
        (f"postgresql://u@h/db?sslpassword={SECRET}", ["sslpassword"]),
        ("postgresql://u@h/db?options=-c%20statement_timeout%3D0", ["options"]),
        ("postgresql://u@h/db?host=/var/run/postgresql", ["host"]),
        ("postgresql://u@h/db?port=5433", ["port"]),
        ("postgresql://u@h/db?service=x", ["service"]),
        ("postgresql://u@h/db?krbsrvname=x&gsslib=gssapi", ["gsslib", "krbsrvname"]),
        ("postgresql://u@h/db?search_path=evil", ["search_path"]),
        ("postgresql://u@h/db?sslnegotiation=direct", ["sslnegotiation"]),
    ],
)
def test_parameters_outside_the_allow_list_are_refused_by_name(url: str, named: list[str]) -> None:
    with pytest.raises(ConnectionUrlError) as info:
        parse_db_url(url)
    assert list(info.value.params) == named
    for name in named:
        assert name in str(info.value)
    assert SECRET not in str(info.value) and "/etc" not in str(info.value)


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u@%2Fvar%2Frun%2Fpostgresql/db",  # asyncpg unquotes the host: a unix socket
        "postgresql://u@/db",
        "postgresql:///db?host=/tmp",
        "postgresql://u@h/",
        "postgresql://h/db",  # no user: the service account's name would be used
        "mysql://u@h/db",
        f"postgresql://u:p@ss{SECRET}@h/db",  # unencoded @: the host would be "ss...@h"
        "postgresql://u@h:99999/db",
        "postgresql://u@h:5432:1/db",
        "postgresql://u@h/db#frag",
        "postgresql://u@h/db?sslmode=sometimes",
        "postgresql://u@h/db?connect_timeout=0",
        "postgresql://u@h/db?connect_timeout=999",
        "postgresql://u@h/db?target_session_attrs=any-old",
        "postgresql://u@h/db?application_name=" + "x" * 100,
        "postgresql://u@h/db?sslmode",  # no "=": asyncpg's strict parse refuses it too
        "postgresql://u@h/db?" + "&".join(f"sslmode=require{i}" for i in range(20)),
        "postgresql://u@h/db " + "x",
        "postgresql://u@h/" + "d" * 3000,
        "postgresql://u@" + ",".join(f"h{i}" for i in range(9)) + "/db",
        "postgresql://u@h_%00/db",
    ],
)
def test_malformed_or_unsafe_urls_are_refused(url: str) -> None:
    with pytest.raises(ConnectionUrlError) as info:
        parse_db_url(url)
    assert SECRET not in str(info.value)


def test_connect_kwargs_leave_nothing_to_the_environment() -> None:
    kwargs = parse_db_url(
        "postgresql://u@h1,h2:6000/db?connect_timeout=3&target_session_attrs=read-only"
    ).connect_kwargs()
    assert kwargs == {
        "host": ["h1", "h2"],
        "port": [5432, 6000],
        "user": "u",
        "password": "",  # never PGPASSWORD or ~/.pgpass of the service account
        "database": "db",
        "ssl": "prefer",
        "direct_tls": False,
        "target_session_attrs": "read-only",
        "timeout": 3.0,
    }
    assert set(ALLOWED_PARAMS) == {"sslmode", "connect_timeout", "application_name", "target_session_attrs"}


def test_host_patterns() -> None:
    assert check_host_pattern("10.0.0.0/8") == "10.0.0.0/8"
    assert check_host_pattern("*.DB.internal") == "*.db.internal"
    for bad in ("", "a b", "/etc", "x" * 300):
        with pytest.raises(ValueError):
            check_host_pattern(bad)


def test_the_host_policy_checks_addresses_after_resolution() -> None:
    async def scenario() -> None:
        policy = HostPolicy(("127.0.0.0/8", "*.allowed.example"))
        # an IP literal inside the network: kept as is
        assert (await policy.pinned(parse_db_url("postgresql://u@127.0.0.2/db"))).hosts == (
            ("127.0.0.2", None),
        )
        # a name matched by a pattern: connected by name
        db = parse_db_url("postgresql://u@db.allowed.example/db")
        assert (await policy.pinned(db)).hosts == db.hosts
        # a name that resolves into the network: pinned to the checked addresses
        policy_v4_v6 = HostPolicy(("127.0.0.0/8", "::1/128"))
        pinned = await policy_v4_v6.pinned(parse_db_url("postgresql://u@localhost:5/db"))
        assert pinned.hosts and {p for _, p in pinned.hosts} == {5}
        assert all(h.startswith("127.") or h == "::1" for h, _ in pinned.hosts)
        for url in ("postgresql://u@10.1.2.3/db", "postgresql://u@192.168.1.1,127.0.0.1/db"):
            with pytest.raises(HostNotAllowed):
                await policy.pinned(parse_db_url(url))
        with pytest.raises(HostNotAllowed):
            HostPolicy(("10.0.0.0/8",)).check_static(parse_db_url("postgresql://u@127.0.0.1/db"))
        assert (await HostPolicy().pinned(parse_db_url("postgresql://u@anything.invalid/db"))).hosts == (
            ("anything.invalid", None),
        )

    asyncio.run(scenario())

"""Issue 7, findings 2, 4 and 5: what a caller's connection URL could make the pipeline show, open or wait for.

On the previous main: `?pass%77ord=` and `?sslpassword=` secrets were shown in clear everywhere;
`?passfile=/etc/shadow` was opened, `sslrootcert=` probed the file system, `?host=/var/run/postgresql`
connected over a unix socket and `options=-c ...` was accepted; POST /database/tables told a closed
port, a non-PostgreSQL service and a silent port apart (a port scanner) and hung on a server that
authenticates and then stalls.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import struct
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from shared import business_db
from shared.migrate import migrate
from shared.settings import CommonSettings
from tests.conftest import PG_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import BASE, Api
from tests.support.real_stack import _cleanup
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

SECRET = "S3cretQk9"
TABLES = f"{BASE}/database/tables"
DEADLINE = 2.0


# --- finding 2: a password the old mask did not see ------------------------------------------------


async def read_stream(api: Api, task_id: str, timeout: float = 60) -> str:
    """The task's SSE stream until its `end` event."""
    chunks: list[str] = []
    async with asyncio.timeout(timeout):
        async with api.session.get(f"{api.url}{BASE}/tasks/{task_id}/stream") as resp:
            assert resp.status == 200
            async for line in resp.content:
                chunks.append(line.decode())
                if line.startswith(b"event: end"):
                    break
    return "".join(chunks)


async def test_a_password_under_a_percent_encoded_key_is_nowhere_in_clear(
    api: Api, pg: asyncpg.Connection, stack: Stack, data_dir: Path
) -> None:
    url = f"postgresql://pipeline_user@127.0.0.1:5432/business?pass%77ord={SECRET}&sslmode=disable"
    task_id = await api.create(url, business_context="sleep:ddl_generation=2")
    stream = asyncio.ensure_future(read_stream(api, task_id))
    bodies: list[str] = []
    await api.wait_step(task_id, "ddl_generation", "running")
    status, active = await api.call("GET", f"{BASE}/tasks/active")
    assert status == 200 and task_id in json.dumps(active)
    bodies.append(json.dumps(active))
    await api.wait(task_id)
    bodies.append(await stream)
    for path in ("", "/logs?limit=1000", "/events?limit=1000", "/files"):
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}{path}")
        assert status == 200, (path, body)
        bodies.append(json.dumps(body))
    status, body = await api.call("GET", f"{BASE}/tasks?limit=100")
    bodies.append(json.dumps(body))
    assert all(SECRET not in b for b in bodies)

    detail = await api.task(task_id)
    # The canonical form, rendered from the parse: the password moved into the encrypted field.
    assert detail["parameters"]["db_connection"] == (
        "postgresql://pipeline_user:***@127.0.0.1:5432/business?sslmode=disable"
    )
    for table in ("data_pipeline_events", "data_pipeline_tasks", "data_pipeline_task_logs"):
        hits = await pg.fetchval(
            f"SELECT count(*) FROM {table} t WHERE t::text LIKE '%' || $1 || '%'", SECRET
        )
        assert hits == 0, table
    # The scripted executor logged the decrypted URL: the canonical form carries the password in the
    # userinfo, where the safety net masks it.
    assert await pg.fetchval(
        "SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1 AND message LIKE '%pipeline_user:***@%'",
        task_id,
    )
    for name in ("gateway", "runner-a", "runner-b", "scheduler", "collector"):
        assert SECRET not in stack.logs(name), name


# --- finding 4: parameters that reach the file system, sockets or server settings ------------------

HOSTILE = [
    (f"postgresql://u@127.0.0.1/db?sslpassword={SECRET}", "sslpassword"),
    ("postgresql://u@127.0.0.1/db?passfile=/etc/shadow", "passfile"),
    ("postgresql://u@127.0.0.1/db?pass%66ile=/etc/shadow", "passfile"),
    ("postgresql://u@127.0.0.1/db?sslrootcert=/etc/shadow&sslmode=verify-ca", "sslrootcert"),
    ("postgresql://u@127.0.0.1/db?sslcert=/root/.ssh/id_rsa", "sslcert"),
    ("postgresql://u@127.0.0.1/db?sslkey=/etc/shadow", "sslkey"),
    ("postgresql://u@127.0.0.1/db?sslcrl=/nonexistent", "sslcrl"),
    ("postgresql://u@127.0.0.1/db?host=/var/run/postgresql", "host"),
    ("postgresql://u@127.0.0.1/db?options=-c%20default_transaction_read_only%3Doff", "options"),
    ("postgresql://u@127.0.0.1/db?service=pg", "service"),
    ("postgresql://u@127.0.0.1/db?default_transaction_read_only=off", "default_transaction_read_only"),
]


@pytest.mark.parametrize(("url", "param"), HOSTILE, ids=[p for _, p in HOSTILE])
async def test_parameters_outside_the_allow_list_are_refused_by_name(api: Api, url: str, param: str) -> None:
    body = {
        "task_type": "complete_workflow",
        "parameters": {"db_connection": url, "table_list": ["public.orders"], "business_context": "x"},
    }
    for path, payload in ((f"{BASE}/tasks", body), (TABLES, {"db_connection": url})):
        status, data = await api.call("POST", path, json=payload)
        assert status == 400, (path, data)
        assert data["data"]["invalid_params"] == ["db_connection"]
        assert param in data["data"]["response"] and "not allowed" in data["data"]["response"]
        text = json.dumps(data)
        assert SECRET not in text and "/etc/shadow" not in text


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://postgres@%2Fvar%2Frun%2Fpostgresql/postgres",  # asyncpg unquotes it: a unix socket
        "postgresql://postgres@%2Ftmp/postgres",
        "postgresql:///postgres?host=%2Ftmp&user=postgres",
    ],
)
async def test_unix_sockets_are_refused(api: Api, url: str) -> None:
    status, data = await api.call("POST", TABLES, json={"db_connection": url})
    assert status == 400, data
    assert "tables" not in data["data"]


# --- own services: host policy, ad-hoc switch, generic errors, deadlines ---------------------------


@pytest.fixture(scope="module")
def policy_env(
    test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpu_{key}",
        "DP_BROKER_PREFIX": f"dpu.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("url-tasks")),
        "DP_TRAINING_SCHEMA": f"dpu_{key}_training",
        "DP_HEARTBEAT_INTERVAL_SECONDS": "1",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_COLLECTOR_FLUSH_MS": "20",
        "DP_DATABASE_TABLES_TIMEOUT_SECONDS": str(DEADLINE),
        "DP_CONNECTIONS": json.dumps({"local": "postgresql://postgres@127.0.0.1:5432/postgres"}),
    }


GATEWAYS = {
    "open": {},
    "strict": {"DP_ALLOWED_DB_HOSTS": json.dumps(["127.0.0.0/8", "::1/128"])},
    "named": {"DP_ALLOW_ADHOC_CONNECTIONS": "false"},
}


@pytest.fixture(scope="module")
def policy_stack(
    policy_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    """Collector, scheduler, a runner with the real executors that may reach only 192.0.2.0/24, and
    three gateways: no host policy, loopback only, named connections only. Yields gateway name -> URL."""
    settings = CommonSettings(
        database_url=PG_URL,
        db_schema=policy_env["DP_DB_SCHEMA"],
        broker_prefix=policy_env["DP_BROKER_PREFIX"],
    )
    asyncio.run(migrate(settings))
    stack = Stack(policy_env, tmp_path_factory.mktemp("url-logs"))
    urls: dict[str, str] = {}
    try:
        stack.start("collector")
        stack.start("scheduler")
        stack.start("runner", extra_env={"DP_ALLOWED_DB_HOSTS": json.dumps(["192.0.2.0/24"])})
        for name, extra in GATEWAYS.items():
            port = free_port()
            stack.start(f"gw-{name}", kind="gateway", extra_env={**extra, "DP_HTTP_PORT": str(port)})
            urls[name] = f"http://127.0.0.1:{port}"
        for url in urls.values():
            asyncio.run(_wait_ready(url, stack))
        urls["_logs"] = str(stack.log_dir)
        yield urls
    finally:
        stack.stop_all()
        asyncio.run(_cleanup(settings, policy_env["DP_TRAINING_SCHEMA"]))


@contextlib.asynccontextmanager
async def gateway(policy_stack: dict[str, str], name: str) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, policy_stack[name])


def gateway_log(policy_stack: dict[str, str], name: str) -> str:
    return (Path(policy_stack["_logs"]) / f"gw-{name}.log").read_text(errors="replace")


@contextlib.asynccontextmanager
async def tcp_server(on_connect: Any) -> AsyncIterator[int]:
    """A TCP server on 127.0.0.1 whose connections `on_connect(reader, writer)` handles; yields its port."""
    handlers: set[asyncio.Task[Any]] = set()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        handlers.add(asyncio.current_task())  # type: ignore[arg-type]
        with contextlib.suppress(Exception):
            await on_connect(reader, writer)
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        for task in handlers:
            task.cancel()
        await asyncio.gather(*handlers, return_exceptions=True)


async def _read_startup(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answer an SSLRequest with 'N', then read the StartupMessage."""
    while True:
        (length,) = struct.unpack("!i", await reader.readexactly(4))
        payload = await reader.readexactly(length - 4)
        if struct.unpack("!i", payload[:4])[0] == 80877103:  # SSLRequest
            writer.write(b"N")
            await writer.drain()
            continue
        return


def _message(kind: bytes, payload: bytes) -> bytes:
    return kind + struct.pack("!i", len(payload) + 4) + payload


async def stalling_postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Just enough PostgreSQL to authenticate (AuthenticationOk, ReadyForQuery); then never answers."""
    await _read_startup(reader, writer)
    out = _message(b"R", struct.pack("!i", 0))
    for key, value in (
        ("server_version", "16.0"),
        ("client_encoding", "UTF8"),
        ("server_encoding", "UTF8"),
        ("integer_datetimes", "on"),
        ("standard_conforming_strings", "on"),
        ("DateStyle", "ISO, MDY"),
    ):
        out += _message(b"S", key.encode() + b"\0" + value.encode() + b"\0")
    out += _message(b"K", struct.pack("!ii", 4242, 1234))
    out += _message(b"Z", b"I")
    writer.write(out)
    await writer.drain()
    while await reader.read(65536):  # swallow every query, answer none
        pass


async def not_postgres(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.read(8)
    writer.write(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
    await writer.drain()


async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await asyncio.sleep(3600)  # a silent port that never answers: the gateway's timeout is under test


async def timed_tables(api: Api, url: str) -> tuple[int, dict[str, Any], float]:
    start = time.perf_counter()
    status, data = await api.call("POST", TABLES, json={"db_connection": url})
    return status, data, time.perf_counter() - start


async def test_a_server_that_stalls_after_authenticating_gets_a_timely_answer(
    policy_stack: dict[str, str],
) -> None:
    async with tcp_server(stalling_postgres) as port, gateway(policy_stack, "open") as api:
        status, data, elapsed = await timed_tables(api, f"postgresql://u@127.0.0.1:{port}/db?sslmode=disable")
    assert status == 400, data
    assert elapsed < DEADLINE + 2, elapsed  # hung until the client gave up on the previous main
    assert data["data"]["invalid_params"] == ["db_connection"]
    assert "did not answer" in data["data"]["response"] and data["data"]["retryable"] is True


async def test_connection_failures_look_alike(policy_stack: dict[str, str]) -> None:
    closed = free_port()
    answers: list[str] = []
    async with tcp_server(not_postgres) as other, gateway(policy_stack, "open") as api:
        for port in (closed, other, 5432):
            status, data, _ = await timed_tables(api, f"postgresql://nobody_{port}@127.0.0.1:{port}/nodb")
            assert status == 400, data
            answers.append(data["data"]["response"])
    generic = [re.sub(r"reference [0-9a-f]+", "reference R", a) for a in answers]
    assert generic[0] == generic[1] == generic[2], answers
    assert generic[0].startswith("cannot connect to the business database")
    # the cause is in the server log, under the reference the caller got
    reference = re.search(r"reference ([0-9a-f]+)", answers[0])
    assert reference is not None
    log = gateway_log(policy_stack, "open")
    line = next(line for line in log.splitlines() if reference.group(1) in line)
    assert "Connect" in line or "refused" in line.lower(), line


async def test_the_host_policy_holds_in_the_gateway(policy_stack: dict[str, str]) -> None:
    async with gateway(policy_stack, "strict") as api:
        for url in (
            "postgresql://u@10.255.255.1/db",
            "postgresql://u@192.0.2.10:5432,127.0.0.1/db",
            "postgresql://u@example.invalid/db",
        ):
            status, data, elapsed = await timed_tables(api, url)
            assert status == 400, data
            assert (
                "DP_ALLOWED_DB_HOSTS" in data["data"]["response"]
                or "does not resolve" in data["data"]["response"]
            )
            assert elapsed < 1.0
            status, data = await api.call(
                "POST",
                f"{BASE}/tasks",
                json={
                    "task_type": "complete_workflow",
                    "parameters": {"db_connection": url, "table_list": ["public.x"], "business_context": "x"},
                },
            )
            assert status == 400, data
        # allowed: loopback, by address and by a name that resolves into the networks
        for url in (
            "postgresql://postgres@127.0.0.1:5432/postgres",
            "postgresql://postgres@localhost:5432/postgres",
        ):
            status, data, _ = await timed_tables(api, url)
            assert status == 200, data


async def test_the_runner_checks_the_host_again(policy_stack: dict[str, str]) -> None:
    """The gateway allows every host, the runner only 192.0.2.0/24: the step fails before connecting."""
    async with gateway(policy_stack, "open") as api:
        task_id = await api.create(
            "postgresql://postgres@127.0.0.1:5432/postgres", table_list=["pg_catalog.pg_class"]
        )
        detail = await api.wait(task_id, timeout=60)
    assert detail["status"] == "failed", detail
    assert "DP_ALLOWED_DB_HOSTS" in json.dumps(detail), detail


async def test_adhoc_urls_can_be_switched_off(policy_stack: dict[str, str]) -> None:
    async with gateway(policy_stack, "named") as api:
        status, data, _ = await timed_tables(api, "postgresql://postgres@127.0.0.1:5432/postgres")
        assert status == 400, data
        assert "ad-hoc URLs are disabled" in data["data"]["response"]
        status, data, _ = await timed_tables(api, "local")
        assert status == 200, data


async def test_every_business_query_has_a_client_side_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the step runner's executors use: a stalled server ends a query after statement timeout + margin
    (on the previous main it held the step until the 2 h task timeout, heartbeats keeping it alive). The
    margin is shortened here (5 s in production): the deadline's mechanism is under test, not its size."""
    monkeypatch.setattr(business_db, "COMMAND_TIMEOUT_MARGIN_SECONDS", 0.5)
    async with tcp_server(stalling_postgres) as port:
        url = f"postgresql://u@127.0.0.1:{port}/db?sslmode=disable"
        conn = await business_db.connect(url, statement_timeout_ms=200)
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            await conn.fetch("SELECT 1")
        assert time.perf_counter() - start < business_db.command_timeout(200) + 1.0
        conn.terminate()

        # A pool: the query times out, then the pool's reset of the connection on release does too.
        pool = await business_db.create_pool(url, max_size=1, statement_timeout_ms=200)
        start = time.perf_counter()
        with pytest.raises(TimeoutError):
            await pool.fetch("SELECT 1")
        assert time.perf_counter() - start < 2 * business_db.command_timeout(200) + 1.0
        pool.terminate()

"""The shipped database-role recipes (deploy/sql/) against a real PostgreSQL and the real services.

Before them every service used the PostgreSQL superuser. Here the pipeline database gets the roles of
deploy/sql/pipeline_roles.sql, the migrations run as the migration role, the whole stack runs a task
(and deletes it) as the non-superuser runtime role, and the runtime role is shown unable to change the
schema; a business database gets the read-only role of deploy/sql/business_readonly.sql.
"""

from __future__ import annotations

import asyncio
import subprocess
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import aio_pika
import aiohttp
import asyncpg
import pytest

from shared.broker import Topology, delete_topology
from shared.migrate import migrate
from shared.settings import CommonSettings
from tests.conftest import AMQP_URL, PG_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import BASE, Api
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

SQL = Path(__file__).resolve().parents[2] / "deploy" / "sql"
KEY = uuid.uuid4().hex[:8]
PIPELINE_DB, BUSINESS_DB = f"dp_lp_{KEY}", f"dp_lp_biz_{KEY}"
MIGRATOR, RUNTIME, TRAINING, READER = (
    f"dp_lp_{KEY}_{r}" for r in ("migrator", "runtime", "training", "reader")
)


def _url(user: str, database: str) -> str:
    parts = urlsplit(PG_URL)
    host = parts.hostname or "127.0.0.1"
    return urlunsplit(parts._replace(netloc=f"{user}@{host}:{parts.port or 5432}", path=f"/{database}"))


def _psql(database: str, recipe: str, **variables: str) -> str:
    args = [
        "psql",
        _url(urlsplit(PG_URL).username or "postgres", database),
        "-X",
        "-q",
        "-v",
        "ON_ERROR_STOP=1",
    ]
    for name, value in variables.items():
        args += ["-v", f"{name}={value}"]
    out = subprocess.run([*args, "-f", str(SQL / recipe)], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout


async def _admin(statements: list[str]) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def databases() -> Iterator[None]:
    asyncio.run(_admin([f"CREATE DATABASE {PIPELINE_DB}", f"CREATE DATABASE {BUSINESS_DB}"]))
    try:
        yield
    finally:
        asyncio.run(
            _admin(
                [
                    f"DROP DATABASE IF EXISTS {PIPELINE_DB} WITH (FORCE)",
                    f"DROP DATABASE IF EXISTS {BUSINESS_DB} WITH (FORCE)",
                    *(f"DROP ROLE IF EXISTS {role}" for role in (MIGRATOR, RUNTIME, TRAINING, READER)),
                ]
            )
        )


@pytest.fixture(scope="module")
def lp_env(
    databases: None, test_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, str]]:
    schema, training_schema = "data_pipeline", "dp_training"
    variables = {"migrator": MIGRATOR, "runtime": RUNTIME, "training": TRAINING}
    _psql(PIPELINE_DB, "pipeline_roles.sql", schema=schema, training_schema=training_schema, **variables)
    _psql(
        PIPELINE_DB, "pipeline_roles.sql", schema=schema, training_schema=training_schema, **variables
    )  # idempotent
    migrator = CommonSettings(
        database_url=_url(MIGRATOR, PIPELINE_DB), db_schema=schema, broker_prefix=f"dplp.{KEY}"
    )
    assert asyncio.run(migrate(migrator)), "the migration role could not migrate"
    env = {
        **test_env,
        "DP_DATABASE_URL": _url(RUNTIME, PIPELINE_DB),
        "DP_TRAINING_DATABASE_URL": _url(TRAINING, PIPELINE_DB),
        "DP_TRAINING_SCHEMA": training_schema,
        "DP_DB_SCHEMA": schema,
        "DP_BROKER_PREFIX": f"dplp.{KEY}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("lp-tasks")),
        "DP_HTTP_PORT": str(free_port()),
        "DP_EXECUTOR_REGISTRY": "tests.support.fake_executors:registry",
        "DP_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_COLLECTOR_FLUSH_MS": "20",
    }
    yield env
    asyncio.run(_delete_topology(env["DP_BROKER_PREFIX"]))


async def _delete_topology(prefix: str) -> None:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), Topology(prefix))


@pytest.fixture(scope="module")
def lp_stack(lp_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    stack = Stack(lp_env, tmp_path_factory.mktemp("lp-logs"))
    try:
        for name in ("collector", "scheduler", "runner", "gateway"):
            stack.start(name, extra_env={"DP_RUNNER_ID": "lp-runner"} if name == "runner" else None)
        asyncio.run(_wait_ready(f"http://127.0.0.1:{lp_env['DP_HTTP_PORT']}", stack))
        yield stack
    finally:
        stack.stop_all()


@pytest.fixture
async def lp_api(lp_stack: Stack, lp_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{lp_env['DP_HTTP_PORT']}")


async def test_the_pipeline_roles_are_not_superusers(databases: None, lp_env: dict[str, str]) -> None:
    conn = await asyncpg.connect(PG_URL)
    try:
        rows = await conn.fetch(
            "SELECT rolname, rolsuper, rolcreaterole, rolcreatedb, rolbypassrls FROM pg_roles"
            " WHERE rolname = ANY($1::text[])",
            [MIGRATOR, RUNTIME, TRAINING],
        )
    finally:
        await conn.close()
    assert len(rows) == 3
    assert not any(r["rolsuper"] or r["rolcreaterole"] or r["rolcreatedb"] or r["rolbypassrls"] for r in rows)


async def test_the_services_run_a_task_as_the_runtime_role(lp_api: Api, lp_env: dict[str, str]) -> None:
    task_id = await lp_api.create("postgresql://reader:pw@127.0.0.1:5432/business")
    detail = await lp_api.wait(task_id)
    assert detail["status"] == "completed", detail
    status, files = await lp_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200 and files["data"]["total"] == 5  # four step outputs and data_pipeline.log
    status, data = await lp_api.call("DELETE", f"{BASE}/tasks/{task_id}", json={"confirm": True})
    assert status in (200, 202), data


async def test_the_runtime_role_cannot_change_the_schema_or_read_elsewhere(lp_env: dict[str, str]) -> None:
    conn = await asyncpg.connect(lp_env["DP_DATABASE_URL"])
    try:
        assert await conn.fetchval("SELECT count(*) FROM data_pipeline.data_pipeline_tasks") >= 0
        for statement in (
            "CREATE TABLE data_pipeline.intruder (id int)",
            "ALTER TABLE data_pipeline.data_pipeline_tasks ADD COLUMN intruder int",
            "DROP TABLE data_pipeline.data_pipeline_events",
            "TRUNCATE data_pipeline.data_pipeline_events",
            "CREATE TABLE public.intruder (id int)",
            "CREATE SCHEMA intruder",
            "SELECT * FROM dp_training.training_data",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_the_business_reader_can_only_read(databases: None) -> None:
    owner = await asyncpg.connect(_url(urlsplit(PG_URL).username or "postgres", BUSINESS_DB))
    try:
        await owner.execute("CREATE TABLE public.orders (id int PRIMARY KEY, total numeric)")
        await owner.execute("INSERT INTO public.orders VALUES (1, 9.5)")
        await asyncio.to_thread(_psql, BUSINESS_DB, "business_readonly.sql", reader=READER, schemas="public")
        await owner.execute("CREATE TABLE public.later (id int)")  # default privileges cover new tables
    finally:
        await owner.close()
    reader = await asyncpg.connect(_url(READER, BUSINESS_DB))
    try:
        assert await reader.fetchval("SELECT total FROM public.orders WHERE id = 1") == 9.5
        assert await reader.fetchval("SELECT count(*) FROM public.later") == 0
        assert await reader.fetchval("SHOW default_transaction_read_only") == "on"
        assert await reader.fetchval("SHOW statement_timeout") == "1min"
        with pytest.raises(asyncpg.ReadOnlySQLTransactionError):
            await reader.execute("INSERT INTO public.orders VALUES (2, 1)")
        # Even with the read-only default switched off, the role has nothing to write with.
        await reader.execute("SET default_transaction_read_only = off")
        for statement in (
            "INSERT INTO public.orders VALUES (2, 1)",
            "DELETE FROM public.orders",
            "CREATE TABLE public.intruder (id int)",
        ):
            with pytest.raises(asyncpg.InsufficientPrivilegeError):
                await reader.execute(statement)
    finally:
        await reader.close()

"""Issue 9, item 6: `dpctl workflow run` with tracking on degrades like the seed's manual runs.

When the broker or the pipeline database cannot be reached, the run warns once and carries on
untracked: the step files and data_pipeline.log are still written. When the broker goes away in the
middle of a tracked run, the rest of the run goes on untracked. `--task-id` takes the seed's forms.
The steps are the scripted executors (tests/support/fake_executors.py); the shared RabbitMQ is never
stopped: an unreachable broker is a closed port, a broker that goes away is a proxy the test closes.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from shared.settings import CommonSettings
from tests.conftest import AMQP_URL, PG_URL
from tests.e2e.test_dpctl_cli import Result, _clean_env, dpctl, poll
from tests.support.api import BASE, Api
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")
BUSINESS_URL = "postgresql://manual_user:Manual-Pw-7@127.0.0.1:5432/business"
PIPELINE_PASSWORD = "Pipeline-Pw-93"


def _seed_id(prefix: str = "manual") -> str:
    """The seed's own form: no suffix, the second the run starts."""
    return f"{prefix}_{datetime.now(UTC):%Y%m%d_%H%M%S}"


def _env(base: dict[str, str], **overrides: str) -> dict[str, str]:
    keep = {k: v for k, v in base.items() if k != "DP_HTTP_PORT"}
    return _clean_env(
        **{**keep, "DP_EXECUTOR_REGISTRY": "tests.support.fake_executors:registry", **overrides}
    )


async def _run(env: dict[str, str], tables: Path, *extra: str, context: str = "manual run") -> Result:
    return await dpctl(
        "workflow", "run", "--db-connection", BUSINESS_URL, "--table-list", str(tables),
        "--business-context", context, *extra,
        env=env, timeout=90,
    )  # fmt: skip


@pytest.fixture
def tables(tmp_path: Path) -> Path:
    path = tmp_path / "tables.txt"
    path.write_text("public.orders\n# a comment\npublic.customers\n")
    return path


def _warnings(result: Result) -> list[str]:
    return [line for line in result.err.splitlines() if line.startswith("dpctl: warning:")]


def _assert_untracked_run_wrote_everything(result: Result, task_dir: Path) -> None:
    assert result.code == 0, result
    for step in STEPS:
        assert f"<== {step} completed" in result.out, result
        assert (task_dir / f"{step}.txt").is_file()
    log = (task_dir / "data_pipeline.log").read_text()
    assert all(f"[{step}]" in log for step in STEPS), log
    assert "Manual-Pw-7" not in log and "Manual-Pw-7" not in result.out + result.err


async def _events_of(settings: CommonSettings, task_id: str) -> int:
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": settings.db_schema})
    try:
        return await conn.fetchval("SELECT count(*) FROM data_pipeline_events WHERE task_id = $1", task_id)
    finally:
        await conn.close()


async def test_broker_down_warns_once_and_runs_untracked(
    test_env: dict[str, str], migrated: CommonSettings, tables: Path
) -> None:
    env = _env(test_env, DP_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/")
    task_id = _seed_id()
    result = await _run(env, tables, "--task-id", task_id)
    _assert_untracked_run_wrote_everything(result, Path(test_env["DP_DATA_ROOT"]) / task_id)
    (warning,) = _warnings(result)
    assert "not tracked" in warning and "broker is unreachable" in warning, result
    assert await _events_of(migrated, task_id) == 0  # the pipeline database was up, but nothing tracked


async def test_pipeline_database_down_warns_once_and_runs_untracked(
    test_env: dict[str, str], tables: Path, tmp_path: Path
) -> None:
    closed = free_port()
    env = _env(
        test_env,
        DP_DATABASE_URL=f"postgresql://postgres:{PIPELINE_PASSWORD}@127.0.0.1:{closed}/postgres",
        DP_DATA_ROOT=str(tmp_path / "root"),
    )
    task_id = _seed_id()
    result = await _run(env, tables, "--task-id", task_id)
    _assert_untracked_run_wrote_everything(result, tmp_path / "root" / task_id)
    (warning,) = _warnings(result)
    assert "not tracked" in warning and "pipeline database is unreachable" in warning, result
    assert PIPELINE_PASSWORD not in result.err + result.out


async def test_a_pipeline_database_without_the_event_store_is_untracked_too(
    test_env: dict[str, str], tables: Path, tmp_path: Path, run_id: str
) -> None:
    env = _env(test_env, DP_DB_SCHEMA=f"absent_{run_id}", DP_DATA_ROOT=str(tmp_path))
    task_id = _seed_id()
    result = await _run(env, tables, "--task-id", task_id)
    _assert_untracked_run_wrote_everything(result, tmp_path / task_id)
    (warning,) = _warnings(result)
    assert f"no event store in schema absent_{run_id}" in warning, result


# ---- the broker goes away during a tracked run ------------------------------------------------------


class Proxy:
    """A TCP proxy to the shared RabbitMQ; `cut()` closes every connection and stops accepting."""

    def __init__(self) -> None:
        self.port = free_port()
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", self.port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", 5672)
        self.writers += [writer, up_writer]

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(Exception):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            with contextlib.suppress(Exception):
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            with contextlib.suppress(Exception):
                writer.transport.abort()


@pytest.fixture
async def proxy() -> AsyncIterator[Proxy]:
    assert AMQP_URL.startswith("amqp://guest:guest@127.0.0.1:5672")
    p = Proxy()
    await p.start()
    yield p
    with contextlib.suppress(Exception):
        await p.cut()


async def test_the_broker_going_away_mid_run_turns_the_rest_untracked(
    stack: Stack, api: Api, stack_env: dict[str, str], tables: Path, proxy: Proxy
) -> None:
    env = _env(stack_env, DP_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{proxy.port}/")
    task_id = _seed_id()
    run = asyncio.create_task(
        _run(env, tables, "--task-id", task_id, context="sleep:qa_generation=4 sleep:sql_validation=1")
    )

    # Tracked at first: step 1's completion reaches the read model through the broker.
    async def step_one_recorded() -> bool:
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}")
        return status == 200 and body["data"]["step_status"]["ddl_generation"] == "completed"

    await poll(step_one_recorded, timeout=30, what="step 1 of the tracked run in the read model")
    await proxy.cut()
    result = await run
    task_dir = Path(stack_env["DP_DATA_ROOT"]) / task_id
    assert result.code == 0, result
    (warning,) = _warnings(result)
    assert "tracking stopped" in warning, result
    for step in STEPS:
        assert (task_dir / f"{step}.txt").is_file()
    log = (task_dir / "data_pipeline.log").read_text()
    assert "[training_load]" in log, log  # written by dpctl itself after the cut
    detail = await api.task(task_id)
    assert detail["status"] == "in_progress"  # its record keeps the last state it reached


# ---- the seed's --task-id forms ---------------------------------------------------------------------


async def test_the_seed_manual_id_form_is_tracked(
    stack: Stack, api: Api, stack_env: dict[str, str], tables: Path
) -> None:
    task_id = _seed_id()
    assert len(task_id) == len("manual_20250627_143052")
    result = await _run(_env(stack_env), tables, "--task-id", task_id)
    assert result.code == 0 and not _warnings(result), result
    detail = await api.wait(task_id, timeout=20)
    assert detail["status"] == "completed" and detail["created_by"] == "manual"


async def test_the_seed_task_id_form_runs_untracked_and_never_in_an_api_task_directory(
    stack: Stack, api: Api, stack_env: dict[str, str], tables: Path
) -> None:
    task_id = _seed_id("task")
    result = await _run(_env(stack_env), tables, "--task-id", task_id)
    _assert_untracked_run_wrote_everything(result, Path(stack_env["DP_DATA_ROOT"]) / task_id)
    (warning,) = _warnings(result)
    assert "not tracked" in warning and "belong to tasks the scheduler runs" in warning, result
    status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
    assert status == 404  # the scheduler never saw it

    # An API task's directory is never written by a manual run.
    api_task = await api.create("postgresql://u:p@127.0.0.1:5432/business")
    await api.wait(api_task)
    api_dir = Path(stack_env["DP_DATA_ROOT"]) / api_task
    before = {p.name: p.read_bytes() for p in api_dir.glob("*_*.txt")}  # the step outputs
    assert len(before) == 4
    result = await _run(_env(stack_env), tables, "--task-id", api_task)
    assert result.code == 2 and "dpctl task run-step" in result.err, result
    after = {p.name: p.read_bytes() for p in api_dir.glob("*_*.txt")}
    assert after == before


@pytest.mark.parametrize("bad", ["manual_2025062_143052", "run_20250627_143052", "manual_20250627_143052_UP"])
async def test_other_task_ids_are_refused(tables: Path, bad: str) -> None:
    result = await _run(_clean_env(), tables, "--task-id", bad)
    assert result.code == 2 and "--task-id must look like" in result.err, result

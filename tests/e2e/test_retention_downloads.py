"""Issue 9, item 5: download limits and retention, on the real services.

One stack of its own: a scheduler whose retention pass runs every half second (log retention 20 days,
file retention 40 days), a collector, a runner with scripted executors, and two gateways on the same
schema: one with a download limit of 53 bytes, one with downloads disabled.

Tasks are made old by back-dating their events in the store by as many days as they should have aged:
the scheduler measures age from the `task_finished` event's time, exactly as it would after real days
(the retention periods and the pass itself are the production ones, only the interval is shorter).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import BASE, Api
from tests.support.eventually import eventually
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

LIMIT = 53  # len("qa_generation output for <27-character task id>\n"); the ddl_generation file has 54
URL = "postgresql://ret_user:Ret-Pw-1@127.0.0.1:5432/business"


@pytest.fixture(scope="module")
def env(test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpr_{key}",
        "DP_BROKER_PREFIX": f"dpr.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("retention-tasks")),
        "DP_HTTP_PORT": str(free_port()),
        "DP_EXECUTOR_REGISTRY": "tests.support.fake_executors:registry",
        "DP_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_SHUTDOWN_GRACE_SECONDS": "2",
        "DP_COLLECTOR_FLUSH_MS": "20",
        "DP_LOG_RETENTION_DAYS": "20",
        "DP_FILE_RETENTION_DAYS": "40",
        "DP_RETENTION_INTERVAL_SECONDS": "0.5",
        "DP_MAX_DOWNLOAD_BYTES": str(LIMIT),
    }


@pytest.fixture(scope="module")
def no_download_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def stack(
    env: dict[str, str], no_download_port: int, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    with own_stack(env, tmp_path_factory.mktemp("retention-logs")) as stack:
        for name in ("collector", "scheduler", "gateway"):
            stack.start(name)
        stack.start(
            "gateway-no-download",
            kind="gateway",
            extra_env={"DP_HTTP_PORT": str(no_download_port), "DP_ENABLE_FILE_DOWNLOAD": "false"},
        )
        stack.start("runner", extra_env={"DP_RUNNER_ID": "retention-runner"})
        asyncio.run(_wait_ready(f"http://127.0.0.1:{env['DP_HTTP_PORT']}", stack))
        asyncio.run(_wait_ready(f"http://127.0.0.1:{no_download_port}", stack))
        yield stack


@pytest.fixture
async def api(stack: Stack, env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{env['DP_HTTP_PORT']}")


@pytest.fixture
async def no_download_api(stack: Stack, no_download_port: int) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{no_download_port}")


@pytest.fixture
async def db(stack: Stack, env: dict[str, str]) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(PG_URL, server_settings={"search_path": env["DP_DB_SCHEMA"]})
    yield conn
    await conn.close()


async def _completed_task(api: Api) -> str:
    task_id = await api.create(URL)
    assert (await api.wait(task_id))["status"] == "completed"
    return task_id


# ---- downloads ------------------------------------------------------------------------------------


async def test_a_file_over_the_download_limit_is_413_with_its_size_and_the_limit(api: Api) -> None:
    task_id = await _completed_task(api)
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/qa_generation.txt")
    assert status == 200, body
    assert body["raw"] == f"qa_generation output for {task_id}\n"  # exactly the limit: served
    for path in ("files/download/ddl_generation.txt", "files/ddl_generation.txt"):
        status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/{path}")
        assert status == 413, body
        assert body["data"]["error_type"] == "payload_too_large"
        assert body["data"]["file_size"] == LIMIT + 1 and body["data"]["max_download_bytes"] == LIMIT
        assert (
            f"{LIMIT + 1} bytes" in body["data"]["response"]
            and f"limit of {LIMIT}" in body["data"]["response"]
        )
    # A name that is not a downloadable file stays the same 404, whatever its size.
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/nope.txt")
    assert status == 404, body


async def test_downloads_disabled_answer_403_with_the_reason_and_listing_still_works(
    api: Api, no_download_api: Api
) -> None:
    task_id = await _completed_task(api)
    status, listing = await no_download_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, listing
    names = {f["file_name"] for f in listing["data"]["files"]}
    assert names >= {
        f"{s}.txt" for s in ("ddl_generation", "qa_generation", "sql_validation", "training_load")
    }
    for path in ("files/download/qa_generation.txt", "files/qa_generation.txt", "files/download/x.txt"):
        status, body = await no_download_api.call("GET", f"{BASE}/tasks/{task_id}/{path}")
        assert status == 403, body
        assert body["data"]["error_type"] == "forbidden"
        assert body["data"]["reason"] == "downloads_disabled"
        assert "DP_ENABLE_FILE_DOWNLOAD" in body["data"]["response"]
    status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/qa_generation.txt")
    assert status == 200  # the other gateway, same task: only the setting differs


# ---- retention ------------------------------------------------------------------------------------


async def _age(db: asyncpg.Connection, task_id: str, days: int) -> None:
    """The task finished `days` days earlier than it did: every event of it moves back in time."""
    await db.execute(
        "UPDATE data_pipeline_events SET occurred_at = occurred_at - make_interval(days => $2)"
        " WHERE task_id = $1",
        task_id,
        days,
    )


JSON_COLUMNS = ("parameters", "result", "step_status", "step_stats", "execution_result", "extra_data")
_ISO_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}")


def _without_times(value: Any) -> Any:
    if isinstance(value, datetime) or (isinstance(value, str) and _ISO_TIME.match(value)):
        return "<time>"
    if isinstance(value, dict):
        return {k: _without_times(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_times(v) for v in value]
    return value


async def _snapshot(db: asyncpg.Connection, task_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    tables = {
        "data_pipeline_tasks": "id",
        "data_pipeline_task_executions": "task_id",
        "data_pipeline_task_logs": "task_id",
        "data_pipeline_task_outputs": "task_id",
    }
    # Times left out: the live rows carry the times before the back-dating, a rebuild the back-dated ones
    # (what an honest age would have given). Everything else must be identical.
    return {
        table: [
            {k: _without_times(json.loads(v) if k in JSON_COLUMNS and v else v) for k, v in r.items()}
            for r in await db.fetch(
                f"SELECT * FROM {table} WHERE {column} = ANY($1::text[]) ORDER BY 1", task_ids
            )
        ]
        for table, column in tables.items()
    }


async def _log_counts(db: asyncpg.Connection, task_id: str) -> tuple[int, int, int]:
    """(log rows, log_emitted events, events of any type holding a log line's text) of one task."""
    return (
        await db.fetchval("SELECT count(*) FROM data_pipeline_task_logs WHERE task_id = $1", task_id),
        await db.fetchval(
            "SELECT count(*) FROM data_pipeline_events WHERE task_id = $1 AND type = 'log_emitted'", task_id
        ),
        await db.fetchval(
            "SELECT count(*) FROM data_pipeline_events WHERE task_id = $1"
            " AND strpos(payload::text, 'starting (attempt') > 0",
            task_id,
        ),
    )


async def test_retention_removes_old_logs_and_files_and_keeps_the_young(
    api: Api, db: asyncpg.Connection, stack: Stack, env: dict[str, str]
) -> None:
    data_root = Path(env["DP_DATA_ROOT"])
    ancient, old, young = [await _completed_task(api) for _ in range(3)]
    for task_id in (ancient, old, young):
        rows, events, texts = await _log_counts(db, task_id)
        assert rows >= 8 and events >= 8 and texts == 4, (task_id, rows, events, texts)
        assert (data_root / task_id / "data_pipeline.log").exists()

    await _age(db, ancient, 41)  # past both periods
    await _age(db, old, 21)  # past the log period only

    async def retained() -> bool:
        done = await db.fetch(
            "SELECT task_id, type FROM data_pipeline_events"
            " WHERE type IN ('task_logs_purged', 'task_files_cleaned')"
        )
        return {(r["task_id"], r["type"]) for r in done} >= {
            (ancient, "task_logs_purged"),
            (ancient, "task_files_cleaned"),
            (old, "task_logs_purged"),
        } and not (data_root / ancient).exists()

    await eventually(retained, timeout=30, what="the scheduler's retention pass")

    # The ancient task: no log text anywhere, no files, the record says so; the task itself stays.
    assert await _log_counts(db, ancient) == (0, 0, 0)
    assert not (data_root / ancient).exists()
    detail = await api.task(ancient)
    assert detail["status"] == "completed"
    executions = [e for step in detail["steps"] for e in step["executions"]]
    assert executions and all(e["files_cleaned"] for e in executions)
    assert await db.fetchval(
        "SELECT bool_and(files_cleaned) FROM data_pipeline_task_executions WHERE task_id = $1", ancient
    )
    assert not await db.fetchval(
        "SELECT bool_or(is_downloadable) FROM data_pipeline_task_outputs WHERE task_id = $1", ancient
    )
    status, logs = await api.call("GET", f"{BASE}/tasks/{ancient}/logs")
    assert status == 200 and logs["data"]["logs"] == [], logs
    for name in ("ddl_generation.txt", "data_pipeline.log"):
        status, body = await api.call("GET", f"{BASE}/tasks/{ancient}/files/download/{name}")
        assert status == 404, body
    status, events = await api.call("GET", f"{BASE}/tasks/{ancient}/events")
    assert status == 200, events
    assert "task_files_cleaned" in {e["type"] for e in events["data"]["events"]}

    # The old task: log text gone (rows, events, data_pipeline.log), files kept.
    assert await _log_counts(db, old) == (0, 0, 0)
    assert not (data_root / old / "data_pipeline.log").exists()
    assert (data_root / old / "ddl_generation.txt").exists()
    old_detail = await api.task(old)
    assert not any(e["files_cleaned"] for step in old_detail["steps"] for e in step["executions"])
    assert not await db.fetchval(
        "SELECT bool_or(files_cleaned) FROM data_pipeline_task_executions WHERE task_id = $1", old
    )
    assert not await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM data_pipeline_events WHERE task_id = $1 AND type = 'task_files_cleaned')",
        old,
    )

    # The young task: untouched.
    rows, events, texts = await _log_counts(db, young)
    assert rows >= 8 and events >= 8 and texts == 4
    assert (data_root / young / "data_pipeline.log").exists() and (
        data_root / young / "ddl_generation.txt"
    ).exists()
    assert not await db.fetchval(
        "SELECT EXISTS (SELECT 1 FROM data_pipeline_events WHERE task_id = $1"
        " AND type IN ('task_logs_purged', 'task_files_cleaned'))",
        young,
    )

    # Deterministic: the collector's rebuild from the store yields the same rows.
    before = await _snapshot(db, [ancient, old, young])
    stack.stop("collector")
    try:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "services.log_collector.main",
            "rebuild",
            env={**os.environ, **stack.env},
            stderr=asyncio.subprocess.PIPE,
        )
        _, stderr = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode == 0, stderr.decode()
    finally:
        stack.start("collector")
    assert await _snapshot(db, [ancient, old, young]) == before

    # A retention pass later does nothing more: one purge and one clean per finish.
    later = await _completed_task(api)  # the collector is back and the scheduler kept ticking
    assert later
    counts = await db.fetch(
        "SELECT task_id, type, count(*) AS n FROM data_pipeline_events"
        " WHERE type IN ('task_logs_purged', 'task_files_cleaned') GROUP BY task_id, type"
    )
    assert {(r["task_id"], r["type"]): r["n"] for r in counts} == {
        (ancient, "task_logs_purged"): 1,
        (ancient, "task_files_cleaned"): 1,
        (old, "task_logs_purged"): 1,
    }


async def test_dpctl_prune_still_deletes_through_the_api(api: Api, env: dict[str, str]) -> None:
    """Retention by the scheduler does not replace `dpctl task prune` (whole tasks, through DELETE)."""
    task_id = await _completed_task(api)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.dpctl.main",
        "--url",
        api.url,
        "task",
        "prune",
        "--older-than-days",
        "0",
        "--yes",
        env={**os.environ, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0, (out.decode(), err.decode())

    async def gone() -> bool:
        status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
        return status == 404

    await eventually(gone, timeout=30, what="the pruned task to disappear")

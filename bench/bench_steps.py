"""Times step 1 (100 tables, LLM answers delayed 200 ms) at concurrency 8 vs 1, and step 3's throughput.

    .venv/bin/python -m bench.bench_steps [--server-url postgresql://postgres@127.0.0.1:5432/postgres]

Everything runs in a scratch database that is dropped at the end; the LLM is the OpenAI-compatible fake
server of the tests, so the numbers measure the step's own overlap of database and model round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.demo_db.generator import drop_database, ensure_database
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.executors.sql_validation import SqlValidationExecutor
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.fake_openai import FakeOpenAI
from tests.support.step_context import RecordingContext

TABLES = 100
PAIRS = 500
LLM_DELAY_SECONDS = 0.2


async def _create_tables(url: str) -> list[str]:
    names = [f"bench_t{i:03d}" for i in range(TABLES)]
    conn = await asyncpg.connect(url)
    try:
        for name in names:
            await conn.execute(
                f"""CREATE TABLE {name} (
                    id integer PRIMARY KEY, parent_id integer, name text NOT NULL, status varchar(12) NOT NULL,
                    amount numeric(10,2), created_at timestamptz NOT NULL DEFAULT now());
                INSERT INTO {name} (id, parent_id, name, status, amount)
                SELECT g, g / 3, 'item ' || g, (ARRAY['new','open','closed'])[1 + g % 3], g * 1.5
                FROM generate_series(1, 60) g;"""
            )
        await conn.execute("ANALYZE")
    finally:
        await conn.close()
    return names


def _context(task_dir: Path, url: str, tables: list[str]) -> RecordingContext:
    params = TaskParameters(db_connection=url, table_list=tables, business_context="benchmark")
    return RecordingContext(task_dir, params, url, step=StepName.DDL_GENERATION)


async def _time_step1(url: str, tables: list[str], fake: FakeOpenAI, concurrency: int) -> float:
    llm = LLMSettings(
        provider="openai", base_url=fake.base_url, api_key="bench", model="fake", concurrency=concurrency
    )
    step = DdlGenerationExecutor(PipelineSettings(ddl_concurrency=concurrency), lambda: create_llm(llm))
    with tempfile.TemporaryDirectory() as task_dir:
        started = time.perf_counter()
        summary = await step.run(_context(Path(task_dir), url, tables))
        elapsed = time.perf_counter() - started
    assert summary["tables_succeeded"] == len(tables), summary
    return elapsed


def _pairs(tables: list[str]) -> list[dict[str, str]]:
    shapes = [
        "SELECT status, count(*) AS n FROM {t} GROUP BY status ORDER BY n DESC",
        "SELECT date_trunc('day', created_at) AS day, sum(amount) FROM {t} GROUP BY 1 ORDER BY 1",
        "SELECT c.name, p.name AS parent FROM {t} c LEFT JOIN {t} p ON p.id = c.parent_id WHERE c.amount > 10",
        "WITH top AS (SELECT * FROM {t} ORDER BY amount DESC LIMIT 5) SELECT avg(amount) FROM top",
        "SELECT a.id, b.status FROM {t} a JOIN {u} b ON b.id = a.id WHERE a.status <> 'closed'",
    ]
    return [
        {
            "question": f"benchmark question {i}",
            "sql": shapes[i % len(shapes)].format(t=tables[i % len(tables)], u=tables[(i * 7) % len(tables)]),
        }
        for i in range(PAIRS)
    ]


async def _time_step3(url: str, tables: list[str]) -> tuple[float, dict[str, object]]:
    step = SqlValidationExecutor(PipelineSettings(), lambda: create_llm(LLMSettings()))
    with tempfile.TemporaryDirectory() as task_dir:
        (Path(task_dir) / "qs_bench_20240101_000000_pair.json").write_text(json.dumps(_pairs(tables)))
        ctx = _context(Path(task_dir), url, tables).for_step(StepName.SQL_VALIDATION)
        started = time.perf_counter()
        summary = await step.run(ctx)
        return time.perf_counter() - started, summary


async def main(server_url: str) -> None:
    url = urlunsplit(urlsplit(server_url)._replace(path=f"/dp_bench_{uuid.uuid4().hex[:8]}"))
    await ensure_database(url)
    try:
        tables = await _create_tables(url)
        async with FakeOpenAI(delay_seconds=LLM_DELAY_SECONDS) as fake:
            fast = await _time_step1(url, tables, fake, 8)
            slow = await _time_step1(url, tables, fake, 1)
        print(f"step 1, {TABLES} tables, LLM answers after {LLM_DELAY_SECONDS * 1000:.0f} ms:")
        print(f"  concurrency 8: {fast:6.2f} s")
        print(f"  concurrency 1: {slow:6.2f} s")
        print(f"  speedup:       {slow / fast:6.2f}x")
        elapsed, summary = await _time_step3(url, tables)
        print(
            f"step 3, {PAIRS} pairs (EXPLAIN, concurrency {PipelineSettings().sql_validation_concurrency}):"
        )
        print(
            f"  {elapsed:.2f} s, {PAIRS / elapsed:.0f} statements/s, success rate {summary['success_rate_before']:.1%}"
        )
    finally:
        await drop_database(url)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    asyncio.run(main(parser.parse_args().server_url))

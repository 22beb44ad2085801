"""`make run` as a newcomer runs it (scripts/devstack.py run, on a schema, training schema, broker prefix,
port and demo database of its own): the stack comes up, the demo task ends completed and its training
data lands in the training schema it was given; stopping it under `timeout`
(its SIGTERM reaches the whole process group, and make passes another on) ends every process cleanly,
with status 0 and no traceback."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import asyncpg
import pytest

from services.demo_db.generator import drop_database
from shared.broker import Topology
from shared.migrate import drop_schema
from shared.settings import CommonSettings
from tests.conftest import PG_URL, drop_training_schema
from tests.support.eventually import eventually
from tests.support.stack import free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


class _Output:
    """The lines a process writes, read as they come."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.lines: list[str] = []
        assert proc.stdout is not None
        self.reading = asyncio.create_task(self._read(proc.stdout))

    async def _read(self, stream: asyncio.StreamReader) -> None:
        async for line in stream:
            self.lines.append(line.decode(errors="replace"))

    def has(self, text: str) -> bool:
        return any(text in line for line in self.lines)

    def text(self) -> str:
        return "".join(self.lines)


async def _training_rows(schema: str) -> int:
    conn = await asyncpg.connect(PG_URL)
    try:
        return int(await conn.fetchval(f"SELECT count(*) FROM {schema}.training_data"))
    finally:
        await conn.close()


def _group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_make_run_completes_the_demo_and_stops_cleanly_under_a_second_signal(
    test_env: dict[str, str], own_topology: Topology, tmp_path: Path
) -> None:
    own = uuid.uuid4().hex[:8]
    demo_url = PG_URL.rsplit("/", 1)[0] + f"/dp_demo_run_{own}"
    env = {
        **os.environ,
        **test_env,
        "DP_DB_SCHEMA": f"dprun_{own}",
        "DP_TRAINING_SCHEMA": f"dprun_{own}_training",
        "DP_BROKER_PREFIX": own_topology.prefix,
        "DP_DATA_ROOT": str(tmp_path),
        "DP_HTTP_PORT": str(free_port()),
        "DP_DEMO_DATABASE_URL": demo_url,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "scripts/devstack.py",
        "run",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,
    )
    output = _Output(proc)
    try:
        await eventually(
            lambda: output.has("the stack keeps running") or proc.returncode is not None,
            timeout=150,
            interval=0.5,
            what="the demo task to end",
        )
        assert output.has("ended completed."), output.text()[-4000:]
        assert await _training_rows(env["DP_TRAINING_SCHEMA"]) > 0
        os.killpg(proc.pid, signal.SIGTERM)  # `timeout`: the whole group
        await eventually(lambda: output.has("[run] stopping"), timeout=10, what="the stop to begin")
        os.kill(proc.pid, signal.SIGTERM)  # and make passes it on while the stack stops
        status = await asyncio.wait_for(proc.wait(), 60)
        assert status == 0, output.text()[-4000:]
        assert "Traceback" not in output.text(), output.text()[-4000:]
        await eventually(lambda: _group_gone(proc.pid), timeout=10, what="every process of the stack gone")
    finally:
        if not _group_gone(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        await proc.wait()
        await output.reading
        await drop_schema(CommonSettings(database_url=PG_URL, db_schema=env["DP_DB_SCHEMA"]))
        await drop_training_schema(env["DP_TRAINING_SCHEMA"])
        await drop_database(demo_url)

"""The real `dpctl` as a subprocess against the real services: tasks through the gateway, manual runs."""

from __future__ import annotations

import asyncio
import json
import os
import re
import sys
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.e2e.conftest import DB_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.eventually import eventually
from tests.support.real_stack import (  # noqa: F401  (fixtures)
    DEMO_TABLES,
    demo_tables,
    drop_training_schema,
    real_api,
    real_env,
    real_stack,
)
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")


@dataclass
class Result:
    code: int
    out: str
    err: str

    def __str__(self) -> str:
        return f"exit {self.code}\n--- stdout\n{self.out[-3000:]}\n--- stderr\n{self.err[-3000:]}"


def _clean_env(**extra: str) -> dict[str, str]:
    """The caller's environment without any DP_* variable, plus `extra`."""
    return {**{k: v for k, v in os.environ.items() if not k.startswith("DP_")}, **extra}


async def dpctl(*args: str, env: dict[str, str], timeout: float = 30) -> Result:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.dpctl.main",
        *args,
        env=env,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(proc.communicate(), timeout)
    except TimeoutError:
        proc.kill()
        out, err = await proc.communicate()
        raise AssertionError(
            f"dpctl {' '.join(args)} ran over {timeout}s:\n{out.decode()}\n{err.decode()}"
        ) from None
    return Result(proc.returncode or 0, out.decode(), err.decode())


poll = eventually  # the suite's one polling helper, under the name this module's callers use


# --- the session stack (scripted executors) through the gateway ---


@pytest.fixture(scope="module")
def cli_env(stack: Stack, stack_env: dict[str, str]) -> dict[str, str]:
    return _clean_env(DP_GATEWAY_URL=f"http://127.0.0.1:{stack_env['DP_HTTP_PORT']}")


@pytest.fixture(scope="module")
async def followed(cli_env: dict[str, str]) -> tuple[str, Result]:
    """A task created and followed to its end by `dpctl task create --follow`."""
    result = await dpctl(
        "task",
        "create",
        "--tables",
        "public.orders,public.items",
        "--db-connection",
        DB_URL,
        "--business-context",
        "a plain shop sleep:ddl_generation=1.5",  # long enough to be seen running
        "--task-name",
        "dpctl e2e",
        "--follow",
        env=cli_env,
    )
    found = re.search(r"created (task_\w+)", result.out)
    assert found, result
    return found.group(1), result


async def test_create_follow_shows_the_steps_and_exits_0(followed: tuple[str, Result]) -> None:
    task_id, result = followed
    assert result.code == 0, result
    for step in STEPS:
        assert re.search(rf"^{step} .*completed", result.out, re.MULTILINE), f"{step}\n{result}"
    # Live progress while ddl_generation works, before it completes.
    running = re.search(r"^ddl_generation .*%  running", result.out, re.MULTILINE)
    done = re.search(r"^ddl_generation .*completed", result.out, re.MULTILINE)
    assert running and done and running.start() < done.start(), result
    assert "qa_generation done" in result.out  # streamed log lines
    assert DB_URL.split(":")[2].split("@")[0] not in result.out  # the password stays masked
    assert result.out.rstrip().endswith(f"task {task_id}: completed")


async def test_a_failing_task_followed_exits_non_zero(cli_env: dict[str, str], api: Api) -> None:
    result = await dpctl(
        "task",
        "create",
        "--tables",
        "public.orders",
        "--db-connection",
        DB_URL,
        "--business-context",
        "fail:qa_generation",
        "--follow",
        "--no-logs",
        env=cli_env,
    )
    assert result.code == 1, result
    task_id = re.search(r"created (task_\w+)", result.out).group(1)  # type: ignore[union-attr]
    assert re.search(r"^qa_generation .*failed", result.out, re.MULTILINE), result
    assert f"task {task_id}: partial_completed" in result.out
    assert (await api.task(task_id))["status"] == "partial_completed"

    # --level WARNING: only the warnings and errors, here the step's failure.
    logs = await dpctl("task", "logs", task_id, "--level", "WARNING", "--json", env=cli_env)
    assert logs.code == 0, logs
    lines = json.loads(logs.out)["logs"]
    assert lines and all(line["level"] in ("WARNING", "ERROR", "CRITICAL") for line in lines), lines
    assert any("scripted failure of qa_generation" in line["message"] for line in lines), lines
    text = await dpctl("task", "logs", task_id, "--level", "warning", env=cli_env)
    assert text.code == 0 and "scripted failure" in text.out and " INFO " not in text.out, text


async def test_wait_returns_when_the_task_ends_with_its_exit_code(cli_env: dict[str, str]) -> None:
    async def created(context: str) -> str:
        result = await dpctl(
            "task", "create", "--tables", "public.orders", "--db-connection", DB_URL,
            "--business-context", context, "--json", env=cli_env,
        )  # fmt: skip
        assert result.code == 0, result
        return str(json.loads(result.out)["task_id"])

    slow = await created("waited on sleep:ddl_generation=2")
    early = await dpctl("task", "wait", slow, "--max-wait", "0.3", env=cli_env)
    assert early.code == 1 and "(still, at --max-wait)" in early.out, early
    done = await dpctl("task", "wait", slow, "--json", env=cli_env, timeout=60)
    assert done.code == 0, done
    assert json.loads(done.out)["status"] == "completed"

    failing = await created("fail:qa_generation")
    ended = await dpctl("task", "wait", failing, env=cli_env, timeout=60)
    assert ended.code == 1, ended
    assert ended.out.strip() == f"task {failing}: partial_completed"


async def test_list_json_contains_the_task(followed: tuple[str, Result], cli_env: dict[str, str]) -> None:
    task_id, _ = followed
    result = await dpctl("task", "list", "--json", "--limit", "100", env=cli_env)
    assert result.code == 0, result
    tasks = {t["task_id"]: t for t in json.loads(result.out)["tasks"]}
    assert tasks[task_id]["status"] == "completed"
    table = await dpctl("task", "list", "--search", "dpctl e2e", env=cli_env)
    assert table.code == 0 and task_id in table.out and table.out.startswith("TASK"), table


async def test_show(followed: tuple[str, Result], cli_env: dict[str, str]) -> None:
    task_id, _ = followed
    result = await dpctl("task", "show", task_id, env=cli_env)
    assert result.code == 0, result
    assert re.search(rf"^Task:\s+{task_id}$", result.out, re.MULTILINE), result
    assert re.search(r"^Status:\s+completed$", result.out, re.MULTILINE), result
    assert re.search(r"^Name:\s+dpctl e2e$", result.out, re.MULTILINE), result
    for step in STEPS:
        assert re.search(rf"^{step}\s+completed", result.out, re.MULTILINE), result
    as_json = await dpctl("--json", "task", "show", task_id, env=cli_env)
    detail = json.loads(as_json.out)
    assert detail["task_id"] == task_id and detail["step_status"] == dict.fromkeys(STEPS, "completed")


async def test_logs_of_one_step(followed: tuple[str, Result], cli_env: dict[str, str]) -> None:
    task_id, _ = followed
    result = await dpctl("task", "logs", task_id, "--step", "ddl_generation", env=cli_env)
    assert result.code == 0, result
    lines = result.out.splitlines()
    assert len(lines) == 3 and all("[ddl_generation]" in line for line in lines), result
    assert "ddl_generation starting" in lines[0] and "ddl_generation done" in lines[-1]
    by_number = await dpctl("task", "logs", task_id, "--step", "2", "--json", env=cli_env)
    assert {line["message"] for line in json.loads(by_number.out)["logs"]} >= {"qa_generation done"}


async def test_files_and_download(
    followed: tuple[str, Result], cli_env: dict[str, str], api: Api, tmp_path: Path
) -> None:
    task_id, _ = followed
    result = await dpctl("task", "files", task_id, env=cli_env)
    assert result.code == 0, result
    for step in STEPS:
        assert re.search(rf"^{step}\.txt\s", result.out, re.MULTILINE), result

    target = tmp_path / "qa.txt"
    result = await dpctl("task", "download", task_id, "qa_generation.txt", "-o", str(target), env=cli_env)
    assert result.code == 0, result
    status, served = await api.call("GET", f"{BASE}/tasks/{task_id}/files/download/qa_generation.txt")
    assert status == 200
    assert target.read_text() == served["raw"] == f"qa_generation output for {task_id}\n"
    assert not list(tmp_path.glob("*.part"))

    missing = await dpctl("task", "download", task_id, "nope.txt", "-o", str(tmp_path / "x"), env=cli_env)
    assert missing.code == 2, missing
    assert not (tmp_path / "x").exists()


async def test_run_step_again(
    followed: tuple[str, Result], cli_env: dict[str, str], pg: asyncpg.Connection, api: Api
) -> None:
    task_id, _ = followed
    result = await dpctl("task", "run-step", task_id, "1", env=cli_env)
    assert result.code == 0, result
    assert f"{task_id}: step" in result.out and "scheduled" in result.out

    async def ran_twice() -> bool:
        rows = await pg.fetch(
            "SELECT status FROM data_pipeline_task_executions"
            " WHERE task_id = $1 AND execution_step = 'ddl_generation' ORDER BY id",
            task_id,
        )
        return [r["status"] for r in rows] == ["completed", "completed"]

    await poll(ran_twice, what="ddl_generation to run a second time")
    assert (await api.wait(task_id))["status"] == "completed"


async def test_cancel_a_running_task_then_delete_it(cli_env: dict[str, str], api: Api) -> None:
    created = await dpctl(
        "task",
        "create",
        "--tables",
        "public.orders",
        "--db-connection",
        DB_URL,
        "--business-context",
        "sleep:ddl_generation=20",
        "--json",
        env=cli_env,
    )
    assert created.code == 0, created
    task_id = json.loads(created.out)["task_id"]
    await api.wait_step(task_id, "ddl_generation", "running")

    result = await dpctl("task", "cancel", task_id, "--reason", "test", env=cli_env)
    assert result.code == 0, result
    assert f"{task_id}: cancel requested" in result.out
    assert (await api.wait(task_id, timeout=15))["status"] == "cancelled"

    again = await dpctl("task", "cancel", task_id, env=cli_env)
    assert again.code == 2 and "already finished" in again.err, again

    deleted = await dpctl("task", "delete", task_id, env=cli_env)
    assert deleted.code == 0, deleted
    assert f"{task_id}: delet" in deleted.out
    status, _ = await api.call("GET", f"{BASE}/tasks/{task_id}")
    assert status == 404


async def test_api_errors_show_the_reason_and_exit_2(cli_env: dict[str, str], api: Api) -> None:
    # Not a task id at all (the suffix is 1-10 characters): 400; a well-formed id nobody has: 404.
    for bad_id, expected in (("task_20990101_000000_nonexistent", 400), ("task_20990101_000000_absent", 404)):
        result = await dpctl("task", "show", bad_id, env=cli_env)
        status, body = await api.call("GET", f"{BASE}/tasks/{bad_id}")
        assert status == expected, body
        assert result.code == 2, result
        assert result.err.splitlines()[0] == f"dpctl: {body['data']['response']}", result
        assert result.out == ""
    missing_id = "task_20990101_000000_absent"

    as_json = await dpctl("task", "show", missing_id, "--json", env=cli_env)
    assert as_json.code == 2
    assert json.loads(as_json.err)["status"] == 404

    no_context = await dpctl(
        "task", "create", "--tables", "public.orders", "--db-connection", DB_URL, "--business-context", "",
        env=cli_env,
    )  # fmt: skip
    assert no_context.code == 2, no_context
    assert "business_context" in no_context.err, no_context


async def test_unreachable_gateway_exits_3() -> None:
    env = _clean_env(DP_GATEWAY_URL=f"http://127.0.0.1:{free_port()}")
    result = await dpctl("task", "list", env=env)
    assert result.code == 3, result
    assert "cannot reach the gateway" in result.err


async def test_usage_errors_exit_2(cli_env: dict[str, str]) -> None:
    result = await dpctl("task", "create", "--tables", "a", env=cli_env)
    assert result.code == 2 and "required" in result.err, result


# --- manual runs: `dpctl workflow run` ---


def _manual_id() -> str:
    return f"manual_{datetime.now(UTC):%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:6]}"


@pytest.fixture
async def training_schema(run_id: str) -> AsyncIterator[str]:
    schema = f"dpm_{run_id}_{uuid.uuid4().hex[:4]}"
    yield schema
    await drop_training_schema(schema)


async def test_manual_run_without_tracking(
    demo_db_url: str,  # noqa: F811
    training_schema: str,
    tmp_path: Path,
    run_id: str,
) -> None:
    env = _clean_env(
        DP_DATABASE_URL=PG_URL,  # the training store's database
        DP_TRAINING_SCHEMA=training_schema,
        DP_RABBITMQ_URL=f"amqp://guest:guest@127.0.0.1:{free_port()}/",  # no broker
        DP_DB_SCHEMA=f"absent_{run_id}",  # no pipeline schema
        DP_GATEWAY_URL=f"http://127.0.0.1:{free_port()}",  # no gateway
    )
    task_id = _manual_id()
    result = await dpctl(
        "workflow",
        "run",
        "--db-connection",
        demo_db_url,
        "--table-list",
        str(DEMO_TABLES),  # with a `#` comment line
        "--business-context",
        "An online retail shop",
        "--db-name",
        "shop",
        "--no-db-tracking",
        "--output-dir",
        str(tmp_path),
        "--task-id",
        task_id,
        env=env,
        timeout=120,
    )
    assert result.code == 0, result
    for step in STEPS:
        assert f"<== {step} completed" in result.out, result
    assert result.out.rstrip().endswith(f"{task_id}: completed")
    report = result.out.split("final report:\n", 1)[1]
    assert re.search(r"^  sql_validation\s+completed\s+attempts 1 .*SQL valid \d+", report, re.MULTILINE), (
        result
    )
    # the offline provider: calls, no tokens
    assert re.search(
        r"^  total: [\d.]+s; [1-9]\d* LLM calls, 0 prompt \+ 0 completion = 0 tokens", report, re.M
    ), result

    task_dir = tmp_path / task_id
    tables = demo_tables()
    assert len(list(task_dir.glob("*.ddl"))) == len(tables)
    assert len([p for p in task_dir.glob("*_detail.md") if p.name != "metadata_detail.md"]) == len(tables)
    pairs = list(task_dir.glob("qs_shop_*_pair.json"))
    assert len(pairs) == 1 and json.loads(pairs[0].read_text())
    assert len(list(task_dir.glob("sql_validation_*_report.json"))) == 1
    log = (task_dir / "data_pipeline.log").read_text()
    assert all(f"[{step}]" in log for step in STEPS), log[-2000:]
    # Without DP_ENCRYPTION_KEY the key is made in the run's output directory, not in DP_DATA_ROOT's
    # default under the working directory.
    assert (tmp_path / ".encryption_key").exists()


async def test_manual_run_single_mode_needs_a_step(tmp_path: Path) -> None:
    tables = tmp_path / "tables.txt"
    tables.write_text("orders\n")
    result = await dpctl(
        "workflow", "run", "--db-connection", DB_URL, "--table-list", str(tables),
        "--business-context", "x", "--no-db-tracking", "--output-dir", str(tmp_path),
        "--execution-mode", "single",
        env=_clean_env(),
    )  # fmt: skip
    assert result.code == 2, result
    assert "--single-step" in result.err
    assert not [p for p in tmp_path.iterdir() if p.name != "tables.txt"]  # nothing was started


async def test_manual_run_tracked_shows_up_in_the_api(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    env = _clean_env(**{k: v for k, v in real_env.items() if k != "DP_HTTP_PORT"})
    task_id = _manual_id()
    result = await dpctl(
        "workflow",
        "run",
        "--db-connection",
        demo_db_url,
        "--table-list",
        str(DEMO_TABLES),
        "--business-context",
        "An online retail shop",
        "--db-name",
        "shop",
        "--task-id",
        task_id,
        env=env,
        timeout=120,
    )
    assert result.code == 0, result

    # The collector folds the run's events into the read model shortly after they are published.
    detail = await real_api.wait(task_id, timeout=20)
    assert detail["status"] == "completed", detail
    assert detail["created_by"] == "manual"
    assert detail["step_status"] == dict.fromkeys(STEPS, "completed")
    assert detail["output_directory"] == str(Path(real_env["DP_DATA_ROOT"]) / task_id)

    async def logs_arrived() -> list:
        status, body = await real_api.call("GET", f"{BASE}/tasks/{task_id}/logs", params={"limit": 1000})
        assert status == 200, body
        lines = body["data"]["logs"]
        return lines if {line.get("step_name") or line.get("step") for line in lines} >= set(STEPS) else []

    await poll(logs_arrived, what="the manual run's log lines")
    status, body = await real_api.call("GET", f"{BASE}/tasks/{task_id}/files")
    assert status == 200, body
    names = {f["file_name"] for f in body["data"]["files"]}
    assert "metadata.txt" in names and any(n.endswith("_pair.json") for n in names), names

"""The collector's task-level log lines on the real event store (issue 9, item 4): a timeout's
`system_check` names the runner and its last heartbeat, `workflow_error` the failing step; a redelivered
batch adds nothing and a rebuild reproduces the rows and the log file's lines."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from pydantic import BaseModel

from services.log_collector.adapters.task_files import LOG_FILE
from services.log_collector.rebuild import rebuild_read_models
from shared.events import (
    FailureCode,
    LogEmitted,
    StepFailed,
    StepHeartbeat,
    StepScheduled,
    StepStarted,
    TaskCreated,
    TaskFinished,
    TaskStarted,
)
from shared.ids import execution_id
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName
from tests.integration.test_platform_collector import (  # noqa: F401  (fixtures)
    FakeMessage,
    _collector,
    _deliver,
    _task_id,
    _wait_settled,
    pg,
    pool,
    settings,
)

QUERY = (
    "SELECT id, log_level, step_name, message, module_name, function_name, extra_data, execution_id"
    " FROM data_pipeline_task_logs WHERE task_id = $1 ORDER BY id"
)


def _timed_out(task_id: str, at: datetime) -> tuple[list[EventEnvelope], datetime]:
    step = StepName.SQL_VALIDATION
    exec_id = execution_id(task_id, step, at, 1)
    heartbeat = at + timedelta(seconds=3)
    payloads: list[tuple[BaseModel, datetime, str]] = [
        (
            TaskCreated(
                parameters=TaskParameters(db_connection="postgresql://u@h/db", business_context="x"),
                output_directory=f"/data/{task_id}",
                steps=list(STEP_ORDER),
            ),
            at,
            "scheduler",
        ),
        (TaskStarted(), at + timedelta(seconds=1), "scheduler"),
        (StepScheduled(step=step, execution_id=exec_id, attempt=1), at + timedelta(seconds=1), "scheduler"),
        (StepStarted(step=step, execution_id=exec_id, runner_id="runner-7"), at + timedelta(seconds=2), "r"),
        (LogEmitted(message="validating", step=step, execution_id=exec_id), at + timedelta(seconds=2), "r"),
        (StepHeartbeat(step=step, execution_id=exec_id, runner_id="runner-7"), heartbeat, "runner-7"),
        (
            StepFailed(
                step=step,
                execution_id=exec_id,
                error="task exceeded task_timeout_hours=2",
                code=FailureCode.TASK_TIMEOUT,
            ),
            at + timedelta(hours=2),
            "scheduler",
        ),
        (
            TaskFinished(status="failed", error_message="task exceeded task_timeout_hours=2"),
            at + timedelta(hours=2),
            "scheduler",
        ),
    ]
    envelopes = [
        EventEnvelope(task_id=task_id, producer=producer, payload=p, occurred_at=t)  # type: ignore[arg-type]
        for p, t, producer in payloads
    ]
    return envelopes, heartbeat


async def test_timeout_lines_exactly_once_and_rebuilt_alike(
    pool: asyncpg.Pool,  # noqa: F811
    pg: asyncpg.Connection,  # noqa: F811
    tmp_path: Path,
) -> None:
    collector = _collector(pool, tmp_path)
    task_id = _task_id()
    envelopes, heartbeat = _timed_out(task_id, datetime.now(UTC).replace(microsecond=0))
    first = [FakeMessage(e) for e in envelopes]
    await _deliver(collector, first)
    await _wait_settled(first)
    again = [FakeMessage(e) for e in envelopes]  # a redelivery of everything
    await _deliver(collector, again)
    await _wait_settled(again)
    await collector.drain()

    rows = [dict(r) for r in await pg.fetch(QUERY, task_id)]
    assert [r["step_name"] for r in rows] == [
        "workflow_start",
        "sql_validation",
        "system_check",
        "workflow_error",
    ]
    check = rows[2]
    assert check["log_level"] == "ERROR" and check["function_name"] == "step_failed"
    assert "task_timeout" in check["message"] and "runner-7" in check["message"]
    assert heartbeat.isoformat() in check["message"]
    assert check["execution_id"] == envelopes[2].payload.execution_id  # type: ignore[attr-defined]
    error = rows[3]
    assert (
        error["log_level"] == "ERROR" and json.loads(error["extra_data"])["failed_step"] == "sql_validation"
    )
    assert "(failing step: sql_validation)" in error["message"]
    # The row ids are the facts' sequence numbers.
    seqs = await pg.fetch(
        "SELECT seq FROM data_pipeline_events WHERE task_id = $1"
        " AND type IN ('task_started', 'log_emitted', 'step_failed', 'task_finished') ORDER BY seq",
        task_id,
    )
    assert [r["id"] for r in rows] == [s["seq"] for s in seqs]
    lines = (tmp_path / task_id / LOG_FILE).read_text(encoding="utf-8").splitlines()
    assert [line.rsplit("(#", 1)[1] for line in lines] == [f"{r['id']})" for r in rows]

    await rebuild_read_models(pool)
    assert [dict(r) for r in await pg.fetch(QUERY, task_id)] == rows

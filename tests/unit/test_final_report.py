"""The final report (shared.final_report) folded from events, and the LLM usage meter (shared.llm_usage)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

from services.scheduler.state import evolve, llm_tokens_used
from services.step_runner.context import RunnerContext
from services.step_runner.execution import execute_step
from shared import llm_usage
from shared.events import (
    FailureCode,
    OutputRegistered,
    StepFailed,
    StepScheduled,
    StepSkipped,
    StepStarted,
    StepSucceeded,
    TaskCreated,
    TaskFinished,
    TaskRerunRequested,
    TaskStarted,
)
from shared.final_report import final_report
from shared.llm_usage import LlmBudgetExceeded, LlmUsage, Prices, UsageMeter, metering, record_call, tokens_of
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.secrets import SecretBox
from shared.steps import STEP_ORDER

DDL, QA, SQL, LOAD = STEP_ORDER
T0 = datetime(2025, 1, 1, 8, 0, 0, tzinfo=UTC)
PARAMS = TaskParameters(db_connection="postgresql://u:***@db/shop", business_context="shop", table_list=["a"])


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def env(payload: BaseModel, seconds: float) -> EventEnvelope:
    return EventEnvelope(task_id="task_x", producer="test", occurred_at=at(seconds), payload=payload)  # type: ignore[arg-type]


def usage(model: str, prompt: int, completion: int, calls: int = 1) -> LlmUsage:
    return LlmUsage(
        model=model, calls=calls, prompt_tokens=prompt, completion_tokens=completion, latency_seconds=0.5
    )


def run_of(step: object, execution_id: str, start: float, end: float, outcome: BaseModel, attempt: int = 1):  # type: ignore[no-untyped-def]
    return [
        env(StepScheduled(step=step, execution_id=execution_id, attempt=attempt), start - 0.5),  # type: ignore[arg-type]
        env(StepStarted(step=step, execution_id=execution_id, runner_id="r1"), start),  # type: ignore[arg-type]
        env(outcome, end),
    ]


def test_a_completed_run_reports_each_steps_counts_files_durations_and_usage() -> None:
    events = [
        env(TaskCreated(parameters=PARAMS, output_directory="/d/task_x", steps=list(STEP_ORDER)), 0),
        env(TaskStarted(), 1),
        *run_of(
            DDL,
            "e1",
            2,
            12,
            StepSucceeded(
                step=DDL,
                execution_id="e1",
                summary={
                    "tables_requested": 3,
                    "tables_succeeded": 2,
                    "tables_failed": [{"table": "public.gone", "error": "missing"}],
                    "partial": True,
                    "partial_reason": "1 of 3 tables not documented (missing or unreadable): public.gone",
                },
                llm_usage=[usage("gpt-x", 100, 20, calls=2)],
            ),
        ),
        env(
            OutputRegistered(
                step=DDL,
                execution_id="e1",
                file_name="schema_catalog.json",
                file_type="json",
                relative_path="schema_catalog.json",
                size=42,
                sha256="0" * 64,
                is_primary=True,
            ),
            11,
        ),
        env(
            OutputRegistered(
                step=DDL,
                execution_id="e1",
                file_name="a.ddl",
                file_type="ddl",
                relative_path="a.ddl",
                size=7,
                sha256="1" * 64,
            ),
            11,
        ),
        *run_of(
            QA,
            "e2",
            13,
            20,
            StepSucceeded(
                step=QA,
                execution_id="e2",
                summary={"themes": 2, "theme_names": ["A", "B"], "pairs": 10, "failed_themes": 0},
                llm_usage=[usage("gpt-x", 300, 200, calls=3)],
            ),
        ),
        *run_of(
            SQL,
            "e3",
            21,
            25,
            StepSucceeded(
                step=SQL,
                execution_id="e3",
                summary={
                    "total": 10,
                    "valid_before_repair": 8,
                    "repaired": 1,
                    "invalid_after_repair": 1,
                    "dropped": 1,
                    "llm_repair_calls": 2,
                    "llm_repair_max_calls": 200,
                    "repaired_statements": [
                        {
                            "question": "Q?",
                            "before": "SELECT x",
                            "after": "SELECT y;",
                            "file": "f",
                            "index": 3,
                        }
                    ],
                },
                llm_usage=[usage("gpt-x", 50, 10)],
            ),
        ),
        *run_of(
            LOAD,
            "e4",
            26,
            30,
            StepSucceeded(
                step=LOAD,
                execution_id="e4",
                summary={
                    "items": 12,
                    "inserted": {"ddl": 2, "documentation": 2, "question_sql": 5},
                    "already_present": {"ddl": 0, "documentation": 0, "question_sql": 3},
                    "removed": {"unlinked": {"question_sql": 2}, "deleted": {"question_sql": 1}},
                    "refused_pairs": [],
                },
                llm_usage=[usage("emb-1", 40, 0)],
            ),
        ),
        env(TaskFinished(status="partial_completed", error_message="ddl_generation: 1 of 3 ..."), 31),
    ]
    report = final_report(events)
    assert report["status"] == "partial_completed" and report["duration_seconds"] == 30.0
    assert report["plan"] == [s.value for s in STEP_ORDER]
    ddl = report["steps"]["ddl_generation"]
    assert ddl["status"] == "completed" and ddl["attempts"] == 1 and ddl["duration_seconds"] == 10.0
    assert ddl["tables_ok"] == 2 and ddl["tables_failed"] == 1 and ddl["failed_tables"] == ["public.gone"]
    assert "public.gone" in ddl["partial_reason"]
    qa = report["steps"]["qa_generation"]
    assert (qa["themes"], qa["theme_names"], qa["pairs"]) == (2, ["A", "B"], 10)
    sql = report["steps"]["sql_validation"]
    assert (sql["sql_valid"], sql["sql_invalid"], sql["sql_repaired"], sql["sql_dropped"]) == (8, 1, 1, 1)
    assert (sql["llm_repair_calls"], sql["llm_repair_max_calls"]) == (2, 200)
    assert (
        sql["repaired_statements"][0]["before"] == "SELECT x"
        and sql["repaired_statements"][0]["after"] == "SELECT y;"
    )
    load = report["steps"]["training_load"]
    assert (load["training_inserted"], load["training_already_present"], load["training_removed"]) == (
        9,
        3,
        1,
    )
    assert load["training_unlinked"] == 2 and load["training_inserted_by_kind"]["question_sql"] == 5
    assert report["primary_files"] == [
        {
            "file_name": "schema_catalog.json",
            "file_type": "json",
            "relative_path": "schema_catalog.json",
            "size": 42,
            "step": "ddl_generation",
            "description": None,
        }
    ]
    total = report["llm_usage"]
    assert (total["calls"], total["prompt_tokens"], total["completion_tokens"], total["total_tokens"]) == (
        7,
        490,
        230,
        720,
    )
    assert set(total["by_model"]) == {"gpt-x", "emb-1"} and total["cost"] is None
    assert report["steps"]["qa_generation"]["llm_usage"]["total_tokens"] == 500


def test_a_failed_step_reports_attempts_error_code_and_what_it_spent() -> None:
    failure = StepFailed(
        step=QA,
        execution_id="e2b",
        error="LLM token budget exceeded",
        code="llm_budget_exceeded",
        llm_usage=[usage("gpt-x", 900, 200)],
    )
    events = [
        env(TaskCreated(parameters=PARAMS, output_directory="/d", steps=list(STEP_ORDER)), 0),
        env(TaskStarted(), 1),
        *run_of(DDL, "e1", 2, 3, StepSucceeded(step=DDL, execution_id="e1", summary={"tables_succeeded": 1})),
        *run_of(QA, "e2a", 4, 5, StepFailed(step=QA, execution_id="e2a", error="timeout", retryable=True)),
        *run_of(QA, "e2b", 8, 9, failure, attempt=2),
        # a late outcome of the first attempt changes nothing
        env(StepSucceeded(step=QA, execution_id="e2a", summary={"pairs": 99}), 9.5),
        env(TaskFinished(status="partial_completed", error_message="qa_generation failed"), 10),
    ]
    report = final_report(events)
    qa = report["steps"]["qa_generation"]
    assert qa["status"] == "failed" and qa["attempts"] == 2 and qa["code"] == "llm_budget_exceeded"
    assert "pairs" not in qa and qa["llm_usage"]["total_tokens"] == 1100
    assert report["steps"]["sql_validation"]["status"] == "pending"
    assert report["steps"]["sql_validation"]["attempts"] == 0


def test_a_rerun_starts_a_new_report() -> None:
    events = [
        env(TaskCreated(parameters=PARAMS, output_directory="/d", steps=list(STEP_ORDER)), 0),
        env(TaskStarted(), 1),
        *run_of(DDL, "e1", 2, 3, StepFailed(step=DDL, execution_id="e1", error="boom")),
        env(TaskFinished(status="failed", error_message="boom"), 4),
        env(TaskRerunRequested(steps=[SQL], execution_mode="single"), 10),
        env(TaskStarted(), 11),
        env(StepSkipped(step=SQL, reason="disabled by enable_sql_validation=false"), 12),
        env(TaskFinished(status="completed"), 13),
    ]
    report = final_report(events)
    assert report["plan"] == ["sql_validation"] and report["status"] == "completed"
    assert report["steps"]["sql_validation"] == {
        "status": "skipped",
        "attempts": 0,
        "started_at": None,
        "finished_at": None,
        "duration_seconds": None,
        "llm_usage": report["steps"]["sql_validation"]["llm_usage"],
        "reason": "disabled by enable_sql_validation=false",
    }
    assert list(report["steps"]) == ["sql_validation"]  # the first run's failure is not this run's
    assert report["duration_seconds"] == 2.0 and report["llm_usage"]["calls"] == 0


def test_the_scheduler_counts_the_runs_tokens_for_the_budget() -> None:
    state = None
    for e in [
        env(TaskCreated(parameters=PARAMS, output_directory="/d", steps=list(STEP_ORDER)), 0),
        env(TaskStarted(), 1),
        *run_of(DDL, "e1", 2, 3, StepSucceeded(step=DDL, execution_id="e1", llm_usage=[usage("m", 10, 5)])),
        *run_of(
            QA, "e2", 4, 5, StepFailed(step=QA, execution_id="e2", error="x", llm_usage=[usage("m", 7, 0)])
        ),
    ]:
        state = evolve(state, e)
    assert state is not None and llm_tokens_used(state) == 22


# ---- the meter ------------------------------------------------------------------------------------


def test_tokens_are_read_from_usage_and_anything_else_counts_zero() -> None:
    assert tokens_of({"usage": {"prompt_tokens": 12, "completion_tokens": 3}}) == (12, 3)
    assert tokens_of({"usage": {"prompt_tokens": 12, "total_tokens": 12}}) == (12, 0)  # embeddings
    assert tokens_of({"usage": {"prompt_tokens": "12", "completion_tokens": -1}}) == (0, 0)
    assert tokens_of({"choices": []}) == (0, 0) and tokens_of(["not", "a", "dict"]) == (0, 0)


def test_the_meter_sums_by_model_and_prices_when_asked() -> None:
    meter = UsageMeter(prices=Prices(per_1k_prompt=0.5, per_1k_completion=2.0))
    meter.record("a", 1000, 500, 0.25)
    meter.record("a", 1000, 0, 0.25)
    meter.record("b", 10, 0, 0.0)
    a, b = meter.usage()
    assert (a.model, a.calls, a.prompt_tokens, a.completion_tokens, a.latency_seconds) == (
        "a",
        2,
        2000,
        500,
        0.5,
    )
    assert a.cost == pytest.approx(2.0) and b.cost == pytest.approx(0.005)
    assert UsageMeter().usage() == [] and Prices().cost(10, 10) is None


def test_crossing_the_budget_raises_and_marks_the_meter_and_a_spent_budget_refuses_calls() -> None:
    meter = UsageMeter(budget=100, used_before=60)
    meter.before_call()
    meter.record("m", 30, 10, 0.1)  # exactly at the budget: allowed
    with pytest.raises(LlmBudgetExceeded):
        meter.before_call()  # ... but nothing more may start
    assert meter.exceeded and "max_llm_tokens=100" in meter.exceeded

    meter = UsageMeter(budget=100)
    with pytest.raises(LlmBudgetExceeded, match="has used 120 tokens"):
        meter.record("m", 100, 20, 0.1)
    assert meter.usage()[0].total_tokens == 120  # what was spent is still reported


async def test_the_current_meter_follows_into_tasks_and_threads() -> None:
    async def in_a_task() -> None:
        await asyncio.sleep(0)  # yield to the loop once (not a wait): the meter must survive the switch
        record_call("t", 2, 0, 0.0)

    meter = UsageMeter()
    with metering(meter):
        async with asyncio.TaskGroup() as group:
            group.create_task(asyncio.to_thread(record_call, "t", 1, 1, 0.0))
            group.create_task(in_a_task())
    record_call("t", 100, 100, 0.0)  # outside: nobody records
    assert meter.usage()[0].calls == 2 and meter.total_tokens == 4


# ---- the runner turns a crossed budget into a non-retryable failure -------------------------------


class _SwallowingExecutor:
    """Catches every LLM error per item, as step 1 does per table, and would report success."""

    name = STEP_ORDER[0]

    async def run(self, ctx: object) -> dict[str, object]:
        for _ in range(3):
            try:
                llm_usage.before_call()
                llm_usage.record_call("m", 40, 10, 0.01)
            except LlmBudgetExceeded:
                pass
        return {"tables_succeeded": 3}


def _context(tmp_path: Path, emitted: list[BaseModel]) -> RunnerContext:
    async def emit(payload: BaseModel) -> None:
        emitted.append(payload)

    return RunnerContext(
        emit=emit,
        task_id="task_20240101_000000_abc",
        step=STEP_ORDER[0],
        execution_id="e1",
        attempt=1,
        task_dir=tmp_path,
        parameters=PARAMS.model_copy(update={"max_llm_tokens": 100}),
        secrets=SecretBox(Fernet.generate_key()),
        connections={},
    )


async def test_a_crossed_budget_fails_the_step_even_when_the_executor_swallowed_it(tmp_path: Path) -> None:
    emitted: list[BaseModel] = []
    terminal = await execute_step(
        _SwallowingExecutor(),  # type: ignore[arg-type]
        _context(tmp_path, emitted),
        emitted_sink(emitted),
        runner_id="r",
        heartbeat_interval=60,
        cancelled=lambda: False,
        meter=UsageMeter(budget=100, used_before=30),
    )
    assert isinstance(terminal, StepFailed) and terminal.code == FailureCode.LLM_BUDGET_EXCEEDED
    assert not terminal.retryable and "max_llm_tokens=100" in terminal.error
    # 30 before + 50 = 80 (allowed), + 50 = 130 crosses it; the third call is refused before it starts
    (usage,) = terminal.llm_usage
    assert (usage.calls, usage.total_tokens) == (2, 100)


async def test_a_step_within_budget_reports_its_usage_on_success(tmp_path: Path) -> None:
    emitted: list[BaseModel] = []
    terminal = await execute_step(
        _SwallowingExecutor(),  # type: ignore[arg-type]
        _context(tmp_path, emitted),
        emitted_sink(emitted),
        runner_id="r",
        heartbeat_interval=60,
        cancelled=lambda: False,
        meter=UsageMeter(prices=Prices(per_1k_prompt=1.0)),
    )
    assert isinstance(terminal, StepSucceeded) and terminal.summary == {"tables_succeeded": 3}
    (usage,) = terminal.llm_usage
    assert (usage.model, usage.calls, usage.prompt_tokens, usage.completion_tokens) == ("m", 3, 120, 30)
    assert usage.cost == pytest.approx(0.12)


def emitted_sink(emitted: list[BaseModel]):  # type: ignore[no-untyped-def]
    async def emit(payload: BaseModel) -> None:
        emitted.append(payload)

    return emit

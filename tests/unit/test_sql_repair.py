"""The rules of step 3's SQL repair (pipeline/sql_repair.py): which statements are repaired, in what
order, within which rounds and budget, and what each attempt records."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from services.step_runner.executors.base import StepError
from services.step_runner.llm.base import LLMError
from services.step_runner.pipeline.pair_quality import LISTING_LIMIT, Flag
from services.step_runner.pipeline.sql_gate import Verdict
from services.step_runner.pipeline.sql_repair import (
    BUDGET_SPENT,
    FLAG_NOT_CLEARED,
    NO_REPAIR,
    QUALITY_BUDGET_SPENT,
    FlagRepairer,
    RepairBudget,
    RepairContext,
    fix_order,
    quality_model,
    repair_invalid,
    repair_rounds,
    repairable,
)
from services.step_runner.pipeline.validation_report import PairResult
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.quality_flags import DEFAULT_QUALITY_ACTIONS


class Gate:
    """Valid unless listed: `errors` maps a statement to its error, `rejected` holds refused ones."""

    def __init__(self, errors: dict[str, str] | None = None, rejected: set[str] | None = None) -> None:
        self.errors, self.rejected, self.checked = errors or {}, rejected or set(), []  # type: list[str]

    async def check(self, sql: str) -> Verdict:
        self.checked.append(sql)
        if sql in self.rejected:
            return Verdict(None, "not a read-only query", rejected=True)
        return Verdict(None, self.errors[sql]) if sql in self.errors else Verdict(sql)


class Model:
    """Answers each repair_sql call with the next scripted answer (an exception is raised)."""

    def __init__(self, *answers: Any, name: str = "fake") -> None:
        self.answers, self.name, self.calls = list(answers), name, []  # type: list[tuple[str, str]]

    async def repair_sql(self, sql: str, error: str, ddl: str, tables: list[Any], question: str = "") -> Any:
        self.calls.append((sql, error))
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def broken(sql: str = "SELEC 1", error: str = "syntax error") -> PairResult:
    return PairResult(file="qs.json", index=0, question="q", original_sql=sql, error=error)


def params(**values: Any) -> TaskParameters:
    return TaskParameters(db_connection="postgresql://u@h/db", business_context="shop", **values)


def test_rounds_come_from_the_task_then_the_settings_and_zero_means_off() -> None:
    settings = PipelineSettings(llm_repair_rounds=2)
    assert repair_rounds(params(), settings) == 2
    assert repair_rounds(params(llm_repair_rounds=5), settings) == 5
    assert repair_rounds(params(llm_repair_rounds=0), settings) == 0
    assert repair_rounds(params(enable_llm_repair=False, llm_repair_rounds=5), settings) == 0


def test_only_errors_are_repairable_never_rejections_or_valid_sql() -> None:
    assert repairable(Verdict(None, "column x does not exist"))
    assert not repairable(Verdict(None, "not a read-only query", rejected=True))
    assert not repairable(Verdict("SELECT 1"))


def test_exact_mechanical_fixes_go_first_and_the_offline_model_never_repairs_flags() -> None:
    assert fix_order("listing_without_limit") == ("mechanical", "llm")
    assert fix_order("missing_soft_delete_filter") == ("mechanical", "llm")
    assert fix_order("select_star") == ("llm", "mechanical")
    model = Model()
    assert quality_model(model) is model  # type: ignore[arg-type]
    assert quality_model(Model(name="offline")) is None  # type: ignore[arg-type]
    assert quality_model(None) is None


def test_the_budget_counts_calls_and_refusals() -> None:
    budget = RepairBudget(2)
    assert [budget.take() for _ in range(4)] == [True, True, False, False]
    assert (budget.used, budget.denied) == (2, 2)


async def test_a_failing_candidate_is_repaired_again_with_its_own_error(tmp_path: Path) -> None:
    gate = Gate(errors={"SELECT x": "column x does not exist"})
    model = Model("SELECT x", "SELECT 1")
    result = broken()
    await repair_invalid(gate, model, RepairBudget(10), RepairContext(tmp_path), result, 3)  # type: ignore[arg-type]
    assert model.calls == [("SELEC 1", "syntax error"), ("SELECT x", "column x does not exist")]
    assert [(a.round, a.sql, a.ok, a.error) for a in result.repairs] == [
        (1, "SELECT x", False, "column x does not exist"),
        (2, "SELECT 1", True, None),
    ]
    assert result.final_sql == "SELECT 1" and result.repaired


async def test_rounds_end_at_a_rejected_candidate_or_the_last_round(tmp_path: Path) -> None:
    context = RepairContext(tmp_path)
    result = broken()
    model = Model("DELETE FROM t", "SELECT 1")
    await repair_invalid(Gate(rejected={"DELETE FROM t"}), model, RepairBudget(9), context, result, 3)  # type: ignore[arg-type]
    assert len(model.calls) == 1 and result.final_sql is None
    result = broken()
    gate = Gate(errors={"SELECT a": "e1", "SELECT b": "e2"})
    await repair_invalid(gate, Model("SELECT a", "SELECT b"), RepairBudget(9), context, result, 2)  # type: ignore[arg-type]
    assert [a.round for a in result.repairs] == [1, 2] and result.final_sql is None


async def test_a_spent_budget_an_empty_answer_and_a_model_error_are_recorded(tmp_path: Path) -> None:
    context = RepairContext(tmp_path)
    spent = broken()
    await repair_invalid(Gate(), Model(), RepairBudget(0), context, spent, 3)  # type: ignore[arg-type]
    assert [(a.sql, a.ok, a.error) for a in spent.repairs] == [(None, False, BUDGET_SPENT.format(0))]
    empty = broken()
    await repair_invalid(Gate(), Model("  "), RepairBudget(5), context, empty, 3)  # type: ignore[arg-type]
    assert [a.error for a in empty.repairs] == [NO_REPAIR]
    failed = broken()
    await repair_invalid(Gate(), Model(LLMError("refused")), RepairBudget(5), context, failed, 3)  # type: ignore[arg-type]
    assert [a.error for a in failed.repairs] == ["LLM error: refused"]


async def test_an_unavailable_model_fails_the_step_retryably(tmp_path: Path) -> None:
    model = Model(LLMError("429", retryable=True))
    with pytest.raises(StepError) as caught:
        await repair_invalid(Gate(), model, RepairBudget(5), RepairContext(tmp_path), broken(), 3)  # type: ignore[arg-type]
    assert caught.value.retryable


def listing_flags(question: str, sql: str) -> list[Flag]:
    flags = [] if "LIMIT" in sql else [Flag("listing_without_limit", "no LIMIT")]
    return flags + ([Flag("select_star", "*")] if "*" in sql else [])


def valid(sql: str) -> PairResult:
    return PairResult(file="qs.json", index=0, question="list orders", original_sql=sql, final_sql=sql)


def repairer(tmp_path: Path, model: Model | None, budget: int = 5, **actions: str) -> FlagRepairer:
    return FlagRepairer(
        Gate(),  # type: ignore[arg-type]
        model,  # type: ignore[arg-type]
        RepairBudget(budget),
        RepairContext(tmp_path),
        2,
        {**DEFAULT_QUALITY_ACTIONS, **actions},  # type: ignore[dict-item]
        listing_flags,
    )


async def test_the_mechanical_fix_is_recorded_as_round_zero_and_the_model_is_not_asked(
    tmp_path: Path,
) -> None:
    model = Model()
    r = valid("SELECT id FROM orders")
    fixed = await repairer(tmp_path, model).fix(r, r.original_sql, Flag("listing_without_limit", ""), set())
    assert fixed == f"SELECT id FROM orders LIMIT {LISTING_LIMIT}"
    assert [(a.round, a.ok) for a in r.quality_repairs] == [(0, True)] and model.calls == []


async def test_a_flag_repair_must_clear_the_flag_and_gain_no_drop_flag(tmp_path: Path) -> None:
    flag = Flag("listing_without_limit", "no LIMIT")
    # the model's first answer keeps the flag, its second gains select_star, set to drop
    model = Model("SELECT id FROM orders", "SELECT * FROM orders LIMIT 5")
    r = valid("SELECT id FROM orders")
    llm_only = repairer(tmp_path, model, select_star="drop")
    assert await llm_only._ask_llm(r, r.original_sql, flag, {"listing_without_limit"}) is None
    assert [(a.round, a.ok, a.error) for a in r.quality_repairs] == [
        (1, False, FLAG_NOT_CLEARED),
        (2, False, FLAG_NOT_CLEARED),
    ]
    assert all(sql == "SELECT id FROM orders" for sql, _ in model.calls)  # the same statement each round
    # the same answers with select_star kept: the second one is accepted
    model = Model("SELECT id FROM orders", "SELECT * FROM orders LIMIT 5")
    kept = repairer(tmp_path, model, select_star="keep")
    fixed = await kept._ask_llm(valid(r.original_sql), r.original_sql, flag, {"listing_without_limit"})
    assert fixed == "SELECT * FROM orders LIMIT 5"


async def test_flag_repairs_share_the_run_budget(tmp_path: Path) -> None:
    r = valid("SELECT id FROM orders")
    flag = Flag("select_star", "*")
    fixed = await repairer(tmp_path, Model(), budget=0)._ask_llm(
        r, "SELECT * FROM orders LIMIT 5", flag, set()
    )
    assert fixed is None
    assert [(a.sql, a.error) for a in r.quality_repairs] == [(None, QUALITY_BUDGET_SPENT)]

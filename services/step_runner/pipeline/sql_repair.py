"""Step 3's SQL repair, every rule in one place: which statements may be repaired, in what order, how
many LLM rounds and calls, and what each attempt records.

Two repairs share these rules:
- *A statement the SQL gate refuses* (`repairable`: an error, not a rejection such as a DELETE) goes to
  the LLM with the gate's error, for up to `rounds` rounds; each round's candidate is checked again and,
  when it fails, becomes the next round's statement with its own error (`repair_invalid`).
- *A valid statement with a quality flag whose action is repair* gets the mechanical fix
  (pair_repairs.py) first where that fix is exact (MECHANICAL_FIRST), the LLM first otherwise, with the
  flag as the reason; a candidate is accepted only when it passes the gate again, no longer carries the
  flag and gains no flag whose action is drop (`FlagRepairer`). The offline provider is not asked
  (it only fixes names, offline/repair.py), so for it the mechanical fix is the only one.
Every LLM call takes one unit of the run's budget (DP_LLM_REPAIR_MAX_CALLS, `RepairBudget`), shared by
both. Every attempt is recorded as a RepairAttempt (round 0: the mechanical fix), including the ones the
budget or the model refused, so the report shows each statement before and after.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

from services.step_runner.executors.base import StepError
from services.step_runner.llm.base import LLMError, TextToSQLModel
from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.pair_quality import Flag
from services.step_runner.pipeline.pair_repairs import deterministic_fix
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.sql_gate import SqlGate, Verdict, referenced_names
from services.step_runner.pipeline.task_files import load_catalog, read_mapping
from services.step_runner.pipeline.validation_report import PairResult, RepairAttempt
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.quality_flags import QualityAction, QualityFlag, quality_reason

MAX_REPAIR_TABLES = 15  # tables whose DDL goes into one repair prompt
MECHANICAL_FIRST: frozenset[QualityFlag] = frozenset({"listing_without_limit", "missing_soft_delete_filter"})
OFFLINE = "offline"

BUDGET_SPENT = "not repaired: this run's LLM repair budget (DP_LLM_REPAIR_MAX_CALLS={}) is spent"
QUALITY_BUDGET_SPENT = "the LLM repair budget is spent"
NO_REPAIR = "the LLM gave no repair"
FLAG_NOT_CLEARED = "flag not cleared"


def repair_rounds(params: TaskParameters, settings: PipelineSettings) -> int:
    """LLM rounds per statement for this run; 0 when LLM repair is off (the task's own rounds win)."""
    rounds = params.llm_repair_rounds if params.llm_repair_rounds is not None else settings.llm_repair_rounds
    return rounds if params.enable_llm_repair and rounds > 0 else 0


def repairable(verdict: Verdict) -> bool:
    """A statement the gate refused for an error an LLM may fix; never one that is not a read-only query."""
    return not verdict.valid and not verdict.rejected


def fix_order(code: QualityFlag) -> tuple[str, str]:
    """Which fix a flagged statement tries first: the mechanical one where it is exact."""
    return ("mechanical", "llm") if code in MECHANICAL_FIRST else ("llm", "mechanical")


def quality_model(llm: TextToSQLModel | None) -> TextToSQLModel | None:
    """The model asked to repair quality flags: none for the offline provider, which only fixes names."""
    return llm if llm is not None and getattr(llm, "name", "") != OFFLINE else None


class RepairBudget:
    """LLM repair calls left for this run of the step, shared by every pair."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.denied = 0  # requests refused because the budget was spent

    def take(self) -> bool:
        if self.used >= self.limit:
            self.denied += 1
            return False
        self.used += 1
        return True


class RepairContext:
    """The DDL and catalog entries of the tables a statement mentions, for the LLM's repair prompt."""

    def __init__(self, task_dir: Path) -> None:
        catalog = load_catalog(task_dir)
        self._tables: list[TableInfo] = catalog.tables if catalog else []
        self.schema = SchemaIndex(self._tables)
        mapping = read_mapping(task_dir)
        self._ddl: dict[str, str] = {}
        for table in self._tables:
            stem = mapping.get(f"{table.schema_name}.{table.name}", table.qualified_name.replace(".", "__"))
            path = task_dir / f"{stem}.ddl"
            if "/" not in stem and path.is_file():
                self._ddl[table.qualified_name] = path.read_text(encoding="utf-8")

    def for_sql(self, sql: str) -> tuple[str, list[TableInfo]]:
        names = referenced_names(sql)
        tables = [t for t in self._tables if t.name in names or t.qualified_name in names]
        if not tables:
            tables = self._tables[:MAX_REPAIR_TABLES]
        tables = tables[:MAX_REPAIR_TABLES]
        ddl = "\n".join(self._ddl.get(t.qualified_name, "") for t in tables).strip()
        return ddl, tables


@dataclass(frozen=True)
class Judgement:
    """What a repair's check says of one candidate: `accepted` is the statement to keep (None: not
    accepted); `ok` and `error` are recorded; `stop` ends the rounds; `feed_back` makes the candidate,
    with `error` as the reason, what the next round repairs (otherwise the next round retries the same)."""

    accepted: str | None
    ok: bool
    error: str | None
    stop: bool = False
    feed_back: bool = False


@dataclass(frozen=True)
class Request:
    """One statement to repair: the SQL, why, the schema the prompt shows, and the question it answers."""

    sql: str
    reason: str
    ddl: str
    tables: list[TableInfo]
    question: str


async def ask_llm(
    llm: TextToSQLModel,
    budget: RepairBudget,
    request: Request,
    rounds: int,
    judge: Callable[[str], Awaitable[Judgement]],
    record: list[RepairAttempt],
    spent: str,
) -> str | None:
    """Up to `rounds` LLM rounds on `request`; each attempt is appended to `record` (`spent` when the
    budget refuses one). An unavailable model fails the step (retryable); other model errors end the
    rounds. Returns the accepted statement, or None."""
    sql, reason = request.sql, request.reason
    for round_no in range(1, rounds + 1):
        if not budget.take():
            record.append(RepairAttempt(round_no, None, False, spent))
            return None
        try:
            candidate = await llm.repair_sql(sql, reason, request.ddl, request.tables, request.question)
        except LLMError as exc:
            if exc.retryable:
                raise StepError(f"the LLM is unavailable: {exc}", retryable=True) from None
            record.append(RepairAttempt(round_no, None, False, f"LLM error: {exc}"))
            return None
        if not candidate or not candidate.strip():
            record.append(RepairAttempt(round_no, None, False, NO_REPAIR))
            return None
        judgement = await judge(candidate)
        record.append(RepairAttempt(round_no, candidate, judgement.ok, judgement.error))
        if judgement.accepted is not None:
            return judgement.accepted
        if judgement.stop:
            return None
        if judgement.feed_back:
            sql, reason = candidate, judgement.error or ""
    return None


async def repair_invalid(
    gate: SqlGate,
    llm: TextToSQLModel,
    budget: RepairBudget,
    context: RepairContext,
    result: PairResult,
    rounds: int,
) -> None:
    """Repair a statement the gate refused: on success `result.final_sql` is the repaired statement."""
    ddl, tables = context.for_sql(result.original_sql)

    async def judge(candidate: str) -> Judgement:
        verdict = await gate.check(candidate)
        # a candidate the gate refuses outright (not read-only) ends the rounds
        return Judgement(verdict.statement, verdict.valid, verdict.error, verdict.rejected, feed_back=True)

    request = Request(result.original_sql, result.error or "", ddl, tables, result.question)
    spent = BUDGET_SPENT.format(budget.limit)
    accepted = await ask_llm(llm, budget, request, rounds, judge, result.repairs, spent)
    if accepted is not None:
        result.final_sql = accepted


class FlagRepairer:
    """Removes one quality flag from a valid statement, by the mechanical fix or the LLM (`fix_order`)."""

    def __init__(
        self,
        gate: SqlGate,
        llm: TextToSQLModel | None,
        budget: RepairBudget,
        context: RepairContext,
        rounds: int,
        actions: dict[QualityFlag, QualityAction],
        flags_of: Callable[[str, str], list[Flag]],
    ) -> None:
        self._gate = gate
        self._llm = quality_model(llm)
        self._budget = budget
        self._context = context
        self._rounds = rounds
        self._actions = actions
        self._flags_of = flags_of

    async def accepted(
        self, question: str, candidate: str, code: QualityFlag, before: set[str]
    ) -> str | None:
        """The candidate as the gate returns it, when it passes, lost `code`, and gained no drop flag."""
        verdict = await self._gate.check(candidate)
        if verdict.statement is None:
            return None
        after = {f.code for f in self._flags_of(question, verdict.statement)}
        gained_drop = any(self._actions[c] == "drop" for c in after - before)  # type: ignore[index]
        return verdict.statement if code not in after and not gained_drop else None

    async def fix(self, r: PairResult, sql: str, flag: Flag, before: set[str]) -> str | None:
        """`sql` without `flag` (attempts recorded in `r.quality_repairs`), or None."""
        for how in fix_order(flag.code):
            if how == "mechanical":
                candidate = deterministic_fix(sql, flag.code, self._context.schema)
                if candidate is None:
                    continue
                accepted = await self.accepted(r.question, candidate, flag.code, before)
                r.quality_repairs.append(
                    RepairAttempt(0, candidate, accepted is not None, None if accepted else FLAG_NOT_CLEARED)
                )
                if accepted is not None:
                    return accepted
            elif self._llm is not None:
                accepted = await self._ask_llm(r, sql, flag, before)
                if accepted is not None:
                    return accepted
        return None

    async def _ask_llm(self, r: PairResult, sql: str, flag: Flag, before: set[str]) -> str | None:
        assert self._llm is not None
        ddl, tables = self._context.for_sql(sql)

        async def judge(candidate: str) -> Judgement:
            accepted = await self.accepted(r.question, candidate, flag.code, before)
            return Judgement(accepted, accepted is not None, None if accepted else FLAG_NOT_CLEARED)

        request = Request(sql, quality_reason(flag.code, flag.detail), ddl, tables, r.question)
        return await ask_llm(
            self._llm, self._budget, request, self._rounds, judge, r.quality_repairs, QUALITY_BUDGET_SPENT
        )

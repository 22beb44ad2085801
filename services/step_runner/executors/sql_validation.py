"""Step 3: every question/SQL pair must hold one read-only query that PostgreSQL can plan.

Each statement goes through the SQL gate (pipeline/sql_gate.py: parse tree, function allow-list, EXPLAIN
in a READ ONLY transaction with a statement timeout, plan cost/rows limits); its own error is its
verdict, never a step failure. Failing SQL may be repaired by the LLM, within DP_LLM_REPAIR_MAX_CALLS
calls per run, and is checked again (the rules of repair: pipeline/sql_repair.py). Then the quality pass (executors/sql_quality.py) flags every valid
pair (bookkeeping subjects, missing soft-delete filters, cartesian reads, listings without LIMIT,
SELECT *, duplicates, raw identifiers in the question) and drops, repairs or keeps it per
DP_QUALITY_ACTIONS. With modify_original_file the pair files are rewritten (repaired SQL in, unusable and
dropped pairs out), the very first original kept as `<file>.backup`; step 4 loads the rewritten files.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from pathlib import Path
from typing import Any, ClassVar

from services.step_runner.executors.base import VALIDATION_BELOW_THRESHOLD, StepContext, StepError
from services.step_runner.executors.sql_quality import QualityPass, quality_summary
from services.step_runner.llm.base import LLMFactory, TextToSQLModel
from services.step_runner.pipeline.files import atomic_write_json, atomic_write_text
from services.step_runner.pipeline.pair_files import (
    BACKUP_SUFFIX,
    PairFileError,
    load_pairs,
    pair_files,
    render_pairs,
)
from services.step_runner.pipeline.sql_gate import PlanLimits, SqlGate
from services.step_runner.pipeline.sql_repair import (
    RepairBudget,
    RepairContext,
    repair_invalid,
    repair_rounds,
    repairable,
)
from services.step_runner.pipeline.validation_report import (
    PairResult,
    render_summary,
    repaired_statements,
    report_document,
    totals,
)
from shared.business_db import BusinessDbError, create_pool
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName


def plan_limits(settings: PipelineSettings) -> PlanLimits:
    return PlanLimits(max_cost=settings.sql_max_plan_cost, max_rows=settings.sql_max_plan_rows)


class SqlValidationExecutor:
    name: ClassVar[StepName] = StepName.SQL_VALIDATION

    def __init__(self, settings: PipelineSettings, llm_factory: LLMFactory) -> None:
        self._settings = settings
        self._llm_factory = llm_factory

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        params = ctx.parameters
        if not params.enable_sql_validation:
            await ctx.log("INFO", "SQL validation is disabled for this task")
            return {"skipped": True}
        files = pair_files(ctx.task_dir)
        if not files:
            raise StepError("no qs_*_pair.json in the task directory (run qa_generation first)")
        pairs_by_file: dict[Path, list[dict[str, Any]]] = {}
        try:
            for path in files:
                pairs_by_file[path] = load_pairs(path)
        except PairFileError as exc:
            raise StepError(str(exc)) from None
        results = [
            PairResult(file=path.name, index=i, question=p["question"], original_sql=p["sql"])
            for path, pairs in pairs_by_file.items()
            for i, p in enumerate(pairs)
        ]
        if not results:
            raise StepError("the pair files hold no question/SQL pairs")
        rounds = repair_rounds(params, self._settings)
        repair = rounds > 0
        await ctx.log("INFO", f"validating {len(results)} SQL statements from {len(files)} files")

        try:
            pool = await create_pool(
                ctx.business_db_url(),
                max_size=self._settings.sql_validation_concurrency,
                statement_timeout_ms=self._settings.statement_timeout_ms,
                policy=ctx.business_db_policy,
            )
        except BusinessDbError as exc:
            raise StepError(str(exc), retryable=exc.retryable) from None
        llm = self._llm_factory() if repair else None
        budget = RepairBudget(self._settings.llm_repair_max_calls)
        try:
            gate = SqlGate(pool, plan_limits(self._settings))
            await self._validate_all(ctx, gate, llm, budget, results, rounds)
            context = RepairContext(ctx.task_dir)
            quality = QualityPass(self._settings, context.schema, gate, llm, budget, context, rounds)
            await quality.run(results)
        finally:
            if llm is not None:
                await llm.aclose()
            await pool.close()
        if budget.denied:
            await ctx.log(
                "WARNING",
                f"the LLM repair budget of {budget.limit} calls is spent; {budget.denied} failing pairs "
                "were not repaired (DP_LLM_REPAIR_MAX_CALLS)",
            )
        return await self._finish(ctx, pairs_by_file, results, repair, rounds, budget)

    async def _validate_all(
        self,
        ctx: StepContext,
        gate: SqlGate,
        llm: TextToSQLModel | None,
        budget: RepairBudget,
        results: list[PairResult],
        rounds: int,
    ) -> None:
        repair_context = RepairContext(ctx.task_dir) if llm is not None else None
        semaphore = asyncio.Semaphore(self._settings.sql_validation_concurrency)
        done = 0
        step = max(1, len(results) // 50)

        async def one(result: PairResult) -> None:
            nonlocal done
            async with semaphore:
                verdict = await gate.check(result.original_sql)
                result.valid_before = verdict.valid
                result.final_sql, result.error, result.rejected = (
                    verdict.statement,
                    verdict.error,
                    verdict.rejected,
                )
                if repairable(verdict) and llm is not None and repair_context:
                    await repair_invalid(gate, llm, budget, repair_context, result, rounds)
            done += 1
            if done % step == 0 or done == len(results):
                await ctx.progress(100.0 * done / len(results), f"{done}/{len(results)} statements checked")

        try:
            async with asyncio.TaskGroup() as group:
                for result in results:
                    group.create_task(one(result))
        except* StepError as errors:
            raise errors.exceptions[0] from None

    async def _finish(
        self,
        ctx: StepContext,
        pairs_by_file: dict[Path, list[dict[str, Any]]],
        results: list[PairResult],
        repair: bool,
        rounds: int,
        budget: RepairBudget,
    ) -> dict[str, Any]:
        t = totals(results)
        below = t.success_rate_after < self._settings.validation_success_threshold
        rewritten: list[str] = []
        applied = ctx.parameters.modify_original_file and not below
        if applied:
            rewritten = await self._rewrite_files(ctx, pairs_by_file, results)
        quality = quality_summary(results, self._settings, applied)

        now = dt.datetime.now(dt.UTC)
        summary: dict[str, Any] = {
            "finished_at": now.isoformat(timespec="seconds"),
            "files": [p.name for p in pairs_by_file],
            "total": t.total,
            "valid_before_repair": t.valid_before,
            "repaired": t.repaired,
            "invalid_after_repair": t.invalid_after,
            "rejected_not_read_only": sum(r.rejected for r in results),
            "success_rate_before": round(t.success_rate_before, 4),
            "success_rate_after": round(t.success_rate_after, 4),
            "llm_repair": repair,
            "repair_rounds": rounds,
            "llm_repair_calls": budget.used,
            "llm_repair_max_calls": budget.limit,
            "files_rewritten": rewritten,
            "dropped": t.invalid_after if rewritten else 0,
            "threshold": self._settings.validation_success_threshold,
            **repaired_statements(results),
            "quality": quality,
        }
        for old in [
            *ctx.task_dir.glob("sql_validation_*_summary.log"),
            *ctx.task_dir.glob("sql_validation_*_report.json"),
        ]:
            old.unlink(missing_ok=True)
        stamp = now.strftime("%Y%m%d_%H%M%S")
        summary_name, report_name = (
            f"sql_validation_{stamp}_summary.log",
            f"sql_validation_{stamp}_report.json",
        )
        await ctx.run_blocking(
            atomic_write_text, ctx.task_dir / summary_name, render_summary(results, summary)
        )
        await ctx.run_blocking(
            atomic_write_json, ctx.task_dir / report_name, report_document(results, summary)
        )
        await ctx.output(summary_name, file_type="log", is_primary=True, description="SQL validation summary")
        await ctx.output(report_name, file_type="json", description="SQL validation report")
        summary["summary_file"], summary["report_file"] = summary_name, report_name

        message = (
            f"{t.valid_before}/{t.total} valid before repair ({t.success_rate_before:.1%}), "
            f"{t.repaired} repaired, {t.invalid_after} still invalid ({t.success_rate_after:.1%} after repair)"
        )
        if below:
            await ctx.log("ERROR", message)
            raise StepError(
                f"only {t.success_rate_after:.1%} of the SQL is valid after repair, below the threshold of "
                f"{self._settings.validation_success_threshold:.0%}; pair files left unchanged, see {summary_name}",
                code=VALIDATION_BELOW_THRESHOLD,
            )
        await ctx.log("WARNING" if t.invalid_after else "INFO", message)
        flagged = {code: n for code, n in quality["flags"].items() if n}
        await ctx.log(
            "INFO",
            f"quality: {quality['pairs_flagged']} of {quality['checked']} valid pairs flagged "
            f"({', '.join(f'{c} {n}' for c, n in flagged.items()) or 'none'}); {quality['dropped']} dropped, "
            f"{quality['repaired']} repaired, {quality['kept']} kept with flags"
            + ("" if applied else " (reported only: pair files unchanged)"),
        )
        return summary

    async def _rewrite_files(
        self, ctx: StepContext, pairs_by_file: dict[Path, list[dict[str, Any]]], results: list[PairResult]
    ) -> list[str]:
        by_file: dict[str, list[PairResult]] = {}
        for result in results:
            by_file.setdefault(result.file, []).append(result)
        rewritten: list[str] = []
        for path, pairs in pairs_by_file.items():
            file_results = by_file.get(path.name, [])
            if all(r.kept and not r.changed for r in file_results):
                continue
            backup = path.with_name(path.name + BACKUP_SUFFIX)
            if not backup.exists():
                # The first original is what a user may want back; later runs only see repaired files.
                await ctx.run_blocking(atomic_write_text, backup, path.read_text(encoding="utf-8"))
            kept = [
                {**pair, "sql": f"{result.final_sql};"} if result.changed else pair
                for pair, result in zip(pairs, file_results, strict=True)
                if result.kept
            ]
            await ctx.run_blocking(atomic_write_text, path, render_pairs(kept))
            await ctx.output(
                path.name, file_type="json", is_primary=True, description="validated question/SQL pairs"
            )
            await ctx.output(backup.name, file_type="backup", description=f"original of {path.name}")
            rewritten.append(path.name)
        return rewritten

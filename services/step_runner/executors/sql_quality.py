"""Step 3's quality pass: after the SQL gate, every valid pair is judged by pipeline/pair_quality.py and
dropped, repaired or kept per flag (DP_QUALITY_ACTIONS), whatever the provider.

How a flag is repaired (mechanical fix or LLM, rounds, budget, when a repair counts) is in
pipeline/sql_repair.py. A pair still flagged after repair is dropped or kept by DP_QUALITY_UNREPAIRED.
"""

from __future__ import annotations

import asyncio
from typing import Any

from services.step_runner.executors.base import StepError
from services.step_runner.llm.base import TextToSQLModel
from services.step_runner.pipeline.pair_quality import Flag, assess
from services.step_runner.pipeline.question_duplicates import find_duplicates
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.sql_gate import SqlGate
from services.step_runner.pipeline.sql_repair import FlagRepairer, RepairBudget, RepairContext
from services.step_runner.pipeline.validation_report import PairResult
from shared.pipeline_settings import PipelineSettings
from shared.quality_flags import QUALITY_FLAGS

MAX_LISTED_DROPS = 200  # the list travels in an event and sits in the task's result


class QualityPass:
    def __init__(
        self,
        settings: PipelineSettings,
        schema: SchemaIndex,
        gate: SqlGate,
        llm: TextToSQLModel | None,
        budget: RepairBudget,
        repair_context: RepairContext,
        rounds: int,
    ) -> None:
        self._actions = settings.quality_actions
        self._unrepaired = settings.quality_unrepaired
        self._concurrency = settings.sql_validation_concurrency
        self._schema = schema
        self._repairer = FlagRepairer(gate, llm, budget, repair_context, rounds, self._actions, self._flags)

    def _flags(self, question: str, sql: str) -> list[Flag]:
        return assess(question, sql, self._schema)

    async def run(self, results: list[PairResult]) -> None:
        """Sets each valid pair's flags and outcome; a repaired pair's `final_sql` is the repaired one."""
        valid = [r for r in results if r.final_sql is not None]
        found = {id(r): self._flags(r.question, r.final_sql or "") for r in valid}
        semaphore = asyncio.Semaphore(self._concurrency)

        async def one(r: PairResult) -> None:
            flags = found[id(r)]
            if not flags:
                return
            r.flags = [{"code": f.code, "detail": f.detail, "action": self._actions[f.code]} for f in flags]
            actions = {self._actions[f.code] for f in flags}
            if "drop" in actions:
                r.quality = "dropped"
            elif "repair" in actions:
                async with semaphore:
                    await self._repair(r, [f for f in flags if self._actions[f.code] == "repair"])
            else:
                r.quality = "kept"

        try:
            async with asyncio.TaskGroup() as group:
                for r in valid:
                    group.create_task(one(r))
        except* StepError as errors:
            raise errors.exceptions[0] from None
        self._duplicates([r for r in valid if r.quality != "dropped"])

    def _duplicates(self, kept: list[PairResult]) -> None:
        """Duplicates among the pairs that survived their own flags: the first of them stays. No repair
        of the SQL makes a repeated question new, so `repair` here means what DP_QUALITY_UNREPAIRED says."""
        action = self._actions["duplicate_question"]
        for i, j in find_duplicates([r.question for r in kept]).items():
            r, first = kept[i], kept[j]
            detail = f"repeats [{first.file} #{first.index}]: {first.question[:80]}"
            r.flags.append({"code": "duplicate_question", "detail": detail, "action": action})
            if action == "drop" or (action == "repair" and self._unrepaired == "drop"):
                r.quality = "dropped"
            elif r.quality is None:
                r.quality = "kept"

    async def _repair(self, r: PairResult, flags: list[Flag]) -> None:
        original = r.final_sql or ""
        sql = original
        for flag in flags:
            current = {f.code: f for f in self._flags(r.question, sql)}
            if flag.code not in current:
                continue  # an earlier fix took this one away too
            fixed = await self._repairer.fix(r, sql, current[flag.code], set(current))
            if fixed is not None:
                sql = fixed
        left = [f for f in self._flags(r.question, sql) if self._actions[f.code] != "keep"]
        if sql != original:
            r.sql_before_quality, r.final_sql = original, sql
        if not left:
            r.quality = "repaired"
        else:
            r.quality = "dropped" if self._unrepaired == "drop" else "kept"


def quality_summary(
    results: list[PairResult], settings: PipelineSettings, files_changed: bool
) -> dict[str, Any]:
    """The quality section of step 3's summary (and so of the task's result and final report)."""
    counts = {code: 0 for code in QUALITY_FLAGS}
    for r in results:
        for f in r.flags:
            counts[f["code"]] += 1  # type: ignore[index]
    dropped = [r for r in results if r.quality == "dropped"]
    listed = [
        {"file": r.file, "index": r.index, "question": r.question, "flags": [f["code"] for f in r.flags]}
        for r in dropped[:MAX_LISTED_DROPS]
    ]
    section: dict[str, Any] = {
        "actions": dict(settings.quality_actions),
        "unrepaired": settings.quality_unrepaired,
        "checked": sum(r.final_sql is not None for r in results),
        "pairs_flagged": sum(bool(r.flags) for r in results),
        "flags": counts,
        "dropped": len(dropped),
        "repaired": sum(r.quality == "repaired" for r in results),
        "kept": sum(r.quality == "kept" for r in results),
        "dropped_pairs": listed,
        "dropped_pairs_truncated": len(dropped) > len(listed),
        "applied": files_changed,
    }
    if not files_changed and (section["dropped"] or section["repaired"]):
        section["note"] = (
            "the pair files were not rewritten (modify_original_file is off, or too few pairs are valid): "
            "drops and repairs are reported only"
        )
    return section

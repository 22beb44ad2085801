"""Step executors for platform tests: their behaviour is scripted by the task's business_context.

Directives (space separated) in business_context:
  fail:<step>            the step fails (not retryable)
  transient:<step>       the step's first attempt fails retryably, later attempts succeed
  sleep:<step>=<secs>    the step works that long (async, heartbeats keep flowing)
  block:<step>=<secs>    the first attempt blocks the event loop that long (no heartbeats: a zombie)
  quiet:<step>=<secs>    the step works that long publishing nothing but heartbeats (a long LLM call)
  partial:<step>         the step succeeds with summary partial=true
  missing:<step>=<n>     the step succeeds in part: n of n+1 tables are reported in tables_failed (as the
                         real step 1 does), so the step and the task are partial
  failrun:<step>=<n>     the step's n-th run in this task (default: the first) fails, not retryably; its
                         other runs succeed (runs are counted in a file in the task directory)
  logs:<step>=<n>        the step logs n more lines, their levels cycling DEBUG, INFO, WARNING, ERROR, CRITICAL
  flags:<step>=<n>       the step reports a quality pass as step 3 does: n pairs kept with `summed_rate`
  llm:<step>=<n>         the step makes one LLM call of n prompt and n/2 completion tokens ("scripted-model"),
                         metered like a provider's call (so max_llm_tokens holds)
Every step writes a file, registers it, logs a few lines (one of them tries to log the connection URL
with its password, which must arrive masked) and reports progress.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

from services.step_runner.executors.base import StepContext, StepError, StepRegistry
from shared import llm_usage
from shared.settings import RunnerSettings
from shared.steps import STEP_ORDER, StepName


def _directives(ctx: StepContext) -> dict[str, str]:
    found: dict[str, str] = {}
    for word in ctx.parameters.business_context.split():
        kind, _, rest = word.partition(":")
        step, _, value = rest.partition("=")
        if step == ctx.step.value:
            found[kind] = value or "1"
    return found


class ScriptedExecutor:
    name: ClassVar[StepName]

    def __init__(self, name: StepName) -> None:
        self.name = name  # type: ignore[misc]

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        d = _directives(ctx)
        await ctx.log("INFO", f"{ctx.step.value} starting (attempt {ctx.attempt})")
        await ctx.log("DEBUG", f"connecting to {ctx.business_db_url()}")
        if "block" in d and ctx.attempt == 1:
            time.sleep(float(d["block"]))  # noqa: ASYNC251 - deliberately stalls the event loop
        if "quiet" in d:
            await asyncio.sleep(float(d["quiet"]))  # the scripted step's quiet working time
        if "sleep" in d:
            total = float(d["sleep"])
            steps = max(int(total / 0.25), 1)
            for i in range(steps):
                await asyncio.sleep(total / steps)  # the scripted step's working time (`sleep:<step>=s`)
                await ctx.progress(100 * (i + 1) / steps, f"working {i + 1}/{steps}")
        for i in range(int(d.get("logs", 0))):
            level = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")[i % 5]
            await ctx.log(level, f"{ctx.step.value} scripted line {i} ({level.lower()})")
        if "llm" in d:
            llm_usage.before_call()
            llm_usage.record_call("scripted-model", int(d["llm"]), int(d["llm"]) // 2, 0.01)
        if "transient" in d and ctx.attempt == 1:
            raise StepError("temporary outage (scripted)", retryable=True)
        if "fail" in d:
            raise StepError(f"scripted failure of {ctx.step.value}")
        if "failrun" in d:
            counter = ctx.task_dir / f".runs_{ctx.step.value}"
            runs = int(counter.read_text(encoding="utf-8")) + 1 if counter.exists() else 1
            counter.write_text(str(runs), encoding="utf-8")
            if runs == int(d["failrun"]):
                raise StepError(f"scripted failure of run {runs} of {ctx.step.value}")
        if ctx.step is StepName.DDL_GENERATION and ctx.parameters.table_list_file:
            # As the real step 1: the task's table-list file must be in its directory when it runs.
            listed = ctx.task_dir / ctx.parameters.table_list_file
            if not listed.is_file():
                raise StepError(
                    f"table list file {ctx.parameters.table_list_file!r} is not in the task directory"
                )
            tables = [t for t in listed.read_text(encoding="utf-8").splitlines() if t.strip()]
            await ctx.log("INFO", f"table list {listed.name}: {len(tables)} tables ({', '.join(tables)})")
        out = ctx.task_dir / f"{ctx.step.value}.txt"
        out.write_text(f"{ctx.step.value} output for {ctx.task_id}\n", encoding="utf-8")
        await ctx.output(
            out.name, is_primary=ctx.step is StepName.QA_GENERATION, description="scripted output"
        )
        await ctx.progress(100)
        await ctx.log("INFO", f"{ctx.step.value} done")
        if "missing" in d:
            failed = [
                {"table": f"public.missing_{i}", "error": "table not found"} for i in range(int(d["missing"]))
            ]
            return {
                "file": out.name,
                "partial": True,
                "partial_reason": f"{len(failed)} of {len(failed) + 1} tables not documented",
                "tables_requested": len(failed) + 1,
                "tables_succeeded": 1,
                "tables_failed": failed,
            }
        summary: dict[str, Any] = {"file": out.name, "partial": "partial" in d}
        if "flags" in d:
            kept = int(d["flags"])
            summary["quality"] = {
                "flags": {"summed_rate": kept, "duplicate_question": 0},
                "actions": {"summed_rate": "keep", "duplicate_question": "drop"},
                "dropped": 0,
                "repaired": 0,
                "kept": kept,
                "applied": True,
            }
        return summary


def registry(settings: RunnerSettings) -> StepRegistry:
    return {step: ScriptedExecutor(step) for step in STEP_ORDER}

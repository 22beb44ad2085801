"""The final report of a task's run (the seed's `_generate_final_report`), as a pure fold over its events.

It is what a finished task's `result` holds: per step its status, attempts, times and duration, the
counts that matter (tables ok/failed, themes and pairs, SQL valid/invalid/repaired/dropped with each
repaired statement before and after, training rows inserted/already present/removed) and its LLM usage;
then the primary files, the run's total duration and LLM usage. The collector's projection builds it
when it applies `task_finished`, from the task's events up to that one, so a rebuild from the store
gives the same report; `dpctl workflow run` folds the same events in memory. Only the latest run counts
(a re-run starts a new report); output files accumulate, as they do in the task directory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from shared.llm_usage import LlmUsage, summarize
from shared.messages import EventEnvelope

REPORT_VERSION = 1

# The event types the report reads (the collector loads only these from the store).
REPORT_EVENT_TYPES: tuple[str, ...] = (
    "task_created",
    "task_started",
    "task_rerun_requested",
    "step_scheduled",
    "step_skipped",
    "step_started",
    "step_succeeded",
    "step_failed",
    "step_cancelled",
    "output_registered",
    "task_finished",
    "review_requested",
    "review_completed",
    "review_abandoned",
)


@dataclass
class _Step:
    status: str = "pending"
    executions: int = 0
    attempt: int = 0
    execution_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    code: str | None = None
    reason: str | None = None  # why it was skipped
    summary: dict[str, Any] = field(default_factory=dict)
    usage: list[LlmUsage] = field(default_factory=list)


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return round(max(0.0, (end - start).total_seconds()), 3) if start and end else None


def _iso(at: datetime | None) -> str | None:
    return at.isoformat() if at else None


def _int(summary: dict[str, Any], key: str) -> int | None:
    value = summary.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _total(value: Any) -> int | None:
    """A count, or the sum of a by-kind breakdown (step 4 counts per kind: ddl, documentation, pairs)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, dict) and all(isinstance(v, int) for v in value.values()):
        return sum(value.values())
    return None


def _dict(summary: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = summary.get(key)
    return value if isinstance(value, dict) else None


def _names(items: Any, key: str) -> list[str]:
    if not isinstance(items, list):
        return []
    return [str(i.get(key)) if isinstance(i, dict) else str(i) for i in items]


def _quality(section: Any) -> dict[str, Any] | None:
    """Step 3's quality pass (issue #13): per flag its count and action, the pairs dropped, repaired and
    kept with flags, and the dropped pairs (file, index, question, flags) as step 3 listed them."""
    if not isinstance(section, dict):
        return None
    flags: dict[str, Any] = section["flags"] if isinstance(section.get("flags"), dict) else {}
    actions: dict[str, Any] = section["actions"] if isinstance(section.get("actions"), dict) else {}
    return {
        "flags": {code: {"count": flags.get(code, 0), "action": actions.get(code)} for code in actions},
        "dropped": _int(section, "dropped"),
        "repaired": _int(section, "repaired"),
        "kept": _int(section, "kept"),
        "applied": bool(section.get("applied")),
        "dropped_pairs": section.get("dropped_pairs")
        if isinstance(section.get("dropped_pairs"), list)
        else [],
    }


def step_counts(step: str, summary: dict[str, Any]) -> dict[str, Any]:
    """The counts a user reads first, from what the step's executor returned (absent keys are left out)."""
    if not summary or summary.get("skipped") is True:
        return {}
    s = summary
    counts: dict[str, Any]
    match step:
        case "ddl_generation":
            failed = _names(s["tables_failed"], "table") if "tables_failed" in s else None
            counts = {
                "tables_requested": _int(s, "tables_requested"),
                "tables_ok": _int(s, "tables_succeeded"),
                "tables_failed": len(failed) if failed is not None else None,
                "failed_tables": failed,
                "descriptions_filled": _int(s, "descriptions_filled"),
                "table_fingerprints": _dict(s, "fingerprints"),
                # an incremental run: tables {unchanged, changed, new, dropped}, their names, tokens saved
                "incremental": _dict(s, "incremental"),
            }
        case "qa_generation":
            counts = {
                "themes": _int(s, "themes"),
                "theme_names": s.get("theme_names") if isinstance(s.get("theme_names"), list) else None,
                "failed_themes": _int(s, "failed_themes"),
                "pairs": _int(s, "pairs"),
                "incremental": _dict(s, "incremental"),
            }
        case "sql_validation":
            counts = {
                "sql_total": _int(s, "total"),
                "sql_valid": _int(s, "valid_before_repair"),
                "sql_invalid": _int(s, "invalid_after_repair"),
                "sql_repaired": _int(s, "repaired"),
                "sql_dropped": _int(s, "dropped"),
                "sql_rejected_not_read_only": _int(s, "rejected_not_read_only"),
                "success_rate_after": s.get("success_rate_after"),
                "repaired_statements": s.get("repaired_statements"),
                # DP_LLM_REPAIR_MAX_CALLS (the repair cap per run of step 3) beside what was used of it
                "llm_repair_calls": _int(s, "llm_repair_calls"),
                "llm_repair_max_calls": _int(s, "llm_repair_max_calls"),
                "quality": _quality(s.get("quality")),
            }
        case "training_load":
            raw_removed = s.get("removed")
            removed: dict[str, Any] = raw_removed if isinstance(raw_removed, dict) else {}
            counts = {
                "training_items": _int(s, "items"),
                "training_inserted": _total(s.get("inserted")),
                "training_already_present": _total(s.get("already_present")),
                "training_removed": _total(removed.get("deleted", s.get("removed"))),
                "training_unlinked": _total(removed.get("unlinked")),
                "training_inserted_by_kind": s.get("inserted")
                if isinstance(s.get("inserted"), dict)
                else None,
                "pairs_refused": len(s["refused_pairs"])
                if isinstance(s.get("refused_pairs"), list)
                else None,
            }
        case _:
            counts = {}
    if isinstance(s.get("partial_reason"), str):
        counts["partial_reason"] = s["partial_reason"]
    return {k: v for k, v in counts.items() if v is not None}


class _Fold:
    def __init__(self) -> None:
        self.plan: list[str] = []
        self.steps: dict[str, _Step] = {}
        self.not_in_plan: dict[str, str] = {}
        self.outputs: dict[str, dict[str, Any]] = {}
        self.started_at: datetime | None = None
        self.finished_at: datetime | None = None
        self.status: str | None = None
        self.error: str | None = None
        self.review: dict[str, Any] | None = None  # review before load: asked, then completed or abandoned

    def _new_run(self, plan: list[str], skipped: dict[str, str]) -> None:
        self.plan = plan
        self.steps = {s: _Step() for s in plan}
        self.not_in_plan = skipped
        self.started_at = self.finished_at = None
        self.status = self.error = self.review = None

    def _current(self, step: str, execution_id: str | None) -> _Step | None:
        run = self.steps.get(step)
        if run is None or (execution_id and run.execution_id and execution_id != run.execution_id):
            return None
        return run

    def apply(self, env: EventEnvelope) -> None:
        e: Any = env.payload
        at = env.occurred_at
        match e.type:
            case "task_created" | "task_rerun_requested":
                skipped = {
                    str(getattr(k, "value", k)): v for k, v in (getattr(e, "skipped", None) or {}).items()
                }
                self._new_run([s.value for s in e.steps], skipped)
            case "task_started":
                self.started_at = at
            case "step_scheduled":
                run = self.steps.setdefault(e.step.value, _Step())
                if run.execution_id != e.execution_id:
                    run.executions += 1
                run.status, run.attempt, run.execution_id = "scheduled", e.attempt, e.execution_id
            case "step_skipped":
                run = self.steps.setdefault(e.step.value, _Step())
                run.status, run.reason = "skipped", e.reason
            case "step_started":
                if current := self._current(e.step.value, e.execution_id):
                    current.status, current.started_at, current.finished_at = "running", at, None
            case "step_succeeded" | "step_failed" | "step_cancelled":
                if done := self._current(e.step.value, e.execution_id):
                    done.finished_at = at
                    done.usage.extend(getattr(e, "llm_usage", []))
                    if e.type == "step_succeeded":
                        done.status, done.summary, done.error, done.code = (
                            "completed",
                            dict(e.summary),
                            None,
                            None,
                        )
                    elif e.type == "step_failed":
                        done.status, done.error, done.code = "failed", e.error, e.code
                    else:
                        done.status, done.error = "cancelled", e.reason
            case "output_registered":
                self.outputs[e.relative_path] = {
                    "file_name": e.file_name,
                    "file_type": e.file_type,
                    "relative_path": e.relative_path,
                    "size": e.size,
                    "step": e.step.value if e.step else None,
                    "is_primary": e.is_primary,
                    "description": e.description,
                }
            case "task_finished":
                self.status, self.error, self.finished_at = e.status, e.error_message, at
            case "review_requested":
                self.review = {"status": "awaiting", "requested_at": _iso(at)}
            case "review_completed" | "review_abandoned":
                decided = {"status": e.type.removeprefix("review_"), "decided_at": _iso(at)}
                self.review = {**(self.review or {}), **e.model_dump(exclude={"type"}), **decided}

    def report(self) -> dict[str, Any]:
        steps: dict[str, Any] = {}
        for name in [*self.plan, *[s for s in self.steps if s not in self.plan]]:
            run = self.steps[name]
            entry: dict[str, Any] = {
                "status": run.status,
                "attempts": run.executions,
                "started_at": _iso(run.started_at),
                "finished_at": _iso(run.finished_at),
                "duration_seconds": _seconds(run.started_at, run.finished_at),
                **step_counts(name, run.summary),
                "llm_usage": summarize(run.usage),
            }
            if run.error:
                entry["error"] = run.error
            if run.code:
                entry["code"] = run.code
            if run.reason:
                entry["reason"] = run.reason
            steps[name] = entry
        for name, reason in self.not_in_plan.items():
            steps.setdefault(name, {"status": "skipped", "reason": reason, "attempts": 0})
        return {
            "report_version": REPORT_VERSION,
            "status": self.status,
            "error_message": self.error,
            "started_at": _iso(self.started_at),
            "finished_at": _iso(self.finished_at),
            "duration_seconds": _seconds(self.started_at, self.finished_at),
            "plan": self.plan,
            "steps": steps,
            "primary_files": [
                {k: v for k, v in o.items() if k != "is_primary"}
                for o in self.outputs.values()
                if o["is_primary"]
            ],
            "files_registered": len(self.outputs),
            "llm_usage": summarize(u for run in self.steps.values() for u in run.usage),
            # An incremental run's tables {unchanged, changed, new, dropped} and the LLM tokens saved.
            **({"incremental": steps["ddl_generation"]["incremental"]} if _incremental(steps) else {}),
            **({"review": self.review} if self.review else {}),  # who approved how many pairs
        }


def _incremental(steps: dict[str, Any]) -> bool:
    return isinstance(steps.get("ddl_generation", {}).get("incremental"), dict)


def final_report(events: Iterable[EventEnvelope]) -> dict[str, Any]:
    """The report of the task's latest run, from its events in store order (any types; others are ignored)."""
    fold = _Fold()
    for env in events:
        fold.apply(env)
    return fold.report()


def _usage_text(usage: dict[str, Any]) -> str:
    if not usage or not usage.get("calls"):
        return "no LLM calls"
    text = (
        f"{usage['calls']} LLM calls, {usage['prompt_tokens']} prompt + {usage['completion_tokens']} completion"
        f" = {usage['total_tokens']} tokens, {usage.get('latency_seconds', 0):g}s waiting"
    )
    return text + (f", cost {usage['cost']:g}" if usage.get("cost") is not None else "")


def _counts_text(step: dict[str, Any]) -> str:
    parts: list[str] = []
    if "tables_ok" in step or "tables_failed" in step:
        text = f"tables ok {step.get('tables_ok', 0)}, failed {step.get('tables_failed', 0)}"
        if step.get("failed_tables"):
            shown = step["failed_tables"][:5]
            text += " (" + ", ".join(shown) + (", ..." if len(step["failed_tables"]) > 5 else "") + ")"
        parts.append(text)
    if "themes" in step or "pairs" in step:
        parts.append(f"themes {step.get('themes', 0)}, pairs {step.get('pairs', 0)}")
    if "sql_total" in step:
        parts.append(
            f"SQL valid {step.get('sql_valid', 0)}, invalid {step.get('sql_invalid', 0)},"
            f" repaired {step.get('sql_repaired', 0)}, dropped {step.get('sql_dropped', 0)}"
        )
    if "training_inserted" in step:
        parts.append(
            f"rows inserted {step.get('training_inserted', 0)}, already present"
            f" {step.get('training_already_present', 0)}, removed {step.get('training_removed', 0)}"
        )
    return "; ".join(parts)


def report_lines(report: dict[str, Any]) -> list[str]:
    """The report as text, for `dpctl task show` and the end of `dpctl workflow run`."""
    if not report or "steps" not in report:
        return []
    steps: dict[str, Any] = report["steps"]
    order = [*report.get("plan", []), *sorted(s for s in steps if s not in report.get("plan", []))]
    lines = []
    for name in order:
        step = steps[name]
        seconds = step.get("duration_seconds")
        head = f"  {name:16} {step.get('status', ''):10} attempts {step.get('attempts', 0)}"
        head += f"  {seconds:g}s" if seconds is not None else ""
        detail = step.get("error") or step.get("reason") or _counts_text(step)
        lines.append(head + (f"  {detail}" if detail else ""))
        if step.get("partial_reason"):
            lines.append(f"      partial: {step['partial_reason']}")
        incremental = step.get("incremental") or {}
        if isinstance(incremental.get("tables"), dict):
            t = incremental["tables"]
            lines.append(
                f"      incremental from {incremental.get('from_task')}: tables unchanged {t.get('unchanged', 0)},"
                f" changed {t.get('changed', 0)}, new {t.get('new', 0)}, dropped {t.get('dropped', 0)};"
                f" about {incremental.get('llm_tokens_saved', 0)} LLM tokens saved"
            )
        elif incremental:
            lines.append(
                f"      incremental: pairs generated for {incremental.get('themes_generated', 0)} themes,"
                f" {incremental.get('pairs_carried_over', 0)} carried over from {incremental.get('from_task')}"
            )
        quality = step.get("quality") or {}
        if quality:
            found = ", ".join(
                f"{code} {v['count']} ({v['action']})"
                for code, v in quality["flags"].items()
                if v.get("count")
            )
            lines.append(
                f"      quality: dropped {quality.get('dropped', 0)}, repaired {quality.get('repaired', 0)},"
                f" kept with flags {quality.get('kept', 0)}; {found or 'no flags'}"
                + ("" if quality.get("applied") else " (reported only: pair files unchanged)")
            )
            for pair in quality.get("dropped_pairs") or []:
                lines.append(
                    f"      dropped [{pair.get('file')} #{pair.get('index')}] {pair.get('question')}"
                    f" ({', '.join(pair.get('flags') or [])})"
                )
        for fix in step.get("repaired_statements") or []:
            lines.append(f"      repaired [{fix.get('file')} #{fix.get('index')}] {fix.get('question')}")
            lines.append(f"        before: {' '.join(str(fix.get('before')).split())}")
            lines.append(f"        after:  {' '.join(str(fix.get('after')).split())}")
    files = report.get("primary_files") or []
    if files:
        lines.append("  primary files: " + ", ".join(f"{f['file_name']} ({f['size']} B)" for f in files))
    total = report.get("duration_seconds")
    lines.append(f"  total: {total:g}s; " if total is not None else "  total: ")
    lines[-1] += _usage_text(report.get("llm_usage") or {})
    return lines

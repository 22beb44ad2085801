"""What step 3 found, per pair, and the two reports it writes: a readable log and a JSON document."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class RepairAttempt:
    round: int
    sql: str | None
    ok: bool
    error: str | None = None


@dataclass
class PairResult:
    file: str
    index: int
    question: str
    original_sql: str
    valid_before: bool = False
    error: str | None = None  # why the original failed
    rejected: bool = False  # not a single read-only statement: never repaired
    final_sql: str | None = None  # the statement that passed (original or repaired); None: unusable
    repairs: list[RepairAttempt] = field(default_factory=list)
    # the quality pass (pipeline/pair_quality.py): flags found on the valid statement, each with its action
    flags: list[dict[str, str]] = field(default_factory=list)
    quality: str | None = None  # "dropped" | "repaired" | "kept" (flags reported) | None: no flag
    quality_repairs: list[RepairAttempt] = field(default_factory=list)
    sql_before_quality: str | None = None  # the valid statement before a quality repair changed it

    @property
    def repaired(self) -> bool:
        return not self.valid_before and self.final_sql is not None

    @property
    def kept(self) -> bool:
        """Whether the pair stays in the pair file (and so reaches the training store)."""
        return self.final_sql is not None and self.quality != "dropped"

    @property
    def changed(self) -> bool:
        return self.kept and (not self.valid_before or self.sql_before_quality is not None)


@dataclass(frozen=True)
class ValidationTotals:
    total: int
    valid_before: int
    repaired: int
    invalid_after: int

    @property
    def success_rate_before(self) -> float:
        return self.valid_before / self.total if self.total else 0.0

    @property
    def success_rate_after(self) -> float:
        return (self.valid_before + self.repaired) / self.total if self.total else 0.0


def totals(results: list[PairResult]) -> ValidationTotals:
    valid = sum(r.valid_before for r in results)
    repaired = sum(r.repaired for r in results)
    return ValidationTotals(len(results), valid, repaired, len(results) - valid - repaired)


MAX_LISTED_REPAIRS = 200  # the list travels in an event and sits in the task's result


def repaired_statements(results: list[PairResult]) -> dict[str, Any]:
    """Each repaired statement before and after, with the question it answers, so a user can check that
    the repair kept the meaning; at most MAX_LISTED_REPAIRS (the report file has them all)."""
    repaired = [r for r in results if r.repaired]
    listed = [
        {
            "file": r.file,
            "index": r.index,
            "question": r.question,
            "before": r.original_sql,
            "after": r.final_sql,
        }
        for r in repaired[:MAX_LISTED_REPAIRS]
    ]
    return {"repaired_statements": listed, "repaired_statements_truncated": len(repaired) > len(listed)}


def quality_entry(r: PairResult) -> dict[str, Any]:
    return {
        "file": r.file,
        "index": r.index,
        "question": r.question,
        "sql": r.sql_before_quality or r.final_sql,
        "flags": r.flags,
        "outcome": r.quality,
        "final_sql": r.final_sql if r.kept else None,
        "repairs": [vars(a) for a in r.quality_repairs],
    }


def report_document(results: list[PairResult], summary: dict[str, Any]) -> dict[str, Any]:
    return {
        "summary": summary,
        "quality": [quality_entry(r) for r in results if r.flags],
        "failures": [
            {
                "file": r.file,
                "index": r.index,
                "question": r.question,
                "sql": r.original_sql,
                "error": r.error,
                "rejected": r.rejected,
                "repaired": r.repaired,
                "final_sql": r.final_sql,
                "repairs": [vars(a) for a in r.repairs],
            }
            for r in results
            if not r.valid_before
        ],
    }


def render_summary(results: list[PairResult], summary: dict[str, Any]) -> str:
    t = totals(results)
    lines = [
        "SQL validation report",
        "=====================",
        f"time:                 {summary['finished_at']}",
        f"files:                {', '.join(summary['files'])}",
        f"pairs:                {t.total}",
        f"valid before repair:  {t.valid_before} ({t.success_rate_before:.1%})",
        f"repaired by the LLM:  {t.repaired}",
        f"still invalid:        {t.invalid_after}",
        f"valid after repair:   {t.valid_before + t.repaired} ({t.success_rate_after:.1%})",
        f"LLM repair:           {'on, ' + str(summary['repair_rounds']) + ' rounds' if summary['llm_repair'] else 'off'}",
        f"pair files rewritten: {', '.join(summary['files_rewritten']) or 'none'}",
        "",
    ]
    failures = [r for r in results if not r.valid_before]
    if failures:
        lines += ["Failures", "--------"]
    for r in failures:
        outcome = "repaired" if r.repaired else ("rejected" if r.rejected else "not repaired")
        lines += [
            f"[{r.file} #{r.index}] {outcome}",
            f"  question: {r.question}",
            f"  sql:      {' '.join(r.original_sql.split())}",
            f"  error:    {r.error}",
        ]
        for attempt in r.repairs:
            state = "ok" if attempt.ok else f"failed: {attempt.error}"
            sql = " ".join((attempt.sql or "(no answer)").split())
            lines.append(f"  repair {attempt.round}: {state}")
            lines.append(f"    {sql}")
        if r.repaired and r.final_sql is not None:
            lines.append(f"  after:    {' '.join(r.final_sql.split())}")
        lines.append("")
    lines += _quality_lines(results, summary.get("quality") or {})
    return "\n".join(lines) + "\n"


def _quality_lines(results: list[PairResult], quality: dict[str, Any]) -> list[str]:
    flagged = [r for r in results if r.flags]
    lines = ["Quality", "-------"]
    counts = quality.get("flags") or {}
    actions = quality.get("actions") or {}
    for code, action in actions.items():
        lines.append(f"{code + ':':<28}{counts.get(code, 0):>5} pairs, {action}")
    lines.append(
        f"dropped {quality.get('dropped', 0)}, repaired {quality.get('repaired', 0)}, "
        f"kept with flags {quality.get('kept', 0)}"
    )
    if quality.get("note"):
        lines.append(str(quality["note"]))
    lines.append("")
    for r in flagged:
        lines += [
            f"[{r.file} #{r.index}] {r.quality}: {', '.join(f['code'] for f in r.flags)}",
            f"  question: {r.question}",
            f"  sql:      {' '.join((r.sql_before_quality or r.final_sql or '').split())}",
        ]
        lines += [f"  {f['code']} ({f['action']}): {f['detail']}" for f in r.flags]
        if r.quality == "repaired" and r.final_sql:
            lines.append(f"  after:    {' '.join(r.final_sql.split())}")
        lines.append("")
    return lines

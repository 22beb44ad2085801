"""The pairs of a task under review, from its files, and the pair files rewritten from the decisions.

A task's pairs are what step 4 would load (the `qs_*_pair.json` files) plus the pairs step 3 found invalid
and left out of them (its `sql_validation_*_report.json`), each with its verdict, its error, when step 3
repaired it (its SQL or a quality flag) the SQL it was repaired from, and the quality flags step 3 kept it
with or repaired (`quality`; dropped when an edit changes the SQL they were about). A pair's id is a
hash of its file and original question (step 2 keeps questions unique per file), so it is stable while
the files are. Decisions (the pair_reviews read model) are laid over them: status, and the question and
SQL after an edit.

When the review completes, each pair file is rewritten atomically to hold exactly the approved pairs, as
edited; the file as it was before is kept beside it as `<name>.original.json` (the first review's, so a
second review never loses the generated pairs).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from services.step_runner.pipeline.pair_files import PairFileError, load_pairs, pair_files, render_pairs
from shared.atomic_files import atomic_write_text

REPORT_GLOB = "sql_validation_*_report.json"
ORIGINAL_SUFFIX = ".original.json"


@dataclass(frozen=True)
class ReviewPair:
    pair_id: str
    file: str
    index: int  # position in its file; invalid pairs left out of the file come after its pairs
    theme: str | None
    question: str
    sql: str
    verdict: str  # valid | invalid | unchecked (no validation report)
    error: str | None
    repaired_from: str | None
    in_file: bool  # False: step 3 left it out of the pair file
    extra: dict[str, Any]  # the pair's other keys, kept when the file is rewritten
    status: str = "pending"  # pending | approved | rejected
    original_question: str | None = None  # set when an edit changed it
    original_sql: str | None = None
    edited: bool = False
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    quality: dict[str, Any] | None = None  # {"outcome": "kept" | "repaired", "flags": [{code, detail}]}

    def public(self) -> dict[str, Any]:
        out = {k: v for k, v in vars(self).items() if k not in ("extra", "in_file")}
        return out


def pair_id(file: str, question: str) -> str:
    return hashlib.sha256(f"{file}\n{question}".encode()).hexdigest()[:16]


Entries = dict[tuple[Any, str], dict[str, Any]]  # (file, question) -> a report entry


def _latest_report(task_dir: Path) -> tuple[bool, Entries, Entries]:
    """Whether step 3 left a validation report, and its latest one's `failures` and `quality` entries by
    (file, question); read once."""
    reports = sorted(task_dir.glob(REPORT_GLOB))
    if not reports:
        return False, {}, {}
    try:
        document = json.loads(reports[-1].read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return True, {}, {}

    def by_pair(key: str) -> Entries:
        entries = document.get(key) if isinstance(document, dict) else None
        return {
            (f.get("file"), f["question"]): f
            for f in entries or []
            if isinstance(f, dict) and isinstance(f.get("question"), str)
        }

    return True, by_pair("failures"), by_pair("quality")


def _quality_note(entry: dict[str, Any]) -> dict[str, Any] | None:
    """What step 3's quality pass did to a pair still in the file: kept it with flags, or repaired them."""
    if entry.get("outcome") not in ("kept", "repaired"):
        return None
    flags = [
        {"code": str(f.get("code")), "detail": str(f.get("detail") or "")}
        for f in entry.get("flags") or []
        if isinstance(f, dict) and f.get("code")
    ]
    return {"outcome": entry["outcome"], "flags": flags} if flags else None


def load_review_pairs(task_dir: Path) -> list[ReviewPair]:
    """Every pair of the task in file order, with its verdict; raises PairFileError for a broken file."""
    checked, failures, judged = _latest_report(task_dir)
    out: list[ReviewPair] = []
    for path in pair_files(task_dir):
        pairs = load_pairs(path)
        seen: set[str] = set()
        for index, pair in enumerate(pairs):
            question, sql = pair["question"], pair["sql"]
            failure = failures.get((path.name, question))
            verdict, error, repaired_from = ("valid" if checked else "unchecked"), None, None
            if failure is not None:
                error = failure.get("error")
                if failure.get("final_sql") and sql.strip() != str(failure.get("sql", "")).strip():
                    repaired_from = failure.get("sql")
                else:
                    verdict = "invalid"
            entry = judged.get((path.name, question)) or {}
            note = _quality_note(entry)
            before_quality = str(entry.get("sql") or "")
            if note and note["outcome"] == "repaired" and repaired_from is None:
                # the SQL before a quality repair (say a LIMIT added), as for a repaired statement
                repaired_from = before_quality if before_quality.strip() not in ("", sql.strip()) else None
            seen.add(question)
            extra = {k: v for k, v in pair.items() if k not in ("question", "sql")}
            theme = pair.get("theme") if isinstance(pair.get("theme"), str) else None
            out.append(
                ReviewPair(
                    pair_id(path.name, question), path.name, index, theme, question, sql, verdict, error,
                    repaired_from, True, extra, quality=note,
                )
            )  # fmt: skip
        left_out = [
            f
            for (file, q), f in failures.items()
            if file == path.name and q not in seen and not f.get("final_sql")
        ]
        for offset, failure in enumerate(left_out):
            question = failure["question"]
            out.append(
                ReviewPair(
                    pair_id(path.name, question), path.name, len(pairs) + offset, None, question,
                    str(failure.get("sql") or ""), "invalid", failure.get("error"), None, False, {},
                )
            )  # fmt: skip
    return out


def with_decisions(pairs: list[ReviewPair], decisions: dict[str, Any]) -> list[ReviewPair]:
    """The pairs as decided: `decisions` maps pair_id -> a pair_reviews row (mapping)."""
    out = []
    for pair in pairs:
        row = decisions.get(pair.pair_id)
        if row is None:
            out.append(pair)
            continue
        question, sql = row["question"], row["sql"]
        verdict, error = pair.verdict, pair.error
        if sql != pair.sql and row["sql_valid"] is not None:
            verdict, error = ("valid", None) if row["sql_valid"] else ("invalid", row["sql_error"])
        out.append(
            replace(
                pair,
                question=question,
                sql=sql,
                verdict=verdict,
                error=error,
                status=row["status"],
                original_question=pair.question if question != pair.question else None,
                original_sql=pair.sql if sql != pair.sql else None,
                edited=bool(row["edited"]),
                reviewed_by=f"{row['actor']} ({row['actor_role']})",
                reviewed_at=row["reviewed_at"].isoformat(),
                quality=pair.quality if sql == pair.sql else None,  # step 3 judged the SQL before the edit
            )
        )
    return out


def matches(
    pair: ReviewPair,
    *,
    status: str | None = None,
    verdict: str | None = None,
    repaired: bool | None = None,
    theme: str | None = None,
    flagged: bool | None = None,
) -> bool:
    """`flagged`: step 3 kept the pair with quality flags (a raw identifier in the question, a summed rate)."""
    kept_flags = pair.quality is not None and pair.quality["outcome"] == "kept"
    return (
        (status is None or pair.status == status)
        and (verdict is None or pair.verdict == verdict)
        and (repaired is None or (pair.repaired_from is not None) == repaired)
        and (theme is None or pair.theme == theme)
        and (flagged is None or kept_flags == flagged)
    )


def counts(pairs: list[ReviewPair]) -> dict[str, int]:
    tally = {"total": len(pairs), "approved": 0, "rejected": 0, "pending": 0}
    for pair in pairs:
        tally[pair.status] += 1
    tally["reviewed"] = tally["approved"] + tally["rejected"]
    tally["edited"] = sum(1 for p in pairs if p.edited and p.status == "approved")
    return tally


def rewrite_pair_files(task_dir: Path, pairs: list[ReviewPair]) -> list[tuple[str, str]]:
    """Write each pair file with exactly its approved pairs (as edited), keeping the file as it was before
    the first review as `<name>.original.json`. Returns (file, original) names of the files written."""
    written = []
    for path in pair_files(task_dir):
        original = path.with_name(path.name.removesuffix(".json") + ORIGINAL_SUFFIX)
        if not original.exists():
            atomic_write_text(original, path.read_text(encoding="utf-8"))
        approved = [
            {**p.extra, "question": p.question, "sql": p.sql}
            for p in sorted(pairs, key=lambda p: p.index)
            if p.file == path.name and p.status == "approved"
        ]
        atomic_write_text(path, render_pairs(approved))
        written.append((path.name, original.name))
    return written


__all__ = ["PairFileError", "ReviewPair", "load_review_pairs", "rewrite_pair_files", "with_decisions"]

"""The final report's quality section: step 3's counts per flag and action, and the dropped pairs
(issue #13, item 1)."""

from __future__ import annotations

from shared.events import StepSucceeded, TaskCreated, TaskFinished, TaskStarted
from shared.final_report import final_report, report_lines
from shared.steps import StepName
from tests.unit.test_final_report import PARAMS, env, run_of

QUALITY = {
    "actions": {"bookkeeping_subject": "drop", "select_star": "repair", "raw_identifier_in_question": "keep"},
    "flags": {"bookkeeping_subject": 2, "select_star": 1, "raw_identifier_in_question": 0},
    "dropped": 2,
    "repaired": 1,
    "kept": 0,
    "applied": True,
    "dropped_pairs": [
        {"file": "qs_a_pair.json", "index": 4, "question": "谁创建了公司?", "flags": ["bookkeeping_subject"]}
    ],
}


def _report(quality: dict[str, object] | None) -> dict[str, object]:
    summary = {"total": 5, "valid_before_repair": 5, "repaired": 0, "invalid_after_repair": 0, "dropped": 0}
    if quality is not None:
        summary["quality"] = quality  # type: ignore[assignment]
    events = [
        env(TaskCreated(parameters=PARAMS, output_directory="/d/t", steps=[StepName.SQL_VALIDATION]), 0),
        env(TaskStarted(), 1),
        *run_of(
            StepName.SQL_VALIDATION,
            "e1",
            2,
            3,
            StepSucceeded(step=StepName.SQL_VALIDATION, execution_id="e1", summary=summary),
        ),
        env(TaskFinished(status="completed"), 4),
    ]
    return final_report(events)


def test_quality_counts_actions_and_dropped_pairs() -> None:
    report = _report(QUALITY)
    quality = report["steps"]["sql_validation"]["quality"]  # type: ignore[index]
    assert quality["flags"]["bookkeeping_subject"] == {"count": 2, "action": "drop"}
    assert quality["flags"]["select_star"] == {"count": 1, "action": "repair"}
    assert (quality["dropped"], quality["repaired"], quality["kept"]) == (2, 1, 0)
    text = "\n".join(report_lines(report))
    assert "quality: dropped 2, repaired 1, kept with flags 0" in text
    assert "bookkeeping_subject 2 (drop)" in text and "raw_identifier_in_question" not in text
    assert "dropped [qs_a_pair.json #4] 谁创建了公司? (bookkeeping_subject)" in text


def test_report_only_and_older_summaries() -> None:
    text = "\n".join(report_lines(_report({**QUALITY, "applied": False})))
    assert "(reported only: pair files unchanged)" in text
    older = _report(None)  # a step 3 summary from before the quality pass
    assert older["steps"]["sql_validation"].get("quality") is None  # type: ignore[attr-defined]
    assert "quality:" not in "\n".join(report_lines(older))

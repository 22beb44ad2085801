"""Step 3 on pairs the offline generator wrote for the demo database, plus deliberately broken ones."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest

from services.step_runner.executors.base import VALIDATION_BELOW_THRESHOLD, StepError
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.demo_db import demo_db_url  # noqa: F401
from tests.support.pipeline_steps import demo_context, run_steps_1_and_2, validation_step

pytestmark = pytest.mark.integration

BROKEN = [
    {"question": "Orders per customer", "sql": "SELECT custmer_id, count(*) FROM orders GROUP BY custmer_id"},
    {"question": "Delete everything", "sql": "DELETE FROM orders"},
    {"question": "Two at once", "sql": "SELECT 1; SELECT 2"},
    {"question": "Nonsense", "sql": "SELECT FROM WHERE ORDER"},
]


def _pair_file(task_dir: Path) -> Path:
    (path,) = task_dir.glob("qs_*_pair.json")
    return path


async def _explain_all(url: str, pairs: list[dict[str, str]]) -> None:
    conn = await asyncpg.connect(url)
    try:
        for pair in pairs:
            async with conn.transaction(readonly=True):
                await conn.fetch("EXPLAIN " + pair["sql"].strip().rstrip(";"))
    finally:
        await conn.close()


async def test_generated_sql_passes_and_broken_sql_is_repaired_or_removed(
    tmp_path: Path,
    demo_db_url: str,  # noqa: F811
) -> None:
    ctx = demo_context(tmp_path, demo_db_url)
    await run_steps_1_and_2(ctx)
    pair_file = _pair_file(tmp_path)
    generated = json.loads(pair_file.read_text())
    assert len(generated) >= 20

    step3 = ctx.for_step(StepName.SQL_VALIDATION)
    clean = await validation_step().run(step3)
    assert clean["success_rate_before"] >= 0.95, clean
    assert clean["success_rate_after"] == 1.0 or clean["invalid_after_repair"] > 0
    await _explain_all(demo_db_url, json.loads(pair_file.read_text()))  # what remains all runs

    original_text = json.dumps(generated + BROKEN, indent=2)
    pair_file.write_text(original_text)
    (tmp_path / f"{pair_file.name}.backup").unlink(missing_ok=True)
    repairing = ctx.for_step(StepName.SQL_VALIDATION)
    summary = await validation_step().run(repairing)
    assert summary["total"] == len(generated) + 4
    assert summary["repaired"] == 1 and summary["rejected_not_read_only"] == 2
    assert summary["success_rate_after"] > summary["success_rate_before"]
    remaining = json.loads(pair_file.read_text())
    by_question = {p["question"]: p["sql"] for p in remaining}
    assert "customer_id" in by_question["Orders per customer"]
    # The report lists each repaired statement before and after, with its question; the rest are dropped.
    (listed,) = summary["repaired_statements"]
    assert listed["question"] == "Orders per customer" and "custmer_id" in listed["before"]
    assert listed["after"].rstrip(";") == by_question["Orders per customer"].rstrip(";")
    assert summary["dropped"] == 3 and not summary["repaired_statements_truncated"]
    assert not {"Delete everything", "Two at once", "Nonsense"} & set(by_question)
    await _explain_all(demo_db_url, remaining)
    backup = tmp_path / f"{pair_file.name}.backup"
    assert backup.read_text() == original_text
    # Registered like every output, so GET /tasks/{id}/files lists it with its size (issue 9, item 4).
    assert repairing.outputs[backup.name]["file_type"] == "backup"

    report = json.loads((tmp_path / summary["report_file"]).read_text())
    failures = {f["question"]: f for f in report["failures"]}
    assert failures["Delete everything"]["rejected"] and "DELETE" in failures["Delete everything"]["error"]
    assert failures["Orders per customer"]["repairs"][0]["ok"]
    assert "custmer_id" in failures["Orders per customer"]["error"]
    log = (tmp_path / summary["summary_file"]).read_text()
    assert "repaired by the LLM:  1" in log and "Delete everything" in log

    # A re-run finds nothing to fix, keeps the first original, and leaves one set of reports.
    again = await validation_step().run(ctx.for_step(StepName.SQL_VALIDATION))
    assert again["success_rate_before"] == 1.0 and again["files_rewritten"] == []
    assert backup.read_text() == original_text
    assert json.loads(pair_file.read_text()) == remaining
    assert len(list(tmp_path.glob("sql_validation_*_summary.log"))) == 1
    assert len(list(tmp_path.glob("sql_validation_*_report.json"))) == 1


async def test_without_repair_or_rewrite_and_below_threshold(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    ctx = demo_context(tmp_path, demo_db_url)
    pair_file = tmp_path / "qs_demo_20240101_000000_pair.json"
    good = [{"question": "How many orders?", "sql": "SELECT count(*) FROM orders;"}]
    pair_file.write_text(json.dumps(good * 5 + BROKEN[:1]))
    original = pair_file.read_text()

    report_only = ctx.for_step(StepName.SQL_VALIDATION, enable_llm_repair=False, modify_original_file=False)
    summary = await validation_step().run(report_only)
    assert summary["valid_before_repair"] == 5 and summary["repaired"] == 0 and not summary["llm_repair"]
    assert pair_file.read_text() == original and not (tmp_path / f"{pair_file.name}.backup").exists()

    strict = validation_step(PipelineSettings(validation_success_threshold=0.9))
    with pytest.raises(StepError, match="below the threshold") as failure:
        await strict.run(ctx.for_step(StepName.SQL_VALIDATION, enable_llm_repair=False))
    assert failure.value.code == VALIDATION_BELOW_THRESHOLD
    assert pair_file.read_text() == original and not (tmp_path / f"{pair_file.name}.backup").exists()
    assert len(list(tmp_path.glob("sql_validation_*_report.json"))) == 1


async def test_missing_pairs_and_bad_files_fail_clearly(tmp_path: Path, demo_db_url: str) -> None:  # noqa: F811
    ctx = demo_context(tmp_path, demo_db_url).for_step(StepName.SQL_VALIDATION)
    with pytest.raises(StepError, match="qs_"):
        await validation_step().run(ctx)
    (tmp_path / "qs_x_1_pair.json").write_text('{"not": "a list"}')
    with pytest.raises(StepError, match="JSON list"):
        await validation_step().run(ctx)

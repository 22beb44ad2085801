"""The final report in a finished task's `result`, and the LLM token budget, through the real services
(gateway, scheduler, collector, runners) with scripted executors (tests/support/fake_executors.py)."""

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import pytest

from tests.e2e.conftest import DB_URL
from tests.e2e.test_dpctl_cli import _clean_env, dpctl
from tests.support.api import Api

pytestmark = pytest.mark.e2e
STEPS = ["ddl_generation", "qa_generation", "sql_validation", "training_load"]


async def _finished(api: Api, task_id: str) -> dict[str, Any]:
    detail = await api.wait(task_id, timeout=90)
    assert detail["result"], detail
    return detail


async def test_a_completed_run_reports_every_step_files_durations_and_llm_usage(api: Api) -> None:
    task_id = await api.create(DB_URL, "llm:ddl_generation=100 llm:qa_generation=40", task_name="report")
    detail = await _finished(api, task_id)
    assert detail["status"] == "completed"
    result = detail["result"]
    assert result["status"] == "completed" and result["error_message"] is None
    assert result["plan"] == STEPS and set(result["steps"]) == set(STEPS)  # jsonb keeps no key order
    for name in STEPS:
        step = result["steps"][name]
        assert step["status"] == "completed" and step["attempts"] == 1, step
        assert step["duration_seconds"] is not None and step["duration_seconds"] >= 0
        assert step["started_at"] <= step["finished_at"]
    assert result["duration_seconds"] >= sum(result["steps"][s]["duration_seconds"] for s in STEPS)
    assert [f["file_name"] for f in result["primary_files"]] == ["qa_generation.txt"]
    assert result["primary_files"][0]["step"] == "qa_generation" and result["primary_files"][0]["size"] > 0
    assert result["files_registered"] == 4

    usage = result["llm_usage"]
    assert (usage["calls"], usage["prompt_tokens"], usage["completion_tokens"], usage["total_tokens"]) == (
        2,
        140,
        70,
        210,
    )
    assert set(usage["by_model"]) == {"scripted-model"} and usage["cost"] is None
    assert result["steps"]["ddl_generation"]["llm_usage"]["total_tokens"] == 150
    assert result["steps"]["sql_validation"]["llm_usage"]["calls"] == 0


async def test_a_partial_run_names_the_failed_step_and_what_did_not_run(
    api: Api, pg: asyncpg.Connection
) -> None:
    task_id = await api.create(DB_URL, "fail:sql_validation transient:qa_generation")
    detail = await _finished(api, task_id)
    assert detail["status"] == "partial_completed"
    result = detail["result"]
    assert result["status"] == "partial_completed" and "sql_validation" in result["error_message"]
    steps = result["steps"]
    assert steps["qa_generation"]["status"] == "completed" and steps["qa_generation"]["attempts"] == 2
    assert steps["sql_validation"]["status"] == "failed"
    assert "scripted failure" in steps["sql_validation"]["error"]
    assert steps["training_load"] == {**steps["training_load"], "status": "pending", "attempts": 0}
    # the detail and the read model hold the same object
    stored = await pg.fetchval("SELECT result FROM data_pipeline_tasks WHERE id = $1", task_id)
    assert (json.loads(stored) if isinstance(stored, str) else stored) == result


async def test_a_failed_run_reports_the_first_steps_error(api: Api) -> None:
    task_id = await api.create(DB_URL, "fail:ddl_generation")
    result = (await _finished(api, task_id))["result"]
    assert result["status"] == "failed"
    assert result["steps"]["ddl_generation"]["status"] == "failed"
    assert result["steps"]["ddl_generation"]["error"] == "scripted failure of ddl_generation"
    assert [result["steps"][s]["status"] for s in STEPS[1:]] == ["pending"] * 3
    assert result["primary_files"] == [] and result["llm_usage"]["calls"] == 0


async def test_crossing_the_token_budget_fails_the_step_for_good(api: Api) -> None:
    # ddl spends 150 tokens, qa 150 more: the run's 300 cross max_llm_tokens=250 in qa.
    task_id = await api.create(DB_URL, "llm:ddl_generation=100 llm:qa_generation=100", max_llm_tokens=250)
    detail = await _finished(api, task_id)
    assert detail["status"] == "partial_completed"
    assert detail["parameters"]["max_llm_tokens"] == 250
    qa = detail["result"]["steps"]["qa_generation"]
    assert qa["status"] == "failed" and qa["code"] == "llm_budget_exceeded"
    assert qa["attempts"] == 1  # not retried
    assert "max_llm_tokens=250" in qa["error"] and "has used 300 tokens" in qa["error"]
    assert qa["llm_usage"]["total_tokens"] == 150
    assert detail["result"]["llm_usage"]["total_tokens"] == 300
    assert detail["result"]["steps"]["sql_validation"]["status"] == "pending"
    assert "max_llm_tokens" in detail["error_message"]

    # A budget already spent by earlier steps refuses the next step's first call.
    task_id = await api.create(DB_URL, "llm:ddl_generation=100 llm:qa_generation=10", max_llm_tokens=150)
    qa = (await _finished(api, task_id))["result"]["steps"]["qa_generation"]
    assert qa["code"] == "llm_budget_exceeded" and qa["llm_usage"]["calls"] == 0


async def test_a_budget_out_of_range_is_a_400(api: Api) -> None:
    body = {
        "task_type": "complete_workflow",
        "parameters": {
            "db_connection": DB_URL,
            "table_list": ["public.orders"],
            "business_context": "plain",
            "max_llm_tokens": 0,
        },
    }
    status, data = await api.call("POST", "/api/v0/data_pipeline/tasks", json=body)
    assert status == 400, data
    assert "max_llm_tokens" in str(data)


async def test_dpctl_task_show_prints_the_report(api: Api, stack_env: dict[str, str]) -> None:
    task_id = await api.create(DB_URL, "llm:ddl_generation=100 fail:sql_validation")
    await _finished(api, task_id)
    env = _clean_env(DP_GATEWAY_URL=f"http://127.0.0.1:{stack_env['DP_HTTP_PORT']}")
    shown = await dpctl("task", "show", task_id, env=env)
    assert shown.code == 0, shown
    report = shown.out.split("Final report:\n", 1)[1]
    assert re.search(r"^  ddl_generation\s+completed\s+attempts 1\s+[\d.]+s$", report, re.MULTILINE), shown
    assert re.search(r"^  sql_validation\s+failed\s+attempts 1 .*scripted failure", report, re.MULTILINE), (
        shown
    )
    assert re.search(r"^  training_load\s+pending\s+attempts 0$", report, re.MULTILINE), shown
    assert "primary files: qa_generation.txt (" in report
    assert "1 LLM calls, 100 prompt + 50 completion = 150 tokens" in report

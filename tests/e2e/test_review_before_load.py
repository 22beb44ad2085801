"""Review before load on the real services and the demo database (offline LLM): a task created with
review_before_load waits as awaiting_review after step 3; a person approves, rejects and edits pairs
(an edit to a failing SQL is refused and says why, an edit to a passing one is approved); completing
loads exactly the approved pairs; abandoning loads nothing and ends the task cancelled; a task awaiting
review survives a scheduler restart and is not reaped by the task timeout."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from tests.conftest import PG_URL
from tests.support.api import BASE, Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.real_stack import demo_tables, real_api, real_env, real_stack  # noqa: F401  (fixtures)
from tests.support.stack import Stack

pytestmark = pytest.mark.e2e

SMALL = {"theme_count": 1, "questions_per_theme": 4, "db_name": "shop", "review_before_load": True}


async def _create_for_review(api: Api, url: str) -> tuple[str, list[dict[str, Any]]]:
    task_id = await api.create(
        url, business_context="An online retail shop", table_list=demo_tables()[:3], **SMALL
    )
    detail = await api.wait(
        task_id, ("awaiting_review", "completed", "failed", "partial_completed"), timeout=120
    )
    assert detail["status"] == "awaiting_review", detail
    assert detail["step_status"]["training_load"] == "pending"
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/pairs")
    assert status == 200, body
    return task_id, body["data"]["pairs"]


async def _loaded(env: dict[str, str], task_id: str) -> set[tuple[str, str]]:
    schema = env["DP_TRAINING_SCHEMA"]
    conn = await asyncpg.connect(PG_URL)
    try:
        if not await conn.fetchval("SELECT to_regclass($1)", f"{schema}.training_data"):
            return set()
        rows = await conn.fetch(
            f"""SELECT d.question, d.sql FROM {schema}.training_data d
                JOIN {schema}.training_data_sources s ON s.data_id = d.id
                WHERE s.task_id = $1 AND d.kind = 'question_sql'""",
            task_id,
        )
    finally:
        await conn.close()
    return {(r["question"], r["sql"]) for r in rows}


async def test_review_approve_reject_edit_then_complete_loads_exactly_the_approved_pairs(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    api = real_api
    task_id, pairs = await _create_for_review(api, demo_db_url)
    assert len(pairs) >= 3, pairs
    assert all(p["status"] == "pending" and p["verdict"] in ("valid", "invalid") for p in pairs)
    # Step 2 names each pair's theme; the list filters by it.
    theme = next(p["theme"] for p in pairs if p["theme"])
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/pairs", params={"theme": theme})
    assert status == 200 and 0 < body["data"]["matched"] <= len(pairs) and theme in body["data"]["themes"]
    assert all(p["theme"] == theme for p in body["data"]["pairs"])
    approve, reject, edit = pairs[0], pairs[1], pairs[2]
    table = demo_tables()[0]
    url = f"{BASE}/tasks/{task_id}/pairs"

    status, body = await api.call("PATCH", f"{url}/{approve['pair_id']}", json={"decision": "approve"})
    assert status == 200 and body["data"]["pair"]["status"] == "approved", body
    status, body = await api.call("PATCH", f"{url}/{reject['pair_id']}", json={"decision": "reject"})
    assert status == 200 and body["data"]["pair"]["status"] == "rejected", body

    # An edit to a failing SQL is refused on the spot, with the reason; the pair is unchanged.
    for bad in (f"SELECT no_such_column FROM {table}", "SELECT pg_sleep(1)"):
        status, body = await api.call(
            "PATCH", f"{url}/{edit['pair_id']}", json={"decision": "edit", "sql": bad}
        )
        assert status == 400, body
        assert body["data"]["sql_check"]["passes"] is False and body["data"]["sql_check"]["error"], body
    good = f"SELECT count(*) AS n FROM {table};"
    status, body = await api.call(
        "PATCH",
        f"{url}/{edit['pair_id']}",
        json={"decision": "edit", "sql": good, "question": "How many rows?"},
    )
    assert status == 200, body
    decided = body["data"]
    assert decided["sql_check"]["passes"] is True and decided["sql_check"]["plan"], decided
    assert decided["pair"]["status"] == "approved" and decided["pair"]["edited"] is True
    assert decided["pair"]["original_sql"] == edit["sql"]
    assert decided["counts"]["approved"] == 2 and decided["counts"]["rejected"] == 1

    status, body = await api.call("GET", f"{url}/{edit['pair_id']}/preview")
    assert status == 200, body
    check = body["data"]["sql_check"]
    assert check["passes"] and check["columns"] == ["n"] and len(check["rows"]) == 1, check
    # A table another transaction holds locked (a migration) is no verdict on the SQL: the check waits
    # for it up to the statement timeout, then answers 503 and says so.
    holder = await asyncpg.connect(demo_db_url)
    try:
        async with holder.transaction():
            await holder.execute(f"LOCK TABLE {table} IN ACCESS EXCLUSIVE MODE")
            status, body = await api.call("GET", f"{url}/{edit['pair_id']}/preview")
    finally:
        await holder.close()
    assert status == 503 and "stayed locked" in body["data"]["response"], body
    assert body["data"]["retryable"] is True, body

    status, body = await api.call("GET", url, params={"status": "approved"})
    assert status == 200 and body["data"]["matched"] == 2, body
    assert await _loaded(real_env, task_id) == set()  # nothing loaded while the review is open
    status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/execute", json={})
    assert status == 409 and body["data"]["task_status"] == "awaiting_review", body

    status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/review/complete")
    assert status == 202, body
    assert body["data"]["approved"] == 2 and body["data"]["undecided"] == len(pairs) - 3
    detail = await api.wait(task_id, timeout=60)
    assert detail["status"] == "completed", detail
    # The final report says who completed the review and how many pairs were approved.
    review = detail["result"]["review"]
    assert (review["status"], review["approved"], review["rejected"], review["edited"]) == (
        "completed",
        2,
        1,
        1,
    )
    assert review["actor"] and review["requested_at"] <= review["decided_at"]

    expected = {(approve["question"], approve["sql"].strip()), ("How many rows?", good)}
    assert await _loaded(real_env, task_id) == expected

    # The pair file holds exactly the approved pairs, as edited; the original is kept beside it.
    task_dir = Path(real_env["DP_DATA_ROOT"]) / task_id
    [pair_file] = task_dir.glob("qs_*_pair.json")
    kept = json.loads(pair_file.read_text())
    assert {(p["question"], p["sql"].strip()) for p in kept} == expected
    original = json.loads(
        pair_file.with_name(pair_file.name.removesuffix(".json") + ".original.json").read_text()
    )
    assert len(original) == len([p for p in pairs if p["verdict"] == "valid"])

    # The history says who decided what, with the SQL before and after.
    status, body = await api.call("GET", f"{BASE}/tasks/{task_id}/events", params={"limit": 500})
    assert status == 200, body
    events = body["data"]["events"]
    reviewed = [e for e in events if e["type"] == "pair_reviewed"]
    assert [(e["payload"]["decision"], e["payload"]["status"]) for e in reviewed] == [
        ("approve", "approved"),
        ("reject", "rejected"),
        ("edit", "approved"),
    ]
    assert reviewed[2]["payload"]["sql_before"] == edit["sql"] and reviewed[2]["payload"]["sql_after"] == good
    assert all(e["payload"]["actor"] for e in reviewed)
    assert [e["type"] for e in events if e["type"].startswith("review_")] == [
        "review_requested",
        "review_completed",
    ]


async def test_awaiting_review_survives_a_scheduler_restart_is_not_reaped_and_abandon_loads_nothing(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    real_stack: Stack,  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    api = real_api
    task_id, _ = await _create_for_review(api, demo_db_url)
    # A scheduler whose task timeout (36 ms) every running task exceeds at its next tick.
    real_stack.stop("scheduler")
    real_stack.start("scheduler", extra_env={"DP_TASK_TIMEOUT_HOURS": "0.00001"})
    try:
        # The positive marker: a task that runs is reaped by this scheduler...
        canary = await api.create(
            demo_db_url, business_context="canary", table_list=demo_tables()[:1], db_name="shop"
        )
        reaped = await api.wait(canary, timeout=60)
        assert reaped["status"] == "failed" and "task_timeout_hours" in (reaped["error_message"] or ""), (
            reaped
        )
        # ...while the task awaiting review, started long before, is neither reaped nor forgotten.
        assert (await api.task(task_id))["status"] == "awaiting_review"

        status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/review/abandon")
        assert status == 202 and body["data"]["final_status"] == "cancelled", body
        detail = await api.wait(task_id, timeout=30)
        assert detail["status"] == "cancelled", detail
        assert (
            "review abandoned by" in detail["error_message"] and "nothing loaded" in detail["error_message"]
        )
        assert detail["step_status"]["training_load"] == "skipped"
        assert detail["result"]["review"]["status"] == "abandoned"
        assert await _loaded(real_env, task_id) == set()
        status, body = await api.call("POST", f"{BASE}/tasks/{task_id}/review/complete")
        assert status == 409, body  # a finished task has no review to complete
    finally:
        real_stack.stop("scheduler")
        real_stack.start("scheduler")


async def test_review_routes_refuse_what_they_cannot_do(
    real_api: Api,  # noqa: F811
) -> None:
    api = real_api
    status, body = await api.call("GET", f"{BASE}/tasks/task_20200101_000000_abcdef/pairs")
    assert status == 404, body
    status, body = await api.call(
        "PATCH", f"{BASE}/tasks/task_20200101_000000_abcdef/pairs/not-a-pair-id", json={"decision": "approve"}
    )
    assert status == 400 and body["data"]["invalid_params"] == ["pair_id"], body


async def _dpctl(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("DP_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "services.dpctl.main",
        *args,
        env={**clean, "DP_GATEWAY_URL": f"http://127.0.0.1:{env['DP_HTTP_PORT']}"},
        cwd=Path(__file__).resolve().parents[2],
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_dpctl_task_review_lists_then_approves_the_valid_pairs_and_completes(
    real_api: Api,  # noqa: F811
    real_env: dict[str, str],  # noqa: F811
    demo_db_url: str,  # noqa: F811
) -> None:
    # Following a task with review_before_load stops where a person must act, and says how (exit 0).
    code, out, err = await _dpctl(
        real_env,
        *("task", "create", "--db-connection", demo_db_url, "--tables", ",".join(demo_tables()[:3])),
        *("--business-context", "An online retail shop", "--db-name", "shop", "--theme-count", "1"),
        *("--questions-per-theme", "4", "--review-before-load", "--follow", "--no-logs"),
    )
    assert code == 0, (out, err)
    task_id = out.split("created ", 1)[1].split()[0]
    assert f"task {task_id}: awaiting_review (review its pairs: dpctl task review {task_id})" in out, out
    status, body = await real_api.call("GET", f"{BASE}/tasks/{task_id}/pairs")
    assert status == 200, body
    pairs = body["data"]["pairs"]
    code, out, err = await _dpctl(real_env, "task", "review", task_id)
    assert code == 0, err
    assert f"0/{len(pairs)} reviewed" in out and pairs[0]["pair_id"] in out, out
    # A pair step 3 kept with a quality flag is marked, and --flagged lists only such pairs.
    (report,) = (Path(real_env["DP_DATA_ROOT"]) / task_id).glob("sql_validation_*_report.json")
    document = json.loads(report.read_text(encoding="utf-8"))
    flag = {"code": "summed_rate", "action": "keep", "detail": "sums a per-row rate (products.unit_price)"}
    document["quality"] = [
        {"file": pairs[0]["file"], "index": 0, "question": pairs[0]["question"], "sql": pairs[0]["sql"],
         "flags": [flag], "outcome": "kept", "final_sql": pairs[0]["sql"], "repairs": []}
    ]  # fmt: skip
    report.write_text(json.dumps(document), encoding="utf-8")
    code, out, err = await _dpctl(real_env, "task", "review", task_id, "--flagged")
    assert code == 0, err
    assert pairs[0]["pair_id"] in out and "summed_rate" in out, out
    assert all(p["pair_id"] not in out for p in pairs[1:]), out
    code, out, err = await _dpctl(real_env, "task", "review", task_id, "--approve-valid", "--complete")
    assert code == 0, err
    valid = [p for p in pairs if p["verdict"] == "valid"]
    assert f"review completed: {len(valid)} approved" in out, out
    assert (await real_api.wait(task_id, timeout=60))["status"] == "completed"
    assert await _loaded(real_env, task_id) == {(p["question"], p["sql"].strip()) for p in valid}

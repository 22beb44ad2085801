"""LLM usage accounting, the token budget and meaning-keeping repair, through the real services running
the REAL steps against the fake OpenAI-compatible server (tests/support/fake_openai.py) and the demo
business database: the tokens in a task's `result` and in the runner's metrics are the ones the server
sent in its answers' `usage`."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import aiohttp
import pytest

from shared.migrate import migrate
from shared.settings import CommonSettings
from tests.conftest import PG_URL
from tests.e2e.conftest import _wait_ready
from tests.support.api import Api
from tests.support.demo_db import demo_db_url  # noqa: F401  (fixture)
from tests.support.fake_openai import FakeOpenAI, Reply, ThreadedFake, provider_env
from tests.support.real_stack import _cleanup
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

QUESTION = "How many orders did each customer place?"
# live orders only (orders has deleted_at), so step 3's quality pass leaves the repaired statement as is
BROKEN = "SELECT custmer_id, count(*) FROM orders WHERE deleted_at IS NULL GROUP BY custmer_id;"
FIXED = "SELECT customer_id, count(*) FROM orders WHERE deleted_at IS NULL GROUP BY customer_id;"
PROMPT_PRICE, COMPLETION_PRICE = 0.5, 2.0


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeOpenAI]:
    with ThreadedFake() as server:
        yield server


@pytest.fixture(scope="module")
def llm_env(
    test_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory, fake: FakeOpenAI
) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **test_env,
        "DP_DB_SCHEMA": f"dpl_{key}",
        "DP_BROKER_PREFIX": f"dpl.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("llm-tasks")),
        "DP_TRAINING_SCHEMA": f"dpl_{key}_training",
        "DP_HTTP_PORT": str(free_port()),
        "DP_RUNNER_HEALTH_PORT": str(free_port()),
        "DP_HEARTBEAT_INTERVAL_SECONDS": "1",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_COLLECTOR_FLUSH_MS": "20",
        **provider_env(fake),
        "DP_LLM_PRICE_PER_1K_PROMPT_TOKENS": str(PROMPT_PRICE),
        "DP_LLM_PRICE_PER_1K_COMPLETION_TOKENS": str(COMPLETION_PRICE),
    }


@pytest.fixture(scope="module")
def llm_stack(llm_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    settings = CommonSettings(
        database_url=PG_URL, db_schema=llm_env["DP_DB_SCHEMA"], broker_prefix=llm_env["DP_BROKER_PREFIX"]
    )
    asyncio.run(migrate(settings))
    stack = Stack(llm_env, tmp_path_factory.mktemp("llm-logs"))
    for name in ("collector", "scheduler", "gateway"):
        stack.start(name)
    stack.start(
        "runner",
        extra_env={"DP_RUNNER_ID": "llm-runner", "DP_HEALTH_PORT": llm_env["DP_RUNNER_HEALTH_PORT"]},
    )
    try:
        asyncio.run(_wait_ready(f"http://127.0.0.1:{llm_env['DP_HTTP_PORT']}", stack))
        yield stack
    finally:
        stack.stop_all()
        asyncio.run(_cleanup(settings, llm_env["DP_TRAINING_SCHEMA"]))


@pytest.fixture
async def api(llm_stack: Stack, llm_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{llm_env['DP_HTTP_PORT']}")


async def _metric(session: aiohttp.ClientSession, port: str, name: str, model: str) -> float:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        text = await resp.text()
    match = re.search(rf'^{name}\{{model="{re.escape(model)}"\}} (\S+)$', text, re.MULTILINE)
    return float(match.group(1)) if match else 0.0


def _sent(fake: FakeOpenAI, model: str, since: int) -> tuple[int, int, int]:
    rows = [u for u in fake.usage_sent[since:] if u[0] == model]
    return len(rows), sum(u[1] for u in rows), sum(u[2] for u in rows)


async def test_usage_from_the_providers_answers_is_in_result_and_metrics_and_repair_keeps_the_question(
    api: Api,
    fake: FakeOpenAI,
    llm_env: dict[str, str],
    demo_db_url: str,  # noqa: F811
) -> None:
    before = len(fake.usage_sent)
    # The first generated pair has a typo the repair must fix without changing what it answers.
    fake.script(Reply.json({"pairs": [{"question": QUESTION, "sql": BROKEN}]}), task="generate_pairs")
    fake.script(Reply.json({"sql": FIXED}), task="repair_sql")
    task_id = await api.create(
        demo_db_url,
        business_context="An online retail shop",
        table_list=["orders", "customers"],
        db_name="shop",
        theme_count=2,
        questions_per_theme=3,
    )
    detail = await api.wait(task_id, timeout=180)
    assert detail["status"] == "completed", detail
    result: dict[str, Any] = detail["result"]

    # The repair prompt carried the question; the report shows the statement before and after.
    (repair,) = fake.chat_requests("repair_sql")
    prompt = repair.body["messages"][-1]["content"]
    assert f"It must answer this question:\n{QUESTION}" in prompt and BROKEN.rstrip(";") in prompt
    sql = result["steps"]["sql_validation"]
    assert sql["sql_repaired"] == 1 and sql["sql_invalid"] == 0 and sql["sql_dropped"] == 0
    (listed,) = sql["repaired_statements"]
    assert listed["question"] == QUESTION and "custmer_id" in listed["before"]
    assert listed["after"].rstrip(";") == FIXED.rstrip(";")

    # Every call's tokens as the server reported them, per model, summed in result.
    chat_calls, chat_prompt, chat_completion = _sent(fake, "fake-chat", before)
    embed_calls, embed_prompt, _ = _sent(fake, "fake-embed", before)
    assert chat_calls >= 5 and embed_calls >= 1 and chat_completion > 0
    usage = result["llm_usage"]
    chat, embed = usage["by_model"]["fake-chat"], usage["by_model"]["fake-embed"]
    assert (chat["calls"], chat["prompt_tokens"], chat["completion_tokens"]) == (
        chat_calls,
        chat_prompt,
        chat_completion,
    )
    assert (embed["calls"], embed["prompt_tokens"], embed["completion_tokens"]) == (
        embed_calls,
        embed_prompt,
        0,
    )
    assert usage["total_tokens"] == chat_prompt + chat_completion + embed_prompt
    assert usage["cost"] == pytest.approx(
        ((chat_prompt + embed_prompt) * PROMPT_PRICE + chat_completion * COMPLETION_PRICE) / 1000, abs=1e-5
    )
    assert usage["latency_seconds"] > 0
    per_step = {name: result["steps"][name]["llm_usage"]["total_tokens"] for name in result["plan"]}
    assert sum(per_step.values()) == usage["total_tokens"]
    assert per_step["ddl_generation"] > 0 and per_step["qa_generation"] > 0 and per_step["training_load"] > 0
    assert result["steps"]["training_load"]["llm_usage"]["by_model"].keys() == {"fake-embed"}

    # The runner's Prometheus counters by model say the same.
    port = llm_env["DP_RUNNER_HEALTH_PORT"]
    session = api.session
    assert await _metric(session, port, "dp_llm_prompt_tokens_total", "fake-chat") == chat_prompt
    assert await _metric(session, port, "dp_llm_completion_tokens_total", "fake-chat") == chat_completion
    assert await _metric(session, port, "dp_llm_calls_total", "fake-embed") == embed_calls
    assert await _metric(session, port, "dp_llm_cost_total", "fake-chat") == pytest.approx(
        (chat_prompt * PROMPT_PRICE + chat_completion * COMPLETION_PRICE) / 1000, rel=1e-6
    )


async def test_a_token_budget_stops_the_run_at_the_step_that_crosses_it(
    api: Api,
    fake: FakeOpenAI,
    demo_db_url: str,  # noqa: F811
) -> None:
    before = len(fake.usage_sent)
    task_id = await api.create(
        demo_db_url,
        business_context="An online retail shop",
        table_list=["orders", "customers", "products"],
        db_name="shop",
        max_llm_tokens=50,  # less than one describe_table prompt
    )
    detail = await api.wait(task_id, timeout=120)
    assert detail["status"] == "failed", detail
    ddl = detail["result"]["steps"]["ddl_generation"]
    assert ddl["status"] == "failed" and ddl["code"] == "llm_budget_exceeded" and ddl["attempts"] == 1
    assert "max_llm_tokens=50" in ddl["error"] and "max_llm_tokens=50" in detail["error_message"]
    # The call that crossed the budget is counted; no call started after it.
    calls, prompt, completion = _sent(fake, "fake-chat", before)
    # Calls already in flight when the first answer crossed the budget are cancelled with the step: the
    # server may have answered them, but their usage never reached the runner (stated in the docs).
    assert 50 < ddl["llm_usage"]["total_tokens"] <= prompt + completion
    assert 1 <= ddl["llm_usage"]["calls"] <= calls
    assert calls <= 3  # at most the describe calls already in flight when the first answer crossed it

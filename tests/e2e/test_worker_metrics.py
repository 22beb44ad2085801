"""/metrics on the worker services' health port: one task through the real services moves the counters."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.parser import text_string_to_metric_families

from shared.health import health_server
from tests.e2e.conftest import DB_URL, _wait_ready
from tests.support.api import Api
from tests.support.eventually import eventually
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
WORKERS = ("collector", "scheduler", "runner")
STEPS = ("ddl_generation", "qa_generation", "sql_validation", "training_load")
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@pytest.fixture(scope="module")
def metrics_env(
    stack_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> dict[str, str]:
    """The e2e settings, in a schema and broker prefix of this module's own, each worker on a health port."""
    return {
        **stack_env,
        "DP_DB_SCHEMA": f"dpm_{run_id}",
        "DP_BROKER_PREFIX": f"dpm.{run_id}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("metrics-tasks")),
        "DP_HTTP_PORT": str(free_port()),
        **{f"PORT_{name.upper()}": str(free_port()) for name in WORKERS},
    }


@pytest.fixture(scope="module")
def metrics_stack(metrics_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    with own_stack(metrics_env, tmp_path_factory.mktemp("metrics-logs")) as stack:
        for name in WORKERS:
            stack.start(
                name,
                extra_env={
                    "DP_HEALTH_PORT": metrics_env[f"PORT_{name.upper()}"],
                    **({"DP_RUNNER_ID": "metrics-runner"} if name == "runner" else {}),
                },
            )
        stack.start("gateway")
        asyncio.run(_wait_ready(f"http://127.0.0.1:{metrics_env['DP_HTTP_PORT']}", stack))
        yield stack


async def _scrape(session: aiohttp.ClientSession, port: str) -> Samples:
    async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/plain"
        text = await resp.text()
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def _value(samples: Samples, name: str, **labels: str) -> float:
    """The sum over the series of `name` whose labels include `labels`."""
    wanted = set(labels.items())
    return sum(v for (n, ls), v in samples.items() if n == name and wanted <= ls)


async def _eventually(
    session: aiohttp.ClientSession, port: str, name: str, at_least: float, timeout: float = 10, **labels: str
) -> Samples:
    async def reached() -> Samples:
        samples = await _scrape(session, port)
        assert _value(samples, name, **labels) >= at_least, (name, labels, samples)
        return samples

    return await eventually(reached, timeout=timeout, what=f"{name}{labels} >= {at_least}")


@pytest.fixture
async def metrics_api(metrics_stack: Stack, metrics_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{metrics_env['DP_HTTP_PORT']}")


async def test_one_task_moves_every_workers_metrics(metrics_api: Api, metrics_env: dict[str, str]) -> None:
    task_id = await metrics_api.create(DB_URL, task_name="metrics run")
    assert (await metrics_api.wait(task_id))["status"] == "completed"
    session = metrics_api.session

    collector = await _eventually(
        session, metrics_env["PORT_COLLECTOR"], "dp_collector_events_stored_total", 1, type="task_finished"
    )
    assert _value(collector, "dp_collector_events_stored_total", type="step_succeeded") == len(STEPS)
    assert _value(collector, "dp_collector_batches_committed_total") > 0
    assert _value(collector, "dp_collector_batch_size_count") == _value(
        collector, "dp_collector_batches_committed_total"
    )
    assert _value(collector, "dp_collector_batch_size_sum") == _value(
        collector, "dp_collector_events_stored_total"
    )
    assert _value(collector, "dp_collector_batch_commit_seconds_count") > 0
    assert _value(collector, "dp_collector_events_dead_lettered_total") == 0

    runner = await _eventually(
        session, metrics_env["PORT_RUNNER"], "dp_runner_steps_finished_total", len(STEPS), outcome="succeeded"
    )
    for step in STEPS:
        assert _value(runner, "dp_runner_steps_started_total", step=step) == 1
        assert _value(runner, "dp_runner_steps_finished_total", step=step, outcome="succeeded") == 1
        assert _value(runner, "dp_runner_step_duration_seconds_count", step=step) == 1
    assert _value(runner, "dp_runner_steps_running") == 0
    assert _value(runner, "dp_runner_commands_skipped_total") == 0

    scheduler = await _eventually(
        session, metrics_env["PORT_SCHEDULER"], "dp_scheduler_decisions_total", 1, type="task_finished"
    )
    assert _value(scheduler, "dp_scheduler_decisions_total", type="task_created") == 1
    assert _value(scheduler, "dp_scheduler_decisions_total", type="step_scheduled") == len(STEPS)
    assert _value(scheduler, "dp_scheduler_state_rebuilds_total") >= 1
    scheduler = await _eventually(session, metrics_env["PORT_SCHEDULER"], "dp_scheduler_ticks_total", 1)
    scheduler = await _eventually(
        session, metrics_env["PORT_SCHEDULER"], "dp_scheduler_tasks", 1, status="completed"
    )
    assert _value(scheduler, "dp_scheduler_tasks", status="pending") == 0


async def test_health_server_serves_metrics_only_with_a_registry() -> None:
    registry = CollectorRegistry()
    Counter("dp_probe", "A probe.", registry=registry).inc(3)

    async def ready() -> dict[str, bool]:
        return {"ok": True}

    with_port, without_port = free_port(), free_port()
    async with (
        health_server("probe", with_port, ready, registry),
        health_server("bare", without_port, ready),
        aiohttp.ClientSession() as session,
    ):
        assert _value(await _scrape(session, str(with_port)), "dp_probe_total") == 3
        async with session.get(f"http://127.0.0.1:{without_port}/metrics") as resp:
            assert resp.status == 404
        async with session.get(f"http://127.0.0.1:{without_port}/readyz") as resp:
            assert resp.status == 200

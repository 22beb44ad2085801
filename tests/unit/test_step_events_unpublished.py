"""A step try one of whose events did not reach the broker ends without a terminal event (a transient
error: the step runs again), whatever the executor made of the failed publish; a user's cancel is
still answered."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiormq
import pytest
from pydantic import BaseModel

from services.step_runner.context import RunnerContext
from services.step_runner.execution import EventsNotPublished, execute_step
from services.step_runner.executors.base import StepContext
from shared.events import LogEmitted, StepCancelled, StepFailed, StepSucceeded
from shared.retry import TRANSIENT_ERRORS
from tests.support.runner_context import runner_context


class _Broker:
    """An emit whose log lines fail from the `fail_from`-th on, as a closed channel makes them."""

    def __init__(self, fail_from: int) -> None:
        self.fail_from = fail_from
        self.logs = 0
        self.sent: list[BaseModel] = []

    async def emit(self, payload: BaseModel) -> None:
        if isinstance(payload, LogEmitted):
            self.logs += 1
            if self.logs >= self.fail_from:
                raise aiormq.exceptions.ChannelInvalidStateError("channel closed")
        self.sent.append(payload)


def _ctx(broker: _Broker, tmp_path: Path) -> RunnerContext:
    return runner_context(broker.emit, tmp_path)


class _SwallowsErrors:
    """Logs per table and carries on past a table whose line failed, as the real steps do with errors."""

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        failed = []
        for table in ("a", "b", "c"):
            try:
                await ctx.log("INFO", f"table {table}")
            except Exception:
                failed.append(table)
        return {"tables_failed": failed}


class _Crashes:
    async def run(self, ctx: StepContext) -> dict[str, Any]:
        await ctx.log("INFO", "starting")
        raise AssertionError("unreachable: the log line above fails")


async def _run(executor: Any, broker: _Broker, tmp_path: Path, cancelled: bool = False) -> BaseModel:
    return await execute_step(
        executor,
        _ctx(broker, tmp_path),
        broker.emit,
        runner_id="r1",
        heartbeat_interval=60,
        cancelled=lambda: cancelled,
    )


@pytest.mark.parametrize("executor", [_SwallowsErrors(), _Crashes()], ids=["swallows", "raises"])
async def test_a_try_with_an_unpublished_event_ends_without_a_terminal_event(
    executor: Any, tmp_path: Path
) -> None:
    broker = _Broker(fail_from=1 if isinstance(executor, _Crashes) else 2)
    with pytest.raises(EventsNotPublished) as raised:
        await _run(executor, broker, tmp_path)
    assert isinstance(raised.value, TRANSIENT_ERRORS)  # retried in place, then handed back to the queue
    assert isinstance(raised.value.__cause__, aiormq.exceptions.ChannelInvalidStateError)
    assert not [p for p in broker.sent if isinstance(p, StepSucceeded | StepFailed)]


async def test_a_try_whose_events_all_went_out_ends_as_before(tmp_path: Path) -> None:
    broker = _Broker(fail_from=99)
    terminal = await _run(_SwallowsErrors(), broker, tmp_path)
    assert isinstance(terminal, StepSucceeded) and terminal.summary == {"tables_failed": []}
    assert broker.sent[-1] is terminal


async def test_a_users_cancel_is_answered_even_after_an_unpublished_event(tmp_path: Path) -> None:
    working = asyncio.Event()

    class Waits:
        async def run(self, ctx: StepContext) -> dict[str, Any]:
            try:
                await ctx.log("INFO", "starting")
            except Exception:
                pass
            working.set()
            await asyncio.sleep(60)  # the step's work, until the user's cancel
            return {}

    broker = _Broker(fail_from=1)
    step = asyncio.create_task(_run(Waits(), broker, tmp_path, cancelled=True))
    await working.wait()
    step.cancel()
    assert isinstance(await step, StepCancelled)
    assert isinstance(broker.sent[-1], StepCancelled)

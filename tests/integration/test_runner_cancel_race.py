"""A user's cancel that reaches a runner in the same turn of its loop as the step's order (found by a CI
run: the order stayed unacknowledged, and the runner, its prefetch window full, took no work again).
Against the real RabbitMQ and PostgreSQL, with the runner's own composition root."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from services.step_runner.handlers import StepRunner
from shared.broker import STEPS_KEY, Topology
from shared.events import TaskCancelRequested
from shared.messages import EventEnvelope
from shared.settings import CommonSettings
from tests.support.eventually import eventually
from tests.support.runner_tap import order, runner_and_tap, task_id_of

pytestmark = pytest.mark.integration


class _CancelAsItStarts(dict[str, "asyncio.Task[object]"]):
    """The runner's table of running steps, handling the cancel the moment a step is entered in it:
    after its try was created and before the try's first line runs."""

    def __init__(self, runner: StepRunner, cancel: EventEnvelope) -> None:
        super().__init__()
        self._runner = runner
        self._cancel = cancel

    def __setitem__(self, task_id: str, work: asyncio.Task[object]) -> None:
        super().__setitem__(task_id, work)
        if task_id == self._cancel.task_id:
            # on_control awaits nothing, so one send runs it to the end, inside this same turn.
            handling = self._runner.on_control(self._cancel)
            with contextlib.suppress(StopIteration):
                handling.send(None)


async def test_a_cancel_in_the_same_turn_as_the_order_is_answered_and_the_order_settled(
    own_topology: Topology, test_env: dict[str, str], migrated: CommonSettings, tmp_path: Path
) -> None:
    async with runner_and_tap(own_topology, test_env, tmp_path, "race-runner", runner_concurrency=1) as (
        runner,
        publisher,
        seen,
    ):
        cancel = publisher.envelope(task_id_of("raced"), TaskCancelRequested())
        runner.running = _CancelAsItStarts(runner, cancel)  # type: ignore[assignment]
        await publisher.publish_command(STEPS_KEY, order("raced", fresh=5))
        await eventually(
            lambda: task_id_of("raced") in seen.cancelled, timeout=15, what="the cancel answered"
        )
        # With one order at a time, the next one runs only once the raced order was settled.
        await publisher.publish_command(STEPS_KEY, order("next", fresh=5))
        await eventually(lambda: task_id_of("next") in seen.succeeded, timeout=15, what="the next order run")
        assert task_id_of("raced") not in seen.started | seen.succeeded, (seen.started, seen.succeeded)

"""Step executors that do nothing: `DP_EXECUTOR_REGISTRY=bench.noop_executors:registry` makes a task's four
steps cost only the platform (events, scheduling, storage), which is what bench/bench_e2e.py measures."""

from __future__ import annotations

from typing import Any

from services.step_runner.executors.base import StepContext, StepRegistry
from shared.settings import RunnerSettings
from shared.steps import STEP_ORDER, StepName


class NoopExecutor:
    def __init__(self, name: StepName) -> None:
        self.name = name  # type: ignore[misc]

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        return {}


def registry(settings: RunnerSettings) -> StepRegistry:
    return {step: NoopExecutor(step) for step in STEP_ORDER}  # type: ignore[misc]

"""A StepContext for running executors in tests: records progress, logs and outputs in memory."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from shared.connection_url import HostPolicy
from shared.parameters import TaskParameters
from shared.steps import StepName

T = TypeVar("T")


@dataclass
class RecordingContext:
    task_dir: Path
    parameters: TaskParameters
    db_url: str
    step: StepName = StepName.DDL_GENERATION
    task_id: str = "task_test"
    execution_id: str = "exec_test"
    attempt: int = 1
    progress_calls: list[tuple[float, str | None]] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    outputs: dict[str, dict[str, Any]] = field(default_factory=dict)
    business_db_policy: HostPolicy = field(default_factory=HostPolicy)

    def business_db_url(self) -> str:
        return self.db_url

    async def progress(self, percent: float, message: str | None = None) -> None:
        self.progress_calls.append((percent, message))

    async def log(self, level: str, message: str, **extra: Any) -> None:
        self.logs.append((level, message))

    async def output(
        self,
        relative_path: str,
        *,
        file_type: str | None = None,
        is_primary: bool = False,
        description: str | None = None,
    ) -> None:
        assert (self.task_dir / relative_path).is_file(), relative_path
        self.outputs[relative_path] = {"file_type": file_type, "is_primary": is_primary}

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.to_thread(fn, *args)

    def for_step(self, step: StepName, **changes: Any) -> RecordingContext:
        """The same task, another step (and possibly other parameters)."""
        params = self.parameters.model_copy(update=changes) if changes else self.parameters
        return RecordingContext(self.task_dir, params, self.db_url, step=step, task_id=self.task_id)

    def messages(self, level: str | None = None) -> list[str]:
        return [m for lvl, m in self.logs if level is None or lvl == level]

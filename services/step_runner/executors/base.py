"""The one interface every step executor implements, and the context a runner hands it.

An executor reads the task's parameters and directory, does its step's work, reports through the
context (progress, log lines, output files) and returns a JSON-able summary. It raises StepError for
a failure it understands; anything else is a bug and is reported as a non-retryable failure.
Executors must be idempotent: a step may be re-run after a runner dies (write files atomically,
replace outputs in place, upsert by content hash).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar, Protocol, TypeVar

from shared.connection_url import HostPolicy
from shared.events import FailureCode
from shared.parameters import TaskParameters
from shared.steps import StepName

T = TypeVar("T")


# StepError codes that callers act on (e.g. `dpctl workflow run`'s exit code).
VALIDATION_BELOW_THRESHOLD = FailureCode.VALIDATION_BELOW_THRESHOLD


class StepError(Exception):
    """A step failed for a reason worth showing the user; `retryable` when running it again may help,
    `code` when a caller needs to tell this failure from others without parsing the message."""

    def __init__(self, message: str, *, retryable: bool = False, code: str | None = None) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.code = code


class StepContext(Protocol):
    task_id: str
    step: StepName
    execution_id: str
    attempt: int
    parameters: TaskParameters
    # DP_ALLOWED_DB_HOSTS: pass it to business_db.connect/create_pool, which check it before connecting.
    business_db_policy: HostPolicy

    @property
    def task_dir(self) -> Path:
        """The task's directory (made on first use)."""
        ...

    def business_db_url(self) -> str:
        """The decrypted business-database URL. Never log it: use parameters.db_connection to show it."""
        ...

    async def progress(self, percent: float, message: str | None = None) -> None: ...

    async def log(self, level: str, message: str, **extra: Any) -> None:
        """A log line for this step (goes to the task's log table and data_pipeline.log)."""
        ...

    async def output(
        self,
        relative_path: str,
        *,
        file_type: str | None = None,
        is_primary: bool = False,
        description: str | None = None,
    ) -> None:
        """Register a file the step wrote in the task directory (size and sha256 are computed here)."""
        ...

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run blocking or CPU-heavy work off the event loop."""
        ...


class StepExecutor(Protocol):
    name: ClassVar[StepName]

    async def run(self, ctx: StepContext) -> dict[str, Any]: ...


StepRegistry = dict[StepName, StepExecutor]

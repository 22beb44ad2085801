"""The StepContext a runner hands an executor: it turns progress, log lines and outputs into events."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel

from services.step_runner.executors.base import StepError
from shared.connection_url import HostPolicy
from shared.events import LogEmitted, OutputRegistered, StepProgress
from shared.parameters import TaskParameters
from shared.secrets import SecretBox, SecretError, mask_secrets
from shared.steps import StepName
from shared.vocabulary import LOG_LEVELS

T = TypeVar("T")
Emit = Callable[[BaseModel], Awaitable[None]]
_FILE_TYPES = {".ddl": "ddl", ".md": "md", ".json": "json", ".log": "log", ".txt": "txt", ".sql": "sql"}
_PROGRESS_MIN_INTERVAL = 0.25


def _digest(path: Path) -> tuple[int, str]:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return path.stat().st_size, h.hexdigest()


class RunnerContext:
    def __init__(
        self,
        *,
        emit: Emit,
        task_id: str,
        step: StepName,
        execution_id: str,
        attempt: int,
        task_dir: Path,
        parameters: TaskParameters,
        secrets: SecretBox,
        connections: dict[str, str],
        business_db_policy: HostPolicy | None = None,
    ) -> None:
        self._emit = emit
        self.task_id = task_id
        self.step = step
        self.execution_id = execution_id
        self.attempt = attempt
        self._task_dir = task_dir
        self._task_dir_made = False
        self.parameters = parameters
        self._secrets = secrets
        self._connections = connections
        self.business_db_policy = business_db_policy or HostPolicy()
        self._last_progress = 0.0
        self.unpublished: Exception | None = None  # the first of this try's events that did not go out

    @property
    def task_dir(self) -> Path:
        """The task's directory, made on first use: a step that writes nothing makes none."""
        if not self._task_dir_made:
            self._task_dir.mkdir(parents=True, exist_ok=True)
            self._task_dir_made = True
        return self._task_dir

    def business_db_url(self) -> str:
        p = self.parameters
        if p.db_connection_secret:
            if not self.business_db_policy.allow_adhoc:
                raise StepError(
                    "this runner accepts only named connections (DP_ALLOW_ADHOC_CONNECTIONS=false)"
                )
            try:
                return self._secrets.decrypt(p.db_connection_secret)
            except SecretError as exc:
                raise StepError(str(exc)) from exc
        if p.db_connection_name:
            if p.db_connection_name not in self._connections:
                raise StepError(f"no connection named {p.db_connection_name!r} is configured on the server")
            return self._connections[p.db_connection_name]
        return p.db_connection

    async def _send(self, payload: BaseModel) -> None:
        """Publish one of the executor's events, remembering a failure: an executor may catch it (per
        table, or as its own I/O error), but the try's record is incomplete all the same."""
        try:
            await self._emit(payload)
        except Exception as exc:
            if self.unpublished is None:
                self.unpublished = exc
            raise

    async def progress(self, percent: float, message: str | None = None) -> None:
        now = asyncio.get_running_loop().time()
        percent = max(0.0, min(100.0, float(percent)))
        if percent < 100 and now - self._last_progress < _PROGRESS_MIN_INTERVAL:
            return
        self._last_progress = now
        await self._send(
            StepProgress(
                step=self.step,
                execution_id=self.execution_id,
                percent=percent,
                message=mask_secrets(message) if message else None,
            )
        )

    async def log(self, level: str, message: str, **extra: Any) -> None:
        level = level.upper()
        await self._send(
            LogEmitted(
                level=level if level in LOG_LEVELS else "INFO",  # type: ignore[arg-type]
                message=mask_secrets(message),
                step=self.step,
                execution_id=self.execution_id,
                module=extra.pop("module", None) or self.step.value,
                # The caller's function, as the seed's logging recorded it (funcName).
                function=extra.pop("function", None) or sys._getframe(1).f_code.co_name,
                extra={k: mask_secrets(v) if isinstance(v, str) else v for k, v in extra.items()},
            )
        )

    async def output(
        self,
        relative_path: str,
        *,
        file_type: str | None = None,
        is_primary: bool = False,
        description: str | None = None,
    ) -> None:
        root = self.task_dir.resolve()
        path = (root / relative_path).resolve()
        if root not in path.parents or not path.is_file():
            raise StepError(f"output {relative_path!r} is not a file inside the task directory")
        size, sha256 = await asyncio.to_thread(_digest, path)
        await self._send(
            OutputRegistered(
                step=self.step,
                execution_id=self.execution_id,
                file_name=path.name,
                file_type=file_type or _FILE_TYPES.get(path.suffix.lower(), "other"),
                relative_path=str(path.relative_to(root)),
                size=size,
                sha256=sha256,
                is_primary=is_primary,
                description=description,
            )
        )

    async def run_blocking(self, fn: Callable[..., T], *args: Any) -> T:
        """Run `fn` in a thread. A thread cannot be interrupted, so a cancelled step waits for it: the
        terminal event must be the step's last act (after it the task directory may be deleted)."""
        work = asyncio.ensure_future(asyncio.to_thread(fn, *args))
        try:
            return await asyncio.shield(work)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await work
            raise

"""The runner's step context: work it hands to a thread cannot outlive the step; the task directory."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from pydantic import BaseModel

from services.step_runner.context import RunnerContext
from services.step_runner.executors.base import StepError
from shared.connection_url import HostPolicy
from shared.parameters import TaskParameters
from shared.secrets import SecretBox
from shared.steps import StepName
from tests.support.runner_context import runner_context


async def test_a_cancelled_step_ends_only_after_its_thread_work(tmp_path: Path) -> None:
    # A cancel (or delete) ends the step with a terminal event; the collector may remove the task directory
    # right after. A thread still writing at that point would recreate the directory of a deleted task.
    async def emit(_: BaseModel) -> None:
        return None

    ctx = runner_context(emit, tmp_path)
    entered = threading.Event()

    def slow_write() -> None:
        entered.set()
        threading.Event().wait(0.3)
        (tmp_path / "late.txt").write_text("written by the thread")

    step = asyncio.create_task(ctx.run_blocking(slow_write))
    assert await asyncio.to_thread(entered.wait, 5)
    step.cancel()
    await asyncio.gather(step, return_exceptions=True)
    assert step.cancelled()
    assert (tmp_path / "late.txt").exists(), "the step ended while its thread was still writing"


def test_a_runner_without_adhoc_connections_refuses_a_callers_url(tmp_path: Path) -> None:
    """DP_ALLOW_ADHOC_CONNECTIONS=false holds in the runner too, not only in the gateway."""

    async def emit(_: BaseModel) -> None:
        return None

    box = SecretBox(Fernet.generate_key())
    params = TaskParameters(
        db_connection="postgresql://u:***@h/db",
        db_connection_secret=box.encrypt("postgresql://u:pw@h/db"),
        business_context="x",
    )

    def context(policy: HostPolicy) -> RunnerContext:
        return RunnerContext(
            emit=emit,
            task_id="task_20240101_000000_abc",
            step=StepName.DDL_GENERATION,
            execution_id="e1",
            attempt=1,
            task_dir=tmp_path,
            parameters=params,
            secrets=box,
            connections={},
            business_db_policy=policy,
        )

    assert context(HostPolicy()).business_db_url() == "postgresql://u:pw@h/db"
    with pytest.raises(StepError, match="only named connections"):
        context(HostPolicy(allow_adhoc=False)).business_db_url()


def test_the_task_directory_is_made_on_first_use(tmp_path: Path) -> None:
    # A step that writes nothing makes no directory (a syscall per step saved); one that asks for the
    # directory gets it made, nested levels included, however often it asks.
    async def emit(_: BaseModel) -> None:
        return None

    directory = tmp_path / "tasks" / "task_20240101_000000_abc"
    ctx = runner_context(emit, directory)
    assert not directory.exists()
    assert ctx.task_dir == directory and directory.is_dir()
    (directory / "ddl.sql").write_text("x")
    assert ctx.task_dir == directory and (directory / "ddl.sql").read_text() == "x"

"""A step runner's context for tests of one step's run, outside any broker."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from cryptography.fernet import Fernet

from services.step_runner.context import Emit, RunnerContext
from shared.parameters import TaskParameters
from shared.secrets import SecretBox
from shared.steps import StepName


def runner_context(emit: Emit, task_dir: Path, **values: Any) -> RunnerContext:
    """Step 1's first execution of a task whose events go to `emit`; `values` override the rest."""
    return RunnerContext(
        **{
            "emit": emit,
            "task_id": "task_20240101_000000_abc",
            "step": StepName.DDL_GENERATION,
            "execution_id": "e1",
            "attempt": 1,
            "task_dir": task_dir,
            "parameters": TaskParameters(db_connection="postgresql://u@h/db", business_context="x"),
            "secrets": SecretBox(Fernet.generate_key()),
            "connections": {},
            **values,
        }
    )

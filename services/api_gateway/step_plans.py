"""Step ranges in requests (`from_step`/`to_step`, `single_step`), the first step's inputs, and the
plan a task's detail shows.

The gateway only reads and checks what was asked; which steps run is the scheduler domain's decision
(services/scheduler/plans.py `plan`), carried back in TaskCreated/TaskRerunRequested.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.api_gateway.errors import Conflict, InvalidParams
from shared.parameters import TaskParameters
from shared.steps import STEP_ORDER, StepName, missing_inputs, parse_step, step_number


def step_ref(value: int | str | None, field: str) -> StepName | None:
    """A step named by number or name (the earlier implementation's names too); 400 naming `field`."""
    if value is None:
        return None
    try:
        return parse_step(value)
    except ValueError:
        raise InvalidParams(
            f"{field} must be a step number 1-{len(STEP_ORDER)} or a step name "
            f"({', '.join(s.value for s in STEP_ORDER)}), got {str(value)[:50]!r}",
            invalid=[field],
        ) from None


def step_range(from_value: int | str | None, to_value: int | str | None) -> tuple[StepName, StepName] | None:
    """(first, last) of a requested range (a missing end defaults to the workflow's end), or None."""
    first, last = step_ref(from_value, "from_step"), step_ref(to_value, "to_step")
    if first is None and last is None:
        return None
    first, last = first or STEP_ORDER[0], last or STEP_ORDER[-1]
    if step_number(first) > step_number(last):
        raise InvalidParams(
            f"from_step {step_number(first)} ({first.value}) comes after to_step {step_number(last)} "
            f"({last.value})",
            invalid=["from_step", "to_step"],
        )
    return first, last


def first_step(parameters: TaskParameters) -> StepName:
    if parameters.execution_mode == "single":
        return STEP_ORDER[(parameters.single_step or 1) - 1]
    return STEP_ORDER[(parameters.from_step or 1) - 1]


def require_inputs(step: StepName, directory: Path, parameters: Mapping[str, Any] | None = None) -> None:
    """409 naming what the first step of a run needs in the task directory and lacks.

    Step 1 needs its table list: the names in the parameters, or the table-list file in the directory.
    """
    missing = missing_inputs(step, directory)
    if step is StepName.DDL_GENERATION and parameters is not None and not parameters.get("table_list"):
        file_name = parameters.get("table_list_file")
        if not isinstance(file_name, str) or not (directory / file_name).is_file():
            missing.append(f"{file_name or 'table_list.txt'} (give the task its table list first)")
    if missing:
        raise Conflict(
            f"step {step_number(step)} ({step.value}) cannot run: its inputs are missing: "
            + ", ".join(missing),
            extra={"missing_inputs": missing, "step": step.value},
        )


def plan_view(step_status: Mapping[str, str], step_stats: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each step of the workflow: whether the task's current run covers it, and if not, why."""
    planned = step_stats.get("plan") or [s.value for s in STEP_ORDER]
    skipped = step_stats.get("skipped") or {}
    view = []
    for step in STEP_ORDER:
        reason = skipped.get(step.value)
        if reason is None and step.value not in planned:
            reason = "not in this run's plan"
        view.append(
            {
                "step": step.value,
                "step_number": step_number(step),
                "runs": reason is None,
                "status": step_status.get(step.value, "pending"),
                "reason": reason,
            }
        )
    return view

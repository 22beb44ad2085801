"""Which steps a run covers and with which parameters: pure functions of a task's parameters.

The plan a task is created with (`plan_for`), a re-run's plan (`plan`), why the other steps are left
out (`skip_reasons`, `step_disabled_reason`), and the parameters a re-run changes (`rerun_parameters`,
`run_options`). The gateway checks requests against the same rules (services/api_gateway/step_plans.py).
"""

from __future__ import annotations

from shared.events import TaskRerunRequested
from shared.parameters import TaskParameters
from shared.steps import step_by_number, step_number
from shared.vocabulary import STEP_ORDER, StepName


def step_disabled_reason(parameters: TaskParameters, step: StepName) -> str | None:
    """Complete mode skips steps turned off by parameters; single mode runs what was asked."""
    if parameters.execution_mode != "complete":
        return None
    if step is StepName.SQL_VALIDATION and not parameters.enable_sql_validation:
        return "disabled by enable_sql_validation=false"
    if step is StepName.TRAINING_LOAD and not parameters.enable_training_data_load:
        return "disabled by enable_training_data_load=false"
    return None


def plan(
    execution_mode: str,
    step: StepName | None = None,
    *,
    first: StepName | None = None,
    last: StepName | None = None,
) -> list[StepName]:
    """The steps a run covers: in complete mode the range `first`..`last` (default: every step), in
    single mode the one asked for (default the first; single is the range from = to).

    Raises ValueError when `first` comes after `last`.
    """
    if execution_mode != "complete":
        return [step or first or STEP_ORDER[0]]
    lo = step_number(first) if first else 1
    hi = step_number(last) if last else len(STEP_ORDER)
    if lo > hi:
        raise ValueError(
            f"from_step {lo} ({STEP_ORDER[lo - 1].value}) comes after to_step {hi} ({STEP_ORDER[hi - 1].value})"
        )
    return list(STEP_ORDER[lo - 1 : hi])


def plan_for(parameters: TaskParameters) -> list[StepName]:
    """The plan a task is created with, from its parameters (single_step, or from_step..to_step)."""
    if parameters.execution_mode == "single":
        return plan("single", step_by_number(parameters.single_step or parameters.from_step or 1))
    return plan(
        "complete",
        first=step_by_number(parameters.from_step) if parameters.from_step else None,
        last=step_by_number(parameters.to_step) if parameters.to_step else None,
    )


def skip_reasons(parameters: TaskParameters, steps: list[StepName]) -> dict[StepName, str]:
    """Why each step of the workflow that a run with this plan does not do is left out.

    Steps outside the plan are not run at all; steps in it that parameters disable are skipped when
    their turn comes (`step_disabled_reason`), and are named here too so the plan shows it up front.
    """
    reasons: dict[StepName, str] = {}
    planned = [step_number(s) for s in steps]
    for s in STEP_ORDER:
        if s not in steps:
            if parameters.execution_mode == "single" and len(steps) == 1:
                reasons[s] = f"single mode runs step {planned[0]} ({steps[0].value}) only"
            else:
                reasons[s] = f"outside the requested range: steps {planned[0]}-{planned[-1]}"
        elif disabled := step_disabled_reason(parameters, s):
            reasons[s] = disabled
    return reasons


def rerun_parameters(
    parameters: TaskParameters, execution_mode: str, steps: list[StepName]
) -> TaskParameters:
    """A task's parameters for a run of `steps` in `execution_mode` (what TaskRerunRequested changes)."""
    single = execution_mode == "single" and len(steps) == 1
    whole = single or list(steps) == list(STEP_ORDER)
    return parameters.model_copy(
        update={
            "execution_mode": execution_mode,
            "single_step": step_number(steps[0]) if single else None,
            "from_step": None if whole else step_number(steps[0]),
            "to_step": None if whole else step_number(steps[-1]),
        }
    )


def run_options(parameters: TaskParameters, event: TaskRerunRequested, *, first_run: bool) -> TaskParameters:
    """The training-store options of a run: as the execute says; else, on a waiting task's first run,
    as its create said, and on a re-run off (removing or copying the store is asked for each time)."""

    def option(given: bool | None, created: bool) -> bool:
        return given if given is not None else (created and first_run)

    return parameters.model_copy(
        update={
            "wait_for_execute": False,
            "backup_vector_tables": option(event.backup_vector_tables, parameters.backup_vector_tables),
            "truncate_vector_tables": option(event.truncate_vector_tables, parameters.truncate_vector_tables),
        }
    )

"""The platform's vocabulary: the one home of every status, level and step name.

Everything that names a task status, a step status, a log level or a step imports it from here, so
adding a status (or a level) is a change in one place that type checking carries everywhere.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Literal, get_args


class StepName(StrEnum):
    DDL_GENERATION = "ddl_generation"
    QA_GENERATION = "qa_generation"
    SQL_VALIDATION = "sql_validation"
    TRAINING_LOAD = "training_load"


STEP_ORDER: tuple[StepName, ...] = (
    StepName.DDL_GENERATION,
    StepName.QA_GENERATION,
    StepName.SQL_VALIDATION,
    StepName.TRAINING_LOAD,
)

# ---- tasks ----------------------------------------------------------------------------------------

FinalTaskStatus = Literal["completed", "partial_completed", "failed", "cancelled"]
"""How a task ends (TaskFinished.status)."""
TaskStatus = Literal[
    "pending", "in_progress", "awaiting_review", "partial_completed", "completed", "failed", "cancelled"
]
"""`awaiting_review`: steps 1-3 are done and a person decides which pairs step 4 loads (no step runs)."""

TASK_STATUSES: tuple[str, ...] = get_args(TaskStatus)
FINAL_TASK_STATUSES: tuple[str, ...] = get_args(FinalTaskStatus)
TASK_TERMINAL: frozenset[str] = frozenset(get_args(FinalTaskStatus))
TASK_MOVING: frozenset[str] = frozenset({"pending", "in_progress"})
"""A task in one of these statuses moves on by itself; in any other it has finished or waits for a person
(what `GET /tasks/{id}?wait=` and `dpctl task wait` wait for)."""
TASK_SUCCEEDED: frozenset[str] = frozenset({"completed", "partial_completed"})
"""Terminal statuses in which the task did its job, perhaps in part (exit code 0 for followers)."""

# ---- steps ----------------------------------------------------------------------------------------

StepStatus = Literal[
    "pending", "scheduled", "running", "waiting_retry", "completed", "failed", "skipped", "cancelled"
]
"""A step's status in the scheduler's state; the read model shows the same words."""

STEP_STATUSES: tuple[str, ...] = get_args(StepStatus)
STEP_DONE: frozenset[str] = frozenset({"completed", "failed", "skipped", "cancelled"})
STEP_ACTIVE: frozenset[str] = frozenset({"scheduled", "running"})

# ---- log levels -----------------------------------------------------------------------------------

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

LOG_LEVELS: tuple[str, ...] = get_args(LogLevel)
LEVEL_NUMBERS: dict[str, int] = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
"""The `logging` module's numbers, for "this level or above" filters."""

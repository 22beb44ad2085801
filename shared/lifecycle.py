"""The two lifecycle rules, written once for both sides of the event store.

The scheduler folds events into its in-memory state (services/scheduler/state.py) and the collector
projects them into the read models (services/log_collector/projections.py); both must agree on which
late or stray event changes nothing, or the scheduler and the API tell different stories:

1. A finished state never moves back: a finished task ignores step events, a finished step or
   execution ignores later outcomes. Only an explicit re-run (`task_rerun_requested`) opens a
   finished task again, and it says so itself.
2. An old execution is ignored: an event naming an execution other than the step's current one (a
   retry or a re-run superseded it) changes nothing.

Pure functions of statuses and ids; no I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from shared.vocabulary import STEP_DONE, TASK_TERMINAL

TASK_FINISHED: frozenset[str] = TASK_TERMINAL
STEP_FINISHED: frozenset[str] = STEP_DONE
EXECUTION_FINISHED: frozenset[str] = frozenset({"completed", "failed", "cancelled"})
"""An execution row's final statuses (data_pipeline_task_executions.status)."""


def task_finished(status: str | None) -> bool:
    """Rule 1 for tasks: a task in one of these statuses takes no step event any more."""
    return status in TASK_FINISHED


def step_finished(status: str | None) -> bool:
    """Rule 1 for steps (scheduler state and read model alike)."""
    return status in STEP_FINISHED


def execution_finished(status: str | None) -> bool:
    """Rule 1 for executions: a finished execution row keeps its outcome."""
    return status in EXECUTION_FINISHED


def is_old_execution(current: str | None, incoming: str | None) -> bool:
    """Rule 2: does an event of execution `incoming` belong to another execution than the step's `current`?

    An event without an execution id (a skip, a retry decision) and a step without a known execution
    are never "old": the other rule (finished states) decides for them.
    """
    return incoming is not None and current is not None and incoming != current


@dataclass(frozen=True)
class Finished:
    """A finished task as retention sees it: when it finished, and what retention already removed since."""

    task_id: str
    finished_at: datetime
    logs_purged: bool = False
    files_cleaned: bool = False

"""Commands: requests for the scheduler to decide on, and the step work it hands to runners."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.parameters import TaskParameters
from shared.steps import StepName


class _Command(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CreateTask(_Command):
    type: Literal["create_task"] = "create_task"
    task_type: str = "complete_workflow"
    parameters: TaskParameters
    created_by: str = "api"


class ExecuteTask(_Command):
    """Run an existing task again: the whole workflow, a range of its steps, or one step."""

    type: Literal["execute_task"] = "execute_task"
    execution_mode: Literal["complete", "single"]
    step: StepName | None = None
    # Complete mode only: the first and last step of the range (default: the whole workflow).
    from_step: StepName | None = None
    to_step: StepName | None = None
    force: bool = False
    # Step 4 of this run backs up / removes the database's training rows first (None: as the task says).
    backup_vector_tables: bool | None = None
    truncate_vector_tables: bool | None = None


class CancelTask(_Command):
    type: Literal["cancel_task"] = "cancel_task"
    reason: str = "cancelled by user"


class DeleteTask(_Command):
    type: Literal["delete_task"] = "delete_task"


class CompleteReview(_Command):
    """A task awaiting review resumes: step 4 loads the approved pairs (the gateway rewrote the files)."""

    type: Literal["complete_review"] = "complete_review"
    actor: str
    actor_role: str
    approved: int = Field(ge=0)
    rejected: int = Field(ge=0)
    undecided: int = Field(ge=0)
    edited: int = Field(ge=0)


class AbandonReview(_Command):
    """A task awaiting review ends without loading anything."""

    type: Literal["abandon_review"] = "abandon_review"
    actor: str
    actor_role: str


class Tick(_Command):
    """The scheduler's clock: replicas publish it to their own queue, so only the active one acts."""

    type: Literal["tick"] = "tick"


class RunStep(_Command):
    type: Literal["run_step"] = "run_step"
    step: StepName
    execution_id: str
    attempt: int = Field(ge=1)
    parameters: TaskParameters
    force: bool = False
    # LLM tokens the run's earlier executions spent, so the runner can hold the task to max_llm_tokens.
    llm_tokens_used: int = Field(default=0, ge=0)
    # For this long after the envelope's issued_at no decision of the scheduler can end the execution but
    # a cancel or a delete, which the runners hear directly: a runner may start it without asking the
    # store whether it is still wanted (services/step_runner/freshness.py). 0: always ask.
    fresh_seconds: float = Field(default=0.0, ge=0, le=60)


CommandPayload = Annotated[
    CreateTask | ExecuteTask | CancelTask | DeleteTask | CompleteReview | AbandonReview | Tick | RunStep,
    Field(discriminator="type"),
]

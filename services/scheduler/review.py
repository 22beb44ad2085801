"""Review before load (parameter review_before_load): the scheduler's rules, pure like domain.py.

Before step 4 of such a run the task waits as `awaiting_review`: no step runs, so it is no zombie, is not
timed out by DP_TASK_TIMEOUT_HOURS (the time in review is not counted) and not counted against
DP_MAX_CONCURRENT_TASKS. A completed review resumes the run at step 4, which loads the approved pairs (the
gateway rewrote the pair files from the decisions). An abandoned review skips step 4 and ends the task:
`cancelled` when a person abandoned it, `failed` when it waited longer than DP_REVIEW_TIMEOUT_DAYS.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel

from services.scheduler.state import Policy, TaskState, finished
from shared.commands import AbandonReview, CompleteReview
from shared.events import LogEmitted, ReviewAbandoned, ReviewCompleted, ReviewRequested, StepSkipped
from shared.vocabulary import StepName


def needs_review(state: TaskState, step: StepName) -> bool:
    """Step 4 of a run with review_before_load waits for a review; one review per run."""
    return step is StepName.TRAINING_LOAD and state.parameters.review_before_load and state.review is None


def _days(period: timedelta | None) -> float | None:
    return None if period is None else period.total_seconds() / 86400


def request(policy: Policy) -> ReviewRequested:
    return ReviewRequested(timeout_days=_days(policy.review_timeout))


def while_in_review(state: TaskState, now: datetime, policy: Policy) -> list[BaseModel]:
    """What happens to a task awaiting review: nothing until it is decided or times out; an abandoned
    review skips step 4, then ends the task."""
    review = state.review
    if review is None:
        return []
    if review.abandoned is not None:
        if state.step(StepName.TRAINING_LOAD).status == "pending":
            return [StepSkipped(step=StepName.TRAINING_LOAD, reason=review.abandoned)]
        return [finished(state, "failed" if review.timed_out else "cancelled", review.abandoned)]
    timeout = policy.review_timeout
    if review.open and timeout is not None and now - review.requested_at > timeout:
        reason = (
            f"review not completed within DP_REVIEW_TIMEOUT_DAYS={_days(timeout):g} "
            f"(requested {review.requested_at.isoformat()}): nothing loaded"
        )
        return [ReviewAbandoned(reason=reason, timed_out=True)]
    return []


def decide_review(state: TaskState | None, command: CompleteReview | AbandonReview) -> list[BaseModel]:
    """A person completes or abandons the review of a task that awaits one; anything else is ignored."""
    if state is None or state.deleted:
        return []
    if state.status != "awaiting_review" or state.review is None or not state.review.open:
        message = f"{command.type} ignored: the task is {state.status}, not awaiting review"
        return [LogEmitted(level="WARNING", message=message, module="scheduler", function="decide")]
    if isinstance(command, CompleteReview):
        counts = command.model_dump(include={"approved", "rejected", "undecided", "edited"})
        return [ReviewCompleted(actor=command.actor, actor_role=command.actor_role, **counts)]
    reason = f"review abandoned by {command.actor} ({command.actor_role}): nothing loaded"
    return [ReviewAbandoned(reason=reason, actor=command.actor, actor_role=command.actor_role)]

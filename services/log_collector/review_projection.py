"""Review before load in the read models: the task's `awaiting_review` status and data_pipeline.pair_reviews
(migration 0006), one row per decided pair of the task's current review, from the review events.

Handlers in the projector's style (services/log_collector/projections.py registers REVIEW_HANDLERS):
every value comes from the event, a redelivered or replayed event changes nothing, and a finished task
takes no review event.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared import events as ev
from shared.lifecycle import task_finished
from shared.messages import EventEnvelope

if TYPE_CHECKING:
    from services.log_collector.projections import Projector


async def on_review_requested(p: Projector, env: EventEnvelope, e: ev.ReviewRequested, seq: int) -> None:
    task = await p._task(env.task_id)
    if task is None or task_finished(task["status"]):
        return
    # A new review (a re-run) starts with no decision.
    await p.conn.execute(
        "DELETE FROM pair_reviews WHERE task_id = $1 AND last_event_seq < $2", env.task_id, seq
    )
    await p._save_task(env.task_id, seq, env, status="awaiting_review", current_step=None)
    await _line(p, env, seq, "INFO", "awaiting review: approve the question/SQL pairs to load, then complete")


async def on_pair_reviewed(p: Projector, env: EventEnvelope, e: ev.PairReviewed, seq: int) -> None:
    task = await p._task(env.task_id)
    if task is None or task["status"] != "awaiting_review":
        return
    edited = e.question_after != e.question_before or e.sql_after != e.sql_before
    await p.conn.execute(
        """
        INSERT INTO pair_reviews (task_id, pair_id, status, decision, question, sql, edited, sql_valid,
            sql_error, actor, actor_role, reviewed_at, last_event_seq)
        VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
        ON CONFLICT (task_id, pair_id) DO UPDATE SET
            status = EXCLUDED.status, decision = EXCLUDED.decision, question = EXCLUDED.question,
            sql = EXCLUDED.sql, edited = pair_reviews.edited OR EXCLUDED.edited,
            sql_valid = EXCLUDED.sql_valid, sql_error = EXCLUDED.sql_error, actor = EXCLUDED.actor,
            actor_role = EXCLUDED.actor_role, reviewed_at = EXCLUDED.reviewed_at,
            last_event_seq = EXCLUDED.last_event_seq
        WHERE pair_reviews.last_event_seq < EXCLUDED.last_event_seq
        """,
        env.task_id,
        e.pair_id,
        e.status,
        e.decision,
        e.question_after,
        e.sql_after,
        edited,
        e.sql_valid,
        e.sql_error,
        e.actor,
        e.actor_role,
        env.occurred_at,
        seq,
    )


async def on_review_completed(p: Projector, env: EventEnvelope, e: ev.ReviewCompleted, seq: int) -> None:
    task = await p._task(env.task_id)
    if task is None or task["status"] != "awaiting_review":
        return
    await p._save_task(env.task_id, seq, env, status="in_progress")
    message = (
        f"review completed by {e.actor} ({e.actor_role}): {e.approved} approved ({e.edited} edited), "
        f"{e.rejected} rejected, {e.undecided} undecided; step 4 loads the approved pairs"
    )
    await _line(p, env, seq, "INFO", message)


async def on_review_abandoned(p: Projector, env: EventEnvelope, e: ev.ReviewAbandoned, seq: int) -> None:
    task = await p._task(env.task_id)
    if task is None or task["status"] != "awaiting_review":
        return
    await _line(p, env, seq, "WARNING", e.reason)


async def _line(p: Projector, env: EventEnvelope, seq: int, level: str, message: str) -> None:
    await p._insert_log(
        env,
        seq,
        execution_id=None,
        level=level,
        message=message,
        step_name=None,
        module="review",
        function=env.type,
        extra={},
    )


REVIEW_HANDLERS: dict[type[Any], Any] = {
    ev.ReviewRequested: on_review_requested,
    ev.PairReviewed: on_pair_reviewed,
    ev.ReviewCompleted: on_review_completed,
    ev.ReviewAbandoned: on_review_abandoned,
}
"""What each review event does to the read models (part of the projector's HANDLERS)."""

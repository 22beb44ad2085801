"""Running one step execution: started, heartbeats while it works, then exactly one terminal event.

Shared by the runner service and by manual (command-line) runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

from pydantic import BaseModel

from services.step_runner.context import RunnerContext
from services.step_runner.executors.base import StepError, StepExecutor
from shared.broker import RequeueMessage
from shared.events import (
    FailureCode,
    StepCancelled,
    StepFailed,
    StepHeartbeat,
    StepStarted,
    StepSucceeded,
)
from shared.llm_usage import LlmBudgetExceeded, UsageMeter, metering
from shared.logging import get_logger
from shared.secrets import mask_secrets

log = get_logger()
Emit = Callable[[BaseModel], Awaitable[None]]


class StepInterrupted(RequeueMessage):
    """The runner is shutting down, or the broker took the step's delivery back: the step is left
    unfinished so its command is redelivered."""


class EventsNotPublished(ConnectionError):
    """A log line, progress or output of the try did not reach the broker: the try ends without a
    terminal event (its record would be incomplete, and the executor did not fail) and, as a transient
    error, the step runs again: in place, or from its redelivery when the broker took it back."""


async def _heartbeats(emit: Emit, ctx: RunnerContext, runner_id: str, interval: float) -> None:
    while True:
        await asyncio.sleep(interval)
        try:
            await emit(StepHeartbeat(step=ctx.step, execution_id=ctx.execution_id, runner_id=runner_id))
        except Exception as exc:
            log.warning("heartbeat not published", error=repr(exc))


def _failure(ctx: RunnerContext, exc: Exception, meter: UsageMeter, runner_id: str) -> StepFailed:
    """The StepFailed for an exception out of the executor (a budget crossed wins over what it became)."""
    usage = meter.usage()
    if meter.exceeded:
        return StepFailed(
            step=ctx.step,
            execution_id=ctx.execution_id,
            error=meter.exceeded,
            retryable=False,
            runner_id=runner_id,
            code=FailureCode.LLM_BUDGET_EXCEEDED,
            llm_usage=usage,
        )
    if isinstance(exc, StepError):
        return StepFailed(
            step=ctx.step,
            execution_id=ctx.execution_id,
            error=mask_secrets(str(exc)),
            retryable=exc.retryable,
            runner_id=runner_id,
            code=exc.code,
            llm_usage=usage,
        )
    log.exception("step executor crashed", step=ctx.step.value, task_id=ctx.task_id)
    return StepFailed(
        step=ctx.step,
        execution_id=ctx.execution_id,
        error=mask_secrets(f"{type(exc).__name__}: {exc}"),
        retryable=False,
        runner_id=runner_id,
        llm_usage=usage,
    )


async def execute_step(
    executor: StepExecutor,
    ctx: RunnerContext,
    emit: Emit,
    *,
    runner_id: str,
    heartbeat_interval: float,
    cancelled: Callable[[], bool],
    meter: UsageMeter | None = None,
) -> BaseModel:
    """Runs the executor and returns the terminal event it emitted.

    A CancelledError means either a user cancel (`cancelled()` is true: StepCancelled is emitted) or a
    shutdown or lost delivery (StepInterrupted is raised and nothing terminal is emitted). When one of the
    executor's events was not published, EventsNotPublished is raised instead of any terminal event
    (unless the user cancelled: the cancel is still answered). Every LLM call the executor makes
    is recorded in `meter` and reported on the terminal event; a crossed token budget fails the step for
    good, whatever the executor made of the exception (some catch errors per table or per pair).
    """
    meter = meter or UsageMeter()
    await emit(
        StepStarted(step=ctx.step, execution_id=ctx.execution_id, attempt=ctx.attempt, runner_id=runner_id)
    )
    beat = asyncio.create_task(_heartbeats(emit, ctx, runner_id, heartbeat_interval))
    terminal: BaseModel | None = None
    try:
        with metering(meter):
            summary = await executor.run(ctx)
        if meter.exceeded:
            raise LlmBudgetExceeded(meter.exceeded)
        terminal = StepSucceeded(
            step=ctx.step, execution_id=ctx.execution_id, summary=summary or {}, llm_usage=meter.usage()
        )
    except asyncio.CancelledError:
        if not cancelled():
            raise StepInterrupted(f"{ctx.step.value} interrupted") from None
        terminal = StepCancelled(step=ctx.step, execution_id=ctx.execution_id, reason="cancelled by user")
    except Exception as exc:
        if ctx.unpublished is None:
            terminal = _failure(ctx, exc, meter, runner_id)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    if ctx.unpublished is not None and not isinstance(terminal, StepCancelled):
        raise EventsNotPublished(
            f"{ctx.step.value}: an event of this try was not published ({ctx.unpublished!r})"
        ) from ctx.unpublished
    assert terminal is not None
    if isinstance(terminal, StepFailed):
        with contextlib.suppress(Exception):
            await ctx.log("ERROR", f"{ctx.step.value} failed: {terminal.error}")
    await emit(terminal)
    return terminal

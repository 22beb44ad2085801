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
    """The runner is shutting down: the step is left unfinished so its command is redelivered."""


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
    shutdown (StepInterrupted is raised and nothing terminal is emitted). Every LLM call the executor makes
    is recorded in `meter` and reported on the terminal event; a crossed token budget fails the step for
    good, whatever the executor made of the exception (some catch errors per table or per pair).
    """
    meter = meter or UsageMeter()
    await emit(
        StepStarted(step=ctx.step, execution_id=ctx.execution_id, attempt=ctx.attempt, runner_id=runner_id)
    )
    beat = asyncio.create_task(_heartbeats(emit, ctx, runner_id, heartbeat_interval))
    terminal: BaseModel
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
            raise StepInterrupted(f"{ctx.step.value} interrupted by runner shutdown") from None
        terminal = StepCancelled(step=ctx.step, execution_id=ctx.execution_id, reason="cancelled by user")
    except Exception as exc:
        terminal = _failure(ctx, exc, meter, runner_id)
    finally:
        beat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beat
    if isinstance(terminal, StepFailed):
        with contextlib.suppress(Exception):
            await ctx.log("ERROR", f"{ctx.step.value} failed: {terminal.error}")
    await emit(terminal)
    return terminal

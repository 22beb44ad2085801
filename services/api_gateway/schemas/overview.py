"""`data` of GET /api/v0/system/overview: runners, running steps, queues and the collector's lag."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class RunnerSeen(BaseModel):
    runner_id: str
    last_seen: datetime = Field(description="Its latest step event: start, heartbeat, progress or end.")
    running_steps: int


class RunningStep(BaseModel):
    task_id: str
    step: str
    execution_id: str
    attempt: int
    runner_id: str | None
    started_at: datetime | None
    progress: int = Field(ge=0, le=100)
    last_heartbeat_at: datetime | None


class QueueDepth(BaseModel):
    name: str
    messages: int = Field(ge=0, description="Ready messages (not yet delivered to a consumer).")
    consumers: int = Field(ge=0)


class SystemOverview(BaseModel):
    runners: list[RunnerSeen] = Field(
        description="Runners with a step event in the last `runners_window_seconds` or a step running now,"
        " most recently seen first. An idle runner without a recent step shows only as a consumer of the"
        " steps queue."
    )
    runners_window_seconds: float
    running_steps: list[RunningStep] = Field(description="Oldest first; at most `running_steps_limit`.")
    running_steps_limit: int
    running_steps_truncated: bool
    queues: list[QueueDepth] | None = Field(
        description="The work queues as the broker reports them; null when it did not answer in time"
        " (`queues_error` says why)."
    )
    queues_error: str | None = None
    collector_lag_seconds: float | None = Field(
        description="Age of the oldest accepted task the collector has not recorded yet (0: none waiting);"
        " null when it could not be measured."
    )
    generated_at: datetime

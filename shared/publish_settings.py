"""The step runner's broker deadlines, mixed into RunnerSettings (shared/settings.py) like its own fields:
DP_RUNNER_PUBLISH_TIMEOUT_SECONDS, DP_RUNNER_TRANSIENT_BUDGET_SECONDS."""

from __future__ import annotations

from pydantic import BaseModel, Field

PUBLISH_TIMEOUT = 30.0
"""Every Publisher's deadline unless given another (shared/broker.py)."""


class RunnerPublishSettings(BaseModel):
    runner_publish_timeout_seconds: float = Field(
        default=PUBLISH_TIMEOUT,
        gt=0,
        description="Longest wait for one publish of a runner (a reconnected channel, the write, the confirm);"
        " past it the publish fails as a transient error. Other services' publishes have the same 30 s deadline"
        " (the gateway answers 503 sooner, after DP_PUBLISH_TIMEOUT_SECONDS).",
    )
    runner_transient_budget_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How long a runner retries a step in place after a transient failure (database or broker"
        " unreachable, a publish past its deadline) before handing it back to the queue; a step may stay one"
        " more try (its run and publishes) past it. A step whose connection the broker dropped is handed back"
        " at once.",
    )

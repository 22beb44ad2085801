"""`GET /api/v0/system/overview`: is anything stuck? Connected runners, running steps, work-queue depths
and the collector's lag in one answer, for the UI's live panel (no RabbitMQ console needed).

Its cost is bounded whatever the history holds (adapters/overview.py), and it answers in about
`QUEUES_DEADLINE_SECONDS` at worst: the broker is asked in parallel with the database, and a broker
that is down or slow gives `"queues": null` with `queues_error` instead of a slow or failed answer.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import aio_pika
from aiohttp import web

from services.api_gateway.adapters import accepted
from services.api_gateway.adapters.broker import GatewayBroker
from services.api_gateway.adapters.overview import (
    RUNNING_STEPS_LIMIT,
    queue_states,
    recent_runners,
    running_steps,
)
from services.api_gateway.envelope import ok
from services.api_gateway.keys import BROKER, POOL, SETTINGS
from services.api_gateway.schemas.overview import QueueDepth, RunnerSeen, RunningStep, SystemOverview
from services.api_gateway.spec import RouteSpec
from shared.logging import get_logger
from shared.secrets import mask_secrets

SYSTEM = "/api/v0/system"
QUEUES_DEADLINE_SECONDS = 1.0
# A runner that started no step for this long and runs none drops off the list.
RUNNERS_WINDOW_SECONDS = 900.0


async def _queues(broker: GatewayBroker) -> tuple[list[QueueDepth] | None, str | None]:
    if not broker.is_ready():
        return None, "the gateway's broker connection is closed (reconnecting)"
    try:
        states = await asyncio.wait_for(
            queue_states(broker.connection, broker.topology), QUEUES_DEADLINE_SECONDS
        )
    except TimeoutError:
        return None, f"the broker did not answer within {QUEUES_DEADLINE_SECONDS:g} s"
    except (aio_pika.exceptions.AMQPError, OSError) as exc:
        get_logger().warning("queue depths unavailable", error=mask_secrets(repr(exc)))
        return None, f"the broker refused the queue query ({type(exc).__name__})"
    return [QueueDepth(name=s.name, messages=s.messages, consumers=s.consumers) for s in states], None


async def system_overview(request: web.Request) -> web.Response:
    pool, settings = request.app[POOL], request.app[SETTINGS]
    queues = asyncio.create_task(_queues(request.app[BROKER]))
    try:
        steps, runners, lag = await asyncio.gather(
            running_steps(pool),
            recent_runners(pool, RUNNERS_WINDOW_SECONDS),
            accepted.lag(pool, settings.accepted_task_ttl_seconds),
        )
    except BaseException:
        queues.cancel()
        raise
    queue_list, queues_error = await queues
    data = SystemOverview(
        runners=[
            RunnerSeen(runner_id=r["runner_id"], last_seen=r["last_seen"], running_steps=r["running_steps"])
            for r in runners
        ],
        runners_window_seconds=RUNNERS_WINDOW_SECONDS,
        running_steps=[
            RunningStep(
                task_id=r["task_id"],
                step=r["execution_step"],
                execution_id=r["execution_id"],
                attempt=r["attempt"],
                runner_id=r["runner_id"],
                started_at=r["started_at"],
                progress=r["progress"],
                last_heartbeat_at=r["last_heartbeat_at"],
            )
            for r in steps[:RUNNING_STEPS_LIMIT]
        ],
        running_steps_limit=RUNNING_STEPS_LIMIT,
        running_steps_truncated=len(steps) > RUNNING_STEPS_LIMIT,
        queues=queue_list,
        queues_error=queues_error,
        collector_lag_seconds=round(lag.seconds, 3),
        generated_at=datetime.now(UTC),
    )
    summary = f"{len(data.runners)} runners, {len(data.running_steps)} running steps"
    return ok(summary, data.model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "GET",
        f"{SYSTEM}/overview",
        system_overview,
        "Runners, running steps, work-queue depths and the collector's lag (queues null, with a reason,"
        " when the broker does not answer within a second)",
        "system",
        response=SystemOverview,
        errors=(),
        role="viewer",
    ),
]

"""Probes and metrics: /healthz (the process answers), /readyz (broker channel open, database answering,
and no accepted task waiting to be recorded longer than `DP_READY_MAX_COLLECTOR_LAG_SECONDS`),
/metrics (Prometheus text from the app's own registry).

The lag is measured where it hurts callers: the age of the oldest task this service answered 202 for
that the read model does not show yet (adapters/accepted.py). A stalled collector (or scheduler) makes
the gateway not-ready with the reason, so a load balancer and an operator both see it.
"""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.api_gateway.adapters import accepted, read_models
from services.api_gateway.envelope import json_response, ok
from services.api_gateway.keys import BROKER, METRICS, POOL, SETTINGS
from services.api_gateway.metrics import metrics_handler
from services.api_gateway.schemas.responses import Health
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec

READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    return ok("alive", Health(status="ok").model_dump(mode="json"))


async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    pool = request.app[POOL]
    database = False
    with contextlib.suppress(Exception):
        database = await asyncio.wait_for(read_models.ping(pool), READY_TIMEOUT_SECONDS)
    broker = request.app[BROKER].is_ready()
    lag: accepted.Lag | None = None
    if database:
        with contextlib.suppress(Exception):
            lag = await asyncio.wait_for(
                accepted.lag(pool, settings.accepted_task_ttl_seconds), READY_TIMEOUT_SECONDS
            )
    collector = lag is not None and lag.seconds <= settings.ready_max_collector_lag_seconds
    checks = {"database": database, "broker": broker, "collector": collector}
    if all(checks.values()):
        return ok("ready", Health(status="ready", checks=checks).model_dump(mode="json"))
    reasons = [f"{name} unavailable" for name in ("database", "broker") if not checks[name]]
    if lag is not None and not collector:
        reasons.append(
            f"collector lagging: {lag.waiting} accepted task(s) not recorded, the oldest for {lag.seconds:.0f} s"
            f" (limit {settings.ready_max_collector_lag_seconds:g} s)"
        )
    elif lag is None and database:
        reasons.append("collector lag unknown")
    data = {
        "error_type": "service_unavailable",
        **Health(status="not_ready", checks=checks).model_dump(mode="json"),
    }
    if lag is not None:
        data["collector_lag_seconds"] = round(lag.seconds, 3)
    return json_response(503, "not ready: " + "; ".join(reasons), data)


async def metrics(request: web.Request) -> web.Response:
    return await metrics_handler(request, request.app[METRICS])


def _probe_routes(prefix: str, suffix: str = "") -> list[RouteSpec]:
    return [
        RouteSpec(
            "GET",
            f"{prefix}/healthz",
            healthz,
            "Liveness",
            "health",
            response=Health,
            public=True,
            errors=(),
            name=f"healthz{suffix}",
        ),
        RouteSpec(
            "GET",
            f"{prefix}/readyz",
            readyz,
            "Readiness: broker channel open, database answering, collector not lagging (else 503)",
            "health",
            response=Health,
            statuses=(200, 503),
            public=True,
            errors=(),
            name=f"readyz{suffix}",
        ),
        RouteSpec(
            "GET",
            f"{prefix}/metrics",
            metrics,
            "Prometheus metrics",
            "health",
            produces="text/plain",
            errors=(401,),
            name=f"metrics{suffix}",
            role="viewer",
        ),
    ]


ROUTES = [*_probe_routes(""), *_probe_routes(DATA_PIPELINE, "_prefixed")]

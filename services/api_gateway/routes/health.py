"""Probes and metrics: /healthz (the process answers), /readyz (broker channel open and database
answering), /metrics (Prometheus text from the app's own registry)."""

from __future__ import annotations

import asyncio
import contextlib

from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.envelope import json_response, ok
from services.api_gateway.keys import BROKER, METRICS, POOL
from services.api_gateway.metrics import metrics_handler
from services.api_gateway.schemas.responses import Health
from services.api_gateway.spec import DATA_PIPELINE, RouteSpec

READY_TIMEOUT_SECONDS = 2.0


async def healthz(request: web.Request) -> web.Response:
    return ok("alive", Health(status="ok").model_dump(mode="json"))


async def readyz(request: web.Request) -> web.Response:
    database = False
    with contextlib.suppress(Exception):
        database = await asyncio.wait_for(read_models.ping(request.app[POOL]), READY_TIMEOUT_SECONDS)
    broker = request.app[BROKER].is_ready()
    checks = {"database": database, "broker": broker}
    if database and broker:
        return ok("ready", Health(status="ready", checks=checks).model_dump(mode="json"))
    failing = ", ".join(name for name, up in checks.items() if not up)
    data = {
        "error_type": "service_unavailable",
        **Health(status="not_ready", checks=checks).model_dump(mode="json"),
    }
    return json_response(503, f"not ready: {failing} unavailable", data)


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
            "Readiness: broker channel open and database answering (else 503)",
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

"""Prometheus metrics in a registry owned by the app (no global registry: two apps, two sets)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from aiohttp import web
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)


class HttpMetrics:
    """Request counts by route and status, latency by route, open event streams."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "dp_gateway_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "dp_gateway_http_request_duration_seconds",
            "Time to answer (for streams: how long they stayed open), by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )
        self.streams = Gauge(
            "dp_gateway_open_streams", "Server-sent event streams open now.", registry=self.registry
        )
        self.commands = Counter(
            "dp_gateway_commands_published",
            "Commands published to the scheduler, by type.",
            ["type"],
            registry=self.registry,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)


def route_label(request: web.Request) -> str:
    """The route template (`/api/v0/data_pipeline/tasks/{task_id}`), never the raw path."""
    route = request.match_info.route
    resource = route.resource if route is not None else None
    return resource.canonical if resource is not None else "unmatched"


def metrics_middleware(metrics: HttpMetrics) -> Callable[..., Awaitable[web.StreamResponse]]:
    @web.middleware
    async def middleware(
        request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
    ) -> web.StreamResponse:
        started = time.perf_counter()
        status = 500
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except asyncio.CancelledError:
            status = 499  # the client went away before the answer
            raise
        finally:
            label = route_label(request)
            metrics.requests.labels(request.method, label, str(status)).inc()
            metrics.latency.labels(request.method, label).observe(time.perf_counter() - started)

    return middleware


async def metrics_handler(request: web.Request, metrics: HttpMetrics) -> web.Response:
    return web.Response(body=metrics.render(), headers={"Content-Type": CONTENT_TYPE_LATEST})

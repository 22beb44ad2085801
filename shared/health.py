"""A tiny /healthz + /readyz + /metrics HTTP endpoint for the worker services (scheduler, runner,
collector). /metrics serves the service's own Prometheus registry (built in its bootstrap)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

from shared.service import listen

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def health_app(service: str, ready: ReadyCheck, registry: CollectorRegistry | None = None) -> web.Application:
    async def healthz(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok", "service": service})

    async def readyz(_: web.Request) -> web.Response:
        checks = await ready()
        ok = all(checks.values())
        return web.json_response(
            {"ready": ok, "checks": checks, "service": service}, status=200 if ok else 503
        )

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    if registry is not None:
        metrics_registry = registry

        async def metrics(_: web.Request) -> web.Response:
            return web.Response(
                body=generate_latest(metrics_registry), headers={"Content-Type": CONTENT_TYPE_LATEST}
            )

        app.router.add_get("/metrics", metrics)
    return app


@asynccontextmanager
async def health_server(
    service: str, port: int | None, ready: ReadyCheck, registry: CollectorRegistry | None = None
) -> AsyncIterator[None]:
    if port is None:
        yield
        return
    runner = web.AppRunner(health_app(service, ready, registry), access_log=None)
    await runner.setup()
    try:
        await listen(runner, "0.0.0.0", port, "DP_HEALTH_PORT")
        yield
    finally:
        await runner.cleanup()

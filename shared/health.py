"""A tiny /healthz + /readyz HTTP endpoint for the worker services (scheduler, runner, collector)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from aiohttp import web

ReadyCheck = Callable[[], Awaitable[dict[str, bool]]]


def _app(service: str, ready: ReadyCheck) -> web.Application:
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
    return app


@asynccontextmanager
async def health_server(service: str, port: int | None, ready: ReadyCheck) -> AsyncIterator[None]:
    if port is None:
        yield
        return
    runner = web.AppRunner(_app(service, ready), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "0.0.0.0", port)
    await site.start()
    try:
        yield
    finally:
        await runner.cleanup()

"""The web UI: one HTML page and one script, served from the package's static/ directory, and the
OpenAPI document."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from services.api_gateway.errors import NotFound
from services.api_gateway.openapi import openapi_handler
from services.api_gateway.spec import FILE_TYPES, RouteSpec

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
_TYPES = {".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html", headers={"Content-Type": "text/html; charset=utf-8"})


async def static_file(request: web.Request) -> web.FileResponse:
    # Only the files shipped in static/ (looked up by exact name), never a client-built path.
    name = request.match_info["filename"]
    shipped = {p.name: p for p in STATIC_DIR.iterdir() if p.is_file()}
    path = shipped.get(name)
    if path is None or path.suffix not in _TYPES:
        raise NotFound(f"no such static file: {name}")
    return web.FileResponse(path, headers={"Content-Type": f"{_TYPES[path.suffix]}; charset=utf-8"})


async def openapi(request: web.Request) -> web.Response:
    return await openapi_handler(request)


ROUTES = [
    RouteSpec("GET", "/", index, "The web UI", "ui", produces="text/html", public=True, errors=()),
    RouteSpec(
        "GET",
        "/static/{filename}",
        static_file,
        "UI assets",
        "ui",
        produces=FILE_TYPES,
        public=True,
        errors=(404,),
    ),
    RouteSpec(
        "GET",
        "/api/v0/openapi.json",
        openapi,
        "This document (the raw OpenAPI document, not wrapped in the envelope)",
        "ui",
        enveloped=False,
        errors=(401,),
        role="viewer",
    ),
]

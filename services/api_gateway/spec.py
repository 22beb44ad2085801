"""One table of routes: the app registers them and the OpenAPI document describes them, so the two
cannot drift apart."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel

from shared.credentials import Role

DATA_PIPELINE = "/api/v0/data_pipeline"
TRAINING_DATA = "/api/v0/training_data"
# `produces` of a route that sends a file with the type its name implies (downloads, UI assets).
FILE_TYPES = "*/*"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class RouteSpec:
    method: str
    path: str
    handler: Handler
    summary: str
    tag: str
    body: type[BaseModel] | None = None
    body_kind: Literal["json", "multipart"] = "json"
    # The same request as multipart/form-data too: the model's fields are the form's parts (object
    # fields travel as JSON parts, bytes fields as file parts).
    form: type[BaseModel] | None = None
    body_required: bool = True
    # A multipart route's form as the document states it (media type object); default: a table-list upload.
    form_schema: dict[str, Any] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    statuses: tuple[int, ...] = (200,)
    produces: str = "application/json"
    also_streams: bool = False
    public: bool = False
    errors: tuple[int, ...] = field(default=(400, 401, 404))
    name: str | None = None
    enveloped: bool = True
    # The least role a token needs (auth middleware; 403 below it). Admin unless a route says otherwise,
    # so a route added without thought is closed rather than open.
    role: Role = "admin"
    # Draws from the caller's rate limit for expensive requests (429 when spent).
    rate_limited: bool = False

    @property
    def operation_id(self) -> str:
        return self.name or self.handler.__name__


def shadowed_methods(routes: list[RouteSpec]) -> dict[str, tuple[list[str], list[str]]]:
    """Fixed paths a parameterised path also matches (`/tasks/active`, `/tasks/{task_id}`): for each,
    (its own methods, the methods only the parameterised path has).

    The router tries the fixed path first, but a method only the parameterised path has would fall
    through to it (`DELETE /tasks/active` as task id "active"); such a request must be the 405 that
    the document implies for the fixed path.
    """
    own: dict[str, list[str]] = {}
    for route in routes:
        own.setdefault(route.path, []).append(route.method)
    shadowed: dict[str, tuple[list[str], list[str]]] = {}
    for path, methods in own.items():
        if "{" in path:
            continue
        others = [
            method
            for template, template_methods in own.items()
            if "{" in template and _template(template).match(path)
            for method in template_methods
            if method not in methods
        ]
        if others:
            shadowed[path] = (methods, list(dict.fromkeys(others)))
    return shadowed


def _template(path: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\\{\w+\\}", "[^/]+", re.escape(path)) + "$")


def method_not_allowed(allowed: list[str]) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        raise web.HTTPMethodNotAllowed(request.method, allowed)

    return handler

"""The OpenAPI 3.1 document, generated from the route table and the same pydantic models that
validate requests and shape responses."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.api_gateway.envelope import category
from services.api_gateway.keys import ROUTES
from services.api_gateway.spec import RouteSpec

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_PATH_PARAM_DOCS = {
    "task_id": ("string", "task_YYYYMMDD_HHMMSS_<suffix> or manual_..., at most 32 characters"),
    "filename": ("string", "A bare file name inside the task directory"),
}


def _envelope_schema(data_ref: dict[str, Any] | None, *, error: bool) -> dict[str, Any]:
    meta = {"$ref": _REF.format(model="EnvelopeMeta" if not error else "ErrorData")}
    data = {"allOf": [data_ref, meta]} if data_ref else meta
    return {
        "type": "object",
        "required": ["code", "success", "message", "data"],
        "properties": {
            "code": {"type": "integer", "description": "Equal to the HTTP status."},
            "success": {"type": "boolean"},
            "message": {"type": "string", "description": "Category (success, bad_request, not_found, ...)."},
            "data": data,
        },
    }


def _static_components() -> dict[str, Any]:
    return {
        "EnvelopeMeta": {
            "type": "object",
            "required": ["response", "timestamp"],
            "properties": {
                "response": {"type": "string", "description": "Specific human-readable text."},
                "timestamp": {"type": "string", "format": "date-time"},
            },
        },
        "ErrorData": {
            "type": "object",
            "required": ["response", "timestamp", "error_type"],
            "properties": {
                "response": {"type": "string"},
                "timestamp": {"type": "string", "format": "date-time"},
                "error_type": {
                    "type": "string",
                    "enum": [
                        "missing_required_params",
                        "invalid_params",
                        "resource_not_found",
                        "method_not_allowed",
                        "conflict",
                        "unauthorized",
                        "forbidden",
                        "too_many_requests",
                        "payload_too_large",
                        "service_unavailable",
                        "internal_error",
                    ],
                },
                "missing_params": {"type": "array", "items": {"type": "string"}},
                "invalid_params": {"type": "array", "items": {"type": "string"}},
            },
        },
    }


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    return [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in {"title", "description"}},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in props.items()
    ]


def _implied_errors(route: RouteSpec) -> tuple[int, ...]:
    """Answers every route of its kind can give, whatever its own list says."""
    implied: list[int] = []
    if route.body is not None or route.body_kind == "multipart":
        implied += [400, 413, 415]  # malformed or invalid body; past the size limit; wrong content type
    if "{task_id}" in route.path:
        implied += [400, 404]  # malformed task id; unknown task
    if not route.public:
        implied.append(401)  # bearer token
        if route.role != "viewer":
            implied.append(403)  # the token's role is below the route's
        if route.rate_limited:
            implied.append(429)  # the caller's rate limit for expensive requests is spent
        if route.tag not in ("health", "ui"):
            implied.append(503)  # database or broker unavailable
    return tuple(implied)


def build_openapi(routes: list[RouteSpec]) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for route in routes:
        for model in (route.body, route.response):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template=_REF, title="data_pipeline"
    )
    components = {**defs.get("$defs", {}), **_static_components()}
    refs = {model: ref for (model, _), ref in keys.items()}

    paths: dict[str, dict[str, Any]] = {}
    for route in routes:
        operation: dict[str, Any] = {
            "operationId": route.operation_id,
            "summary": route.summary,
            "tags": [route.tag],
            "parameters": [],
            "responses": {},
        }
        for name in _PATH_PARAM.findall(route.path):
            kind, text = _PATH_PARAM_DOCS.get(name, ("string", name))
            operation["parameters"].append(
                {"name": name, "in": "path", "required": True, "schema": {"type": kind}, "description": text}
            )
        if route.query is not None:
            schema = route.query.model_json_schema(ref_template=_REF)
            operation["parameters"].extend(_query_parameters(route.query, schema))
        if route.also_streams:
            operation["parameters"].append(
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "When streaming: resume after this log id.",
                }
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
        elif route.body_kind == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {"file": {"type": "string", "format": "binary"}},
                        }
                    }
                },
            }
        for status in route.statuses:
            content: dict[str, Any]
            if route.produces == "application/json" and not route.enveloped:
                content = {"application/json": {"schema": {"type": "object"}}}
            elif route.produces == "application/json":
                ref = refs.get(route.response) if route.response else None
                content = {"application/json": {"schema": _envelope_schema(ref, error=status >= 400)}}
            else:
                content = {route.produces: {"schema": {"type": "string"}}}
            if route.also_streams:
                content["text/event-stream"] = {"schema": {"type": "string"}}
            operation["responses"][str(status)] = {"description": category(status), "content": content}
        for status in (*route.errors, *_implied_errors(route), 500):
            operation["responses"].setdefault(
                str(status),
                {
                    "description": category(status),
                    "content": {"application/json": {"schema": _envelope_schema(None, error=True)}},
                },
            )
        if not route.public:
            operation["security"] = [{"bearer": []}]
            operation["x-required-role"] = route.role
            operation["description"] = f"Needs a token with the {route.role} role (or higher)" + (
                "; rate-limited per token (429 with Retry-After)." if route.rate_limited else "."
            )
        paths.setdefault(route.path, {})[route.method.lower()] = operation

    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Data Pipeline API",
            "version": "0.1.0",
            "description": "Schedules, runs, monitors and keeps the records of Text2SQL training-data tasks. "
            "Every JSON response is the envelope {code, success, message, data}.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    return web.json_response(build_openapi(request.app[ROUTES]))

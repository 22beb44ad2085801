"""The OpenAPI 3.1 document, generated from the route table and the same pydantic models that
validate requests and shape responses.

The document is the contract, so it describes this server as it runs: security and 401s only when
tokens are configured; path parameters with the patterns the handlers enforce; each error status with
the `error_type`s the server gives it; event streams as their events; downloads as whatever type the
file has. tests/contract runs schemathesis against it with auth on and off.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from services.api_gateway.envelope import category
from services.api_gateway.errors import ApiError
from services.api_gateway.keys import ROUTES, SETTINGS
from services.api_gateway.schemas.names import FILE_NAME_PATTERN, TASK_ID_PATTERN
from services.api_gateway.spec import FILE_TYPES, RouteSpec
from shared.ids import TASK_ID_MAX_LEN

_REF = "#/components/schemas/{model}"
_PATH_PARAM = re.compile(r"{(\w+)}")
_PATH_PARAMS: dict[str, dict[str, Any]] = {
    "task_id": {
        "schema": {"type": "string", "pattern": TASK_ID_PATTERN, "maxLength": TASK_ID_MAX_LEN},
        "description": "task_YYYYMMDD_HHMMSS_<suffix> or manual_..., at most 32 characters",
    },
    "pair_id": {
        "schema": {"type": "string", "pattern": "^[0-9a-f]{16}$", "minLength": 16, "maxLength": 16},
        "description": "A pair's id, as GET /tasks/{task_id}/pairs lists it",
    },
    "filename": {
        "schema": {"type": "string", "pattern": FILE_NAME_PATTERN, "minLength": 1, "maxLength": 255},
        "description": "A bare file name inside the task directory (no separators, no '..', no leading dot)",
    },
}
# One server-sent event as a client reads it (OpenAPI 3.1: the schema of an event-stream response
# describes each event). `data` is one line of JSON; `id` is set where a client can resume from it.
_SSE_EVENT = {
    "type": "object",
    "required": ["event", "data"],
    "properties": {
        "event": {"type": "string", "description": "snapshot, log, end, error, or an event type."},
        "data": {"type": "string", "contentMediaType": "application/json"},
        "id": {"type": "string"},
        "retry": {"type": "integer"},
    },
}


# No text the gateway reads may hold NUL (PostgreSQL stores none): a request with one is a 400.
_NO_NUL = {"pattern": "\\u0000"}


def _refuse_nul(schema: Any) -> None:
    """Add "no NUL" to every string schema in `schema`, in place."""
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            types = node.get("type")
            if (
                types == "string" or (isinstance(types, list) and "string" in types)
            ) and "format" not in node:
                node.setdefault("not", _NO_NUL)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _error_types_by_status() -> dict[int, list[str]]:
    """The `error_type`s each status carries, from the gateway's error classes (errors.py)."""
    found: dict[int, set[str]] = {}
    pending: list[type[ApiError]] = [ApiError]
    while pending:
        cls = pending.pop()
        found.setdefault(cls.status, set()).add(cls.error_type)
        pending.extend(cls.__subclasses__())
    return {status: sorted(types) for status, types in found.items()}


def _envelope_schema(data_ref: dict[str, Any] | None, status: int) -> dict[str, Any]:
    error = status >= 400
    parts: list[dict[str, Any]] = [{"$ref": _REF.format(model="EnvelopeMeta" if not error else "ErrorData")}]
    if data_ref:
        parts.insert(0, data_ref)
    if error:
        types = _error_types_by_status().get(status) or _error_types_by_status()[400 if status < 500 else 500]
        parts.append({"properties": {"error_type": {"enum": types}}})
    data = parts[0] if len(parts) == 1 else {"allOf": parts}
    return {
        "type": "object",
        "required": ["code", "success", "message", "data"],
        "properties": {
            "code": {"const": status, "description": "Equal to the HTTP status."},
            "success": {"const": not error},
            "message": {"const": category(status), "description": "The status's category."},
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
                    "enum": sorted({t for types in _error_types_by_status().values() for t in types}),
                },
                "missing_params": {"type": "array", "items": {"type": "string"}},
                "invalid_params": {"type": "array", "items": {"type": "string"}},
            },
        },
    }


def _query_parameters(model: type[BaseModel], schema: dict[str, Any]) -> list[dict[str, Any]]:
    props = schema.get("properties", {})
    required = set(schema.get("required", []))
    parameters = [
        {
            "name": name,
            "in": "query",
            "required": name in required,
            "schema": {k: v for k, v in prop.items() if k not in {"title", "description"}},
            **({"description": prop["description"]} if "description" in prop else {}),
        }
        for name, prop in props.items()
    ]
    _refuse_nul(parameters)
    return parameters


def _implied_errors(route: RouteSpec, auth: bool) -> tuple[int, ...]:
    """Answers every route of its kind can give, whatever its own list says."""
    implied: list[int] = []
    if route.body is not None or route.body_kind == "multipart":
        implied += [400, 413, 415]  # malformed or invalid body; past the size limit; wrong content type
    if "{task_id}" in route.path:
        implied += [400, 404]  # malformed task id; unknown task
    if not route.public:
        if auth:
            implied.append(401)  # bearer token
            if route.role != "viewer":
                implied.append(403)  # the token's role is below the route's
        if route.rate_limited:
            implied.append(429)  # the caller's rate limit for expensive requests is spent
        if route.tag not in ("health", "ui"):
            implied.append(503)  # database or broker unavailable
    return tuple(implied)


def _reachable(names: set[str], components: dict[str, Any]) -> set[str]:
    """`names` and every component their schemas refer to."""
    seen: set[str] = set()
    pending = list(names)
    while pending:
        name = pending.pop()
        if name in seen or name not in components:
            continue
        seen.add(name)
        pending.extend(re.findall(r'"#/components/schemas/(\w+)"', json.dumps(components[name])))
    return seen


def _form(model: type[BaseModel], refs: Mapping[Any, dict[str, Any]]) -> dict[str, Any]:
    """A multipart/form-data request body: the model's schema, and how each part is encoded."""
    encoding: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        if field.annotation is bytes:
            encoding[name] = {"contentType": "text/plain"}
        elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            encoding[name] = {"contentType": "application/json"}
    return {"schema": refs[model], "encoding": encoding}


def _media(produces: str) -> dict[str, Any]:
    if produces == "text/event-stream":
        return {"schema": _SSE_EVENT}
    if produces == FILE_TYPES:
        return {"schema": {"description": "The file, sent with the type its name implies."}}
    return {"schema": {"type": "string"}}


def build_openapi(routes: list[RouteSpec], *, auth: bool = True) -> dict[str, Any]:
    """The document for a gateway whose routes are `routes`; `auth`: bearer tokens are configured."""
    models: set[type[BaseModel]] = set()
    for route in routes:
        for model in (route.body, route.response, route.form):
            if model is not None:
                models.add(model)
    ordered = sorted(models, key=lambda m: m.__name__)
    keys, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template=_REF, title="data_pipeline"
    )
    components = {**defs.get("$defs", {}), **_static_components()}
    refs = {model: ref for (model, _), ref in keys.items()}
    # Not the multipart forms: schemathesis's coverage phase fails on a `not` beside a binary part
    # ("Unsupported type: 'Binary'"); the gateway refuses NUL in a form's JSON part all the same.
    for name in _reachable({r.body.__name__ for r in routes if r.body is not None}, components):
        _refuse_nul(components[name])

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
            param = _PATH_PARAMS.get(name, {"schema": {"type": "string"}, "description": name})
            operation["parameters"].append({"name": name, "in": "path", "required": True, **param})
        if route.query is not None:
            schema = route.query.model_json_schema(ref_template=_REF)
            operation["parameters"].extend(_query_parameters(route.query, schema))
        if route.also_streams or route.produces == "text/event-stream":
            operation["parameters"].append(
                {
                    "name": "Last-Event-ID",
                    "in": "header",
                    "required": False,
                    "schema": {"type": "string"},
                    "description": "When streaming: resume after the event with this `id:`. Log lines: a log"
                    " id, the lines after it. A task's events: an event id, the events stored after it and"
                    " then the live ones, without a snapshot (an id of no event of the task: a fresh snapshot).",
                }
            )
        if route.body is not None:
            operation["requestBody"] = {
                "required": route.body_required,
                "content": {"application/json": {"schema": refs[route.body]}},
            }
            if route.form is not None:
                operation["requestBody"]["content"]["multipart/form-data"] = _form(route.form, refs)
        elif route.body_kind == "multipart":
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "multipart/form-data": route.form_schema
                    or {
                        "schema": {
                            "type": "object",
                            "required": ["file"],
                            "properties": {
                                "file": {
                                    "type": "string",
                                    "format": "binary",
                                    "description": "A `.txt` file in UTF-8: table names, one per line or "
                                    "comma-separated; blank lines and `#` comments are skipped.",
                                }
                            },
                        },
                        "encoding": {
                            "file": {
                                "contentType": "text/plain",
                                "headers": {
                                    "Content-Disposition": {
                                        "schema": {"type": "string"},
                                        "example": 'form-data; name="file"; filename="table_list.txt"',
                                    }
                                },
                            }
                        },
                    }
                },
            }
        for status in route.statuses:
            content: dict[str, Any]
            if route.produces == "application/json" and not route.enveloped:
                content = {"application/json": {"schema": {"type": "object"}}}
            elif route.produces == "application/json":
                ref = refs.get(route.response) if route.response else None
                content = {"application/json": {"schema": _envelope_schema(ref, status)}}
            else:
                content = {route.produces: _media(route.produces)}
            if route.also_streams:
                content["text/event-stream"] = _media("text/event-stream")
            operation["responses"][str(status)] = {"description": category(status), "content": content}
        for status in (*route.errors, *_implied_errors(route, auth), 500):
            if status in (401, 403) and not auth:
                continue  # no tokens configured: nobody is refused
            operation["responses"].setdefault(
                str(status),
                {
                    "description": category(status),
                    "content": {"application/json": {"schema": _envelope_schema(None, status)}},
                },
            )
        if "401" in operation["responses"]:
            operation["responses"]["401"]["headers"] = {
                "WWW-Authenticate": {"required": True, "schema": {"type": "string"}}
            }
        if not route.public and auth:
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
            **({"securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}} if auth else {}),
        },
    }


async def openapi_handler(request: web.Request) -> web.Response:
    auth = bool(request.app[SETTINGS].api_tokens)
    return web.json_response(build_openapi(request.app[ROUTES], auth=auth))

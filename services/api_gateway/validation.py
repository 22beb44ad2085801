"""Turning raw requests into validated models, with the contract's error vocabulary.

Pydantic errors become `invalid_params` naming the offending fields (never echoing their values);
absent or empty required fields become `missing_required_params`.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

from aiohttp import web
from pydantic import BaseModel, ValidationError

from services.api_gateway.errors import InvalidParams, MissingParams, NotFound, UnsupportedMediaType
from shared.ids import is_valid_task_id
from shared.secrets import mask_secrets

M = TypeVar("M", bound=BaseModel)

_CONTAINERS = {"parameters"}


def _field_name(loc: tuple[int | str, ...]) -> str:
    if len(loc) > 1 and loc[0] in _CONTAINERS:
        return str(loc[1])
    return str(loc[0]) if loc else "body"


def _error_details(exc: ValidationError) -> tuple[list[str], list[str], list[dict[str, str]]]:
    missing: list[str] = []
    invalid: list[str] = []
    details: list[dict[str, str]] = []
    for error in exc.errors(include_input=False, include_url=False):
        name = _field_name(tuple(error["loc"]))
        (missing if error["type"] == "missing" else invalid).append(name)
        details.append({"field": name, "message": mask_secrets(str(error["msg"]))})
    return missing, invalid, details


def validation_error(exc: ValidationError, *, what: str = "request") -> InvalidParams | MissingParams:
    missing, invalid, details = _error_details(exc)
    names = ", ".join(dict.fromkeys(missing + invalid))
    if missing:
        return MissingParams(
            f"missing required parameters: {', '.join(dict.fromkeys(missing))}",
            missing=missing,
            invalid=invalid,
            extra={"errors": details},
        )
    return InvalidParams(f"invalid {what} parameters: {names}", invalid=invalid, extra={"errors": details})


def parse_model(model: type[M], data: Any, *, what: str = "request") -> M:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise validation_error(exc, what=what) from None


def parse_query(model: type[M], request: web.Request) -> M:
    # A repeated key keeps its last value; unknown keys are ignored.
    query = {k: v for k, v in request.query.items() if k in model.model_fields}
    refuse_nul(query, what="query")
    return parse_model(model, query, what="query")


def fields_with_nul(data: Any) -> list[str]:
    """The fields (named as validation errors name them) holding text with a NUL character.

    PostgreSQL stores no NUL in `text` or `jsonb`, so such a value would fail every query and every
    write downstream. Iterative, so a deeply nested body cannot exhaust the stack.
    """
    found: list[str] = []
    stack: list[tuple[tuple[int | str, ...], Any]] = [((), data)]
    while stack:
        loc, value = stack.pop()
        if isinstance(value, str):
            if "\x00" in value:
                found.append(_field_name(loc))
        elif isinstance(value, dict):
            for key, item in value.items():
                if "\x00" in str(key):
                    found.append(_field_name(loc) if loc else "body")
                stack.append(((*loc, key), item))
        elif isinstance(value, list):
            stack.extend(((*loc, i), item) for i, item in enumerate(value))
    return sorted(set(found))


def refuse_nul(data: Any, *, what: str = "request") -> None:
    bad = fields_with_nul(data)
    if bad:
        raise InvalidParams(
            f"invalid {what} parameters: {', '.join(bad)} (NUL characters are not allowed)", invalid=bad
        )


def _not_json(constant: str) -> Any:
    raise ValueError(f"{constant} is not valid JSON")


def is_json_content_type(request: web.Request) -> bool:
    ctype = request.content_type.lower()
    return ctype == "application/json" or (ctype.startswith("application/") and ctype.endswith("+json"))


async def read_json(request: web.Request, *, optional: bool = False) -> Any:
    """The parsed JSON body. 415 for another content type, 400 for malformed JSON, 413 past the limit.

    With `optional`, an empty body (any content type) reads as `{}`.
    """
    if optional and (request.content_length == 0 or not request.can_read_body):
        return {}
    if not is_json_content_type(request):
        raise UnsupportedMediaType(
            "request body must be JSON (Content-Type: application/json)", invalid=["content_type"]
        )
    raw = await request.read()  # aiohttp raises 413 beyond client_max_size
    if optional and not raw.strip():
        return {}
    try:
        body = json.loads(raw, parse_constant=_not_json)
    except (UnicodeDecodeError, ValueError) as exc:
        raise InvalidParams(f"malformed JSON body: {exc}", invalid=["body"]) from None
    except RecursionError:
        raise InvalidParams("malformed JSON body: nested too deeply", invalid=["body"]) from None
    refuse_nul(body)
    return body


async def read_json_object(request: web.Request, *, optional: bool = False) -> dict[str, Any]:
    body = await read_json(request, optional=optional)
    if not isinstance(body, dict):
        raise InvalidParams("request body must be a JSON object", invalid=["body"])
    return body


def require_task_id(request: web.Request) -> str:
    """The `{task_id}` of the path, checked before it reaches a query or the file system."""
    task_id = request.match_info.get("task_id", "")
    if not is_valid_task_id(task_id):
        raise InvalidParams(
            "invalid task id: expected task_YYYYMMDD_HHMMSS_<suffix> or manual_..., at most 32 characters",
            invalid=["task_id"],
        )
    return task_id


def task_not_found(task_id: str) -> NotFound:
    return NotFound(f"task not found: {task_id}")


def blank(value: object) -> bool:
    """The seed's notion of "not given": absent, null, empty or whitespace-only, or an empty list."""
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, list | dict):
        return not value
    return False


def missing_fields(data: Mapping[str, Any], required: Iterable[str]) -> list[str]:
    return [name for name in required if blank(data.get(name))]

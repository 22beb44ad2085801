"""The one JSON envelope every response travels in, and the scrubber that keeps secrets out of it.

Every JSON body the gateway writes goes through `envelope()`, so this is the single place that
guarantees the contract shape (`code`, `success`, `message`, `data.response`, `data.timestamp`) and
that no password or encrypted secret ever leaves the service.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from shared.secrets import mask_secrets

# Keys whose values never leave the service, wherever they sit in a payload.
# `response` is server text that may quote a client's input (an unknown id, a field name): bounded.
MAX_RESPONSE_CHARS = 1000
_SECRET_KEYS = frozenset({"db_connection_secret", "password", "encryption_key"})

MESSAGES: dict[int, str] = {
    200: "success",
    201: "created",
    202: "accepted",
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
    500: "internal_error",
    503: "service_unavailable",
}


def category(status: int) -> str:
    if status in MESSAGES:
        return MESSAGES[status]
    return "success" if status < 400 else ("bad_request" if status < 500 else "internal_error")


def scrub(value: Any) -> Any:
    """Mask passwords in every string and drop secret-bearing keys, recursively.

    The safety net only: stored URLs are already masked where they were parsed. `mask_secrets` is linear
    and returns at once for text without "@" + "://" or "password", so large responses stay cheap."""
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, Mapping):
        return {str(k): scrub(v) for k, v in value.items() if str(k) not in _SECRET_KEYS}
    if isinstance(value, list | tuple):
        return [scrub(v) for v in value]
    return value


def now_iso() -> str:
    return datetime.now(UTC).isoformat()


def envelope(status: int, response: str, data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    body = scrub(dict(data or {}))
    if len(response) > MAX_RESPONSE_CHARS:
        response = response[:MAX_RESPONSE_CHARS] + "…"
    body["response"] = mask_secrets(response)
    body["timestamp"] = now_iso()
    return {"code": status, "success": status < 400, "message": category(status), "data": body}


def dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str, separators=(",", ":"))


def json_response(
    status: int,
    response: str,
    data: Mapping[str, Any] | None = None,
    *,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.json_response(envelope(status, response, data), status=status, dumps=dumps, headers=headers)


def ok(response: str, data: Mapping[str, Any] | None = None, *, status: int = 200) -> web.Response:
    return json_response(status, response, data)

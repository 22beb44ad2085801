"""The gateway's error taxonomy and the middleware that turns every failure into an envelope.

Handlers raise an `ApiError` subclass for anything a client did wrong or cannot have; aiohttp's own
HTTP exceptions (unknown route, wrong method, body too large) and unexpected exceptions are mapped
here too, so no response ever leaves in another shape. A bad request is always 4xx, never 500.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

import aio_pika
from aiohttp import web

from services.api_gateway.envelope import json_response
from shared.logging import get_logger
from shared.retry import CONNECTION_ERRORS
from shared.secrets import mask_secrets

MAX_NAME_CHARS = 100
MAX_NAMES = 50


class ApiError(Exception):
    """A failure with a status and an `error_type` from the contract's list."""

    status: ClassVar[int] = 500
    error_type: ClassVar[str] = "internal_error"

    def __init__(
        self,
        response: str,
        *,
        missing: Sequence[str] = (),
        invalid: Sequence[str] = (),
        extra: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(response)
        self.response = response
        # Parameter names may come from the client (unknown keys): bounded, like the response text.
        self.missing = [name[:MAX_NAME_CHARS] for name in dict.fromkeys(missing)][:MAX_NAMES]
        self.invalid = [name[:MAX_NAME_CHARS] for name in dict.fromkeys(invalid)][:MAX_NAMES]
        self.extra = extra or {}
        self.headers = headers

    def data(self) -> dict[str, Any]:
        data: dict[str, Any] = {"error_type": self.error_type, **self.extra}
        if self.missing:
            data["missing_params"] = self.missing
        if self.invalid:
            data["invalid_params"] = self.invalid
        return data


class InvalidParams(ApiError):
    """The request names a field, value or shape the contract does not allow."""

    status = 400
    error_type = "invalid_params"


class MissingParams(ApiError):
    """Required fields are absent or empty; `missing_params` names them."""

    status = 400
    error_type = "missing_required_params"


class UnsupportedMediaType(InvalidParams):
    status = 415


class Unauthorized(ApiError):
    status = 401
    error_type = "unauthorized"


class Forbidden(ApiError):
    """Authenticated, but the token's role or connection scope does not allow this request."""

    status = 403
    error_type = "forbidden"


class TooManyRequests(ApiError):
    """The client's rate limit for expensive requests is spent; Retry-After says when to come back."""

    status = 429
    error_type = "too_many_requests"


class NotFound(ApiError):
    status = 404
    error_type = "resource_not_found"


class MethodNotAllowed(ApiError):
    """The path exists, but not with this method; `Allow` lists its methods. The contract (API.md) has
    no error type of its own for this: the method is the invalid parameter."""

    status = 405
    error_type = "invalid_params"


class Conflict(ApiError):
    """The task's current state does not allow the request (running, terminal, inputs missing)."""

    status = 409
    error_type = "conflict"


class PayloadTooLarge(ApiError):
    status = 413
    error_type = "payload_too_large"


class ServiceUnavailable(ApiError):
    """A dependency (database, broker, optional library) cannot serve the request now; retry later."""

    status = 503
    error_type = "service_unavailable"


class InternalError(ApiError):
    status = 500
    error_type = "internal_error"


# Dependency failures that mean "try again later", not "the gateway has a bug": the shared connection
# errors, and any broker error (a publish the broker did not confirm included).
UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (*CONNECTION_ERRORS, aio_pika.exceptions.AMQPError)

_HTTP_ERROR_TYPES: dict[int, type[ApiError]] = {
    400: InvalidParams,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def error_response(error: ApiError) -> web.Response:
    return json_response(error.status, error.response, error.data(), headers=error.headers)


def from_http_exception(exc: web.HTTPException) -> ApiError:
    kind = _HTTP_ERROR_TYPES.get(exc.status, InvalidParams if exc.status < 500 else InternalError)
    error = kind(exc.text or exc.reason, headers={k: v for k, v in exc.headers.items() if k == "Allow"})
    if exc.status == 405:
        error.invalid = ["method"]
    if exc.status not in _HTTP_ERROR_TYPES:
        # Keep aiohttp's status (e.g. 411, 431) but speak the contract's vocabulary.
        error.status = exc.status  # type: ignore[misc]
    return error


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return error_response(from_http_exception(exc))
    except UNAVAILABLE_ERRORS as exc:
        get_logger().warning("dependency unavailable", path=request.path, error=mask_secrets(repr(exc)))
        return error_response(ServiceUnavailable("a backing service is unavailable; retry later"))
    except asyncio.CancelledError:
        raise
    except Exception as exc:
        get_logger().exception("unhandled error", path=request.path, error=mask_secrets(repr(exc)))
        return error_response(InternalError("internal error"))

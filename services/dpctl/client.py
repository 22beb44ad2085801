"""A small blocking HTTP client for the gateway's JSON envelope and its server-sent event streams.

Blocking urllib keeps the command line free of an event loop and of new dependencies; every call is
one request, so nothing would be gained by async here.
"""

from __future__ import annotations

import http.client
import json
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from http.client import HTTPResponse
from typing import Any, BinaryIO

API_PREFIX = "/api/v0/data_pipeline"
KEEPALIVE = "keepalive"


class ApiError(Exception):
    """The gateway answered with an error envelope; `reason` is its `data.response` text."""

    def __init__(self, status: int, reason: str, error_type: str | None = None, details: dict | None = None):
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.error_type = error_type
        self.details = details or {}


class GatewayUnreachable(Exception):
    """No HTTP answer at all: connection refused, DNS failure, timeout."""

    def __init__(self, url: str, cause: str):
        super().__init__(f"cannot reach the gateway at {url}: {cause}")
        self.url = url


@dataclass(frozen=True)
class SseEvent:
    event: str
    data: Any
    id: str | None = None


def origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port made explicit."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    return scheme, (parts.hostname or "").lower(), parts.port or {"http": 80, "https": 443}.get(scheme)


class _SameOriginRedirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects within the gateway's origin only.

    urllib copies every header, `Authorization` included, to wherever a redirect points; a proxy or
    a compromised gateway could send the bearer token to another host (or downgrade https to http).
    A redirect to another origin is refused and reported instead of followed.
    """

    def redirect_request(  # type: ignore[override]
        self, req: urllib.request.Request, fp: Any, code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        target = urllib.parse.urljoin(req.full_url, newurl)
        if origin(target) != origin(req.full_url):
            raise ApiError(
                code,
                f"the gateway redirected to another origin ({target.split('?', 1)[0][:200]}); not "
                "following it with the token; set --url to that address if you trust it",
                "redirect_refused",
            )
        return super().redirect_request(req, fp, code, msg, headers, target)


class GatewayClient:
    def __init__(self, base_url: str, token: str | None = None, timeout: float = 30.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self._opener = urllib.request.build_opener(_SameOriginRedirects)

    # --- plumbing ---

    def url(self, path: str, params: dict[str, Any] | None = None) -> str:
        query = {k: _query_value(v) for k, v in (params or {}).items() if v is not None}
        url = f"{self.base_url}{API_PREFIX}{path}"
        return f"{url}?{urllib.parse.urlencode(query)}" if query else url

    def _open(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        accept: str = "application/json",
        timeout: float | None = None,
    ) -> HTTPResponse:
        headers = {"Accept": accept, "User-Agent": "dpctl"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            headers["Content-Type"] = "application/json"
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        request = urllib.request.Request(self.url(path, params), data=data, headers=headers, method=method)
        try:
            return self._opener.open(request, timeout=timeout or self.timeout)  # type: ignore[no-any-return]
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except urllib.error.URLError as exc:
            raise GatewayUnreachable(self.base_url, str(exc.reason)) from None
        except (TimeoutError, ConnectionError) as exc:
            raise GatewayUnreachable(self.base_url, str(exc) or type(exc).__name__) from None

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        body: Any = None,
        timeout: float | None = None,
    ) -> Any:
        """The `data` of the envelope."""
        with self._open(method, path, params=params, body=body, timeout=timeout) as response:
            raw = response.read()
        envelope = _json(raw)
        if isinstance(envelope, dict) and envelope.get("success") is False:
            raise _api_error(int(envelope.get("code") or 500), raw)
        return envelope.get("data", envelope) if isinstance(envelope, dict) else envelope

    def download(self, path: str, sink: BinaryIO) -> int:
        with self._open("GET", path, accept="*/*") as response:
            total = 0
            while chunk := response.read(65536):
                sink.write(chunk)
                total += len(chunk)
        return total

    def stream(
        self,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        idle_timeout: float = 90.0,
        keepalives: bool = False,
    ) -> EventStream:
        """Server-sent events until the server closes the stream.

        Connects at once (not on first iteration): the gateway subscribes before it answers, so
        whatever the caller reads from the API afterwards cannot miss an event published in between.
        """
        response = self._open("GET", path, params=params, accept="text/event-stream", timeout=idle_timeout)
        return EventStream(response, self.base_url, keepalives=keepalives)

    # --- the API ---

    def create_task(self, parameters: dict[str, Any], wait: float | None = None) -> dict[str, Any]:
        """`wait`: how long the gateway may wait for the task to be recorded (0: answer once durable)."""
        return self.request(
            "POST",
            "/tasks",
            params={"wait": wait},
            body={"task_type": "complete_workflow", "parameters": parameters},
        )

    def list_tasks(self, **params: Any) -> dict[str, Any]:
        return self.request("GET", "/tasks", params=params)

    def get_task(self, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/tasks/{_seg(task_id)}")

    def wait_task(self, task_id: str, seconds: float) -> dict[str, Any]:
        """The task once it ends or waits for its review, or as it stands after `seconds` (at most 60)."""
        return self.request(
            "GET",
            f"/tasks/{_seg(task_id)}",
            params={"wait": round(seconds, 3)},
            timeout=seconds + self.timeout,
        )

    def execute(self, task_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", f"/tasks/{_seg(task_id)}/execute", body=body)

    def cancel(self, task_id: str, reason: str | None = None) -> dict[str, Any]:
        return self.request(
            "POST", f"/tasks/{_seg(task_id)}/cancel", body={"reason": reason} if reason else {}
        )

    def delete(self, task_id: str) -> dict[str, Any]:
        return self.request("DELETE", f"/tasks/{_seg(task_id)}")

    def logs(self, task_id: str, **params: Any) -> dict[str, Any]:
        return self.request("GET", f"/tasks/{_seg(task_id)}/logs", params=params)

    def files(self, task_id: str) -> dict[str, Any]:
        return self.request("GET", f"/tasks/{_seg(task_id)}/files")

    def download_file(self, task_id: str, name: str, sink: BinaryIO) -> int:
        return self.download(f"/tasks/{_seg(task_id)}/files/download/{_seg(name)}", sink)

    def database_tables(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.request("POST", "/database/tables", body=body)

    def database_diff(self, db_connection: str, since_task: str | None = None) -> dict[str, Any]:
        return self.request(
            "GET", "/database/diff", params={"db_connection": db_connection, "since_task": since_task}
        )


class EventStream:
    """An open event stream: iterate it for the events; close it (or use `with`) when done."""

    def __init__(self, response: HTTPResponse, base_url: str, *, keepalives: bool = False) -> None:
        self._response = response
        self._base_url = base_url
        self._keepalives = keepalives

    def __iter__(self) -> Iterator[SseEvent]:
        try:
            yield from parse_sse(self._response, keepalives=self._keepalives)
        except (TimeoutError, ConnectionError, http.client.HTTPException) as exc:
            # The connection broke mid-stream (gateway restart, idle timeout): callers reconnect.
            raise GatewayUnreachable(self._base_url, str(exc) or type(exc).__name__) from None

    def close(self) -> None:
        self._response.close()

    def __enter__(self) -> EventStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def parse_sse(lines: Any, *, keepalives: bool = False) -> Iterator[SseEvent]:
    """Frames of `event:`/`data:`/`id:` lines separated by a blank line; `:` lines are keep-alives.

    With `keepalives`, each keep-alive comment comes out as an event named `keepalive` (data None):
    a chance for the reader to look around while the stream is idle.
    """
    event, event_id = "message", None
    data: list[str] = []
    for raw in lines:
        line = raw.decode("utf-8") if isinstance(raw, bytes) else raw
        line = line.rstrip("\r\n")
        if not line:
            if data:
                text = "\n".join(data)
                yield SseEvent(event, _json_or_text(text), event_id)
            event, data, event_id = "message", [], None
            continue
        if line.startswith(":"):
            if keepalives:
                yield SseEvent(KEEPALIVE, None)
            continue
        field, _, value = line.partition(":")
        value = value[1:] if value.startswith(" ") else value
        if field == "event":
            event = value
        elif field == "data":
            data.append(value)
        elif field == "id":
            event_id = value
    if data:
        yield SseEvent(event, _json_or_text("\n".join(data)), event_id)


def _seg(value: str) -> str:
    return urllib.parse.quote(value, safe="")


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw.decode("utf-8")) if raw else {}
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {"data": {"response": raw.decode("utf-8", "replace")[:500]}}


def _json_or_text(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return text


def _api_error(status: int, raw: bytes) -> ApiError:
    envelope = _json(raw)
    data = envelope.get("data") if isinstance(envelope, dict) else None
    data = data if isinstance(data, dict) else {}
    reason = data.get("response") or (envelope.get("message") if isinstance(envelope, dict) else None)
    return ApiError(status, str(reason or f"HTTP {status}"), data.get("error_type"), data)

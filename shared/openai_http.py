"""POSTing JSON to an OpenAI-compatible endpoint with timeouts and bounded, backed-off retries.

Shared by the chat model (step runner) and the embedder (step runner and gateway). Rate limits (429),
server errors (5xx), timeouts and dropped connections are retried with exponential backoff, honouring
Retry-After; other 4xx answers are permanent. The API key travels only in the Authorization header and
never appears in an error message or a log line.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import aiohttp
import structlog

from shared import llm_usage
from shared.retry import backoff

log = structlog.get_logger(__name__)

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


@dataclass(frozen=True)
class RetryPolicy:
    timeout_seconds: float = 60.0
    max_retries: int = 3
    backoff_base_seconds: float = 1.0
    backoff_max_seconds: float = 30.0
    retry_after_max_seconds: float = 60.0

    def backoff(self, attempt: int) -> float:
        """Delay before retry number `attempt` (1-based): exponential, capped, with a little jitter."""
        return backoff(attempt, self.backoff_base_seconds, self.backoff_max_seconds, jitter=0.2)


class OpenAIHTTPError(Exception):
    """The endpoint did not give a usable answer; `retryable` when trying again later may help."""

    def __init__(self, message: str, *, status: int | None = None, retryable: bool = False) -> None:
        super().__init__(message)
        self.status = status
        self.retryable = retryable


def retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def auth_headers(api_key: str | None) -> dict[str, str]:
    headers = {"Content-Type": "application/json", "Accept": "application/json"}
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
    return headers


async def post_json(
    session: aiohttp.ClientSession,
    url: str,
    payload: dict[str, Any],
    *,
    headers: dict[str, str],
    policy: RetryPolicy,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Any:
    """The decoded JSON body of a successful POST, after at most `policy.max_retries` retries."""
    timeout = aiohttp.ClientTimeout(total=policy.timeout_seconds)
    attempt = 0
    while True:
        attempt += 1
        delay: float | None = None
        try:
            async with session.post(url, json=payload, headers=headers, timeout=timeout) as resp:
                if resp.status < 300:
                    try:
                        return await resp.json(content_type=None)
                    except ValueError as exc:
                        raise OpenAIHTTPError(
                            f"{url} answered {resp.status} with a body that is not JSON",
                            status=resp.status,
                            retryable=True,
                        ) from exc
                body = (await resp.text())[:300]
                error = OpenAIHTTPError(
                    f"{url} answered HTTP {resp.status}: {body}",
                    status=resp.status,
                    retryable=resp.status in RETRYABLE_STATUS,
                )
                after = retry_after_seconds(resp.headers.get("Retry-After"))
                if after is not None:
                    delay = min(after, policy.retry_after_max_seconds)
        except TimeoutError:
            error = OpenAIHTTPError(
                f"{url} did not answer within {policy.timeout_seconds:g}s", retryable=True
            )
        except aiohttp.ClientError as exc:
            error = OpenAIHTTPError(f"{url} request failed: {type(exc).__name__}: {exc}", retryable=True)
        except OpenAIHTTPError as exc:
            error = exc
        if not error.retryable or attempt > policy.max_retries:
            raise error
        wait = delay if delay is not None else policy.backoff(attempt)
        log.warning(
            "openai_http_retry",
            url=url,
            attempt=attempt,
            status=error.status,
            wait_seconds=wait,
            reason=str(error)[:200],
        )
        await sleep(wait)


class OpenAIEndpoint:
    """One OpenAI-compatible API root: its session (created on first use unless one is given), key and
    retry policy. The chat model and the embedder each hold one."""

    def __init__(
        self,
        base_url: str,
        api_key: str | None,
        policy: RetryPolicy,
        session: aiohttp.ClientSession | None = None,
    ) -> None:
        self._base_url = base_url
        self._headers = auth_headers(api_key)
        self._policy = policy
        self._session = session
        self._owns_session = session is None

    async def post(self, path: str, payload: dict[str, Any]) -> Any:
        """The answer's JSON; the call's tokens (its `usage`) and latency go to the step's usage meter."""
        llm_usage.before_call()
        if self._session is None:
            self._session = aiohttp.ClientSession()
        began = time.monotonic()
        body = await post_json(
            self._session, f"{self._base_url}{path}", payload, headers=self._headers, policy=self._policy
        )
        prompt, completion = llm_usage.tokens_of(body)
        llm_usage.record_call(
            str(payload.get("model") or "unknown"), prompt, completion, time.monotonic() - began
        )
        return body

    async def aclose(self) -> None:
        if self._session is not None and self._owns_session:
            await self._session.close()
        self._session = None

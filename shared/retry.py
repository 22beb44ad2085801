"""The one retry policy: which errors are worth trying again, and how long to wait before each try.

Used by every place that waits out a dependency: the broker's message wrapper, the collector's
batch store, the gateway's start-up connections, the OpenAI client, the scheduler's step retries
and the gateway's polling for a read model to catch up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import aio_pika
import asyncpg

from shared.logging import get_logger
from shared.secrets import mask_secrets

T = TypeVar("T")

CONNECTION_ERRORS: tuple[type[BaseException], ...] = (
    ConnectionError,
    asyncio.TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.InterfaceError,
    asyncpg.exceptions.TooManyConnectionsError,
    asyncpg.exceptions.CannotConnectNowError,
    aio_pika.exceptions.AMQPConnectionError,
    aio_pika.exceptions.ChannelInvalidStateError,
)
"""A dependency that is down, busy or was cut off: an HTTP request answers 503 (try again later)."""

TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (
    *CONNECTION_ERRORS,
    OSError,
    asyncpg.exceptions.SerializationError,
    asyncpg.exceptions.DeadlockDetectedError,
)
"""What a message handler retries in place: connection trouble, any OS-level I/O error, and a
transaction that lost a race. Trying again later may help; a bug will not."""


def backoff(attempt: int, base: float, maximum: float, *, factor: float = 2.0, jitter: float = 0.0) -> float:
    """The wait before try number `attempt` (1-based): `base * factor**(attempt-1)`, capped at `maximum`.

    With `jitter` (e.g. 0.2) the wait is spread by ±that fraction, so clients do not retry in step.
    """
    delay = min(maximum, base * factor ** max(attempt - 1, 0))
    if jitter:
        delay *= 1 - jitter + 2 * jitter * random.random()
    return delay


def delays(base: float, maximum: float, *, factor: float = 2.0) -> Iterator[float]:
    """The successive waits of a retry loop: base, base*factor, ... capped at `maximum`, for ever."""
    attempt = 0
    while True:
        attempt += 1
        yield backoff(attempt, base, maximum, factor=factor)


class Unreachable(Exception):
    """A dependency still unreachable when a service's start-up wait ran out: one log line, exit status 1."""


async def until_reachable(
    what: str, setting: str, connect_once: Callable[[], Awaitable[T]], within: float
) -> T:
    """`connect_once()`, tried again with growing waits for `within` seconds: a service may start before
    its database or broker (compose, Kubernetes). `setting` names the variable that says where it is."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    waits = delays(0.5, 5.0)
    while True:
        try:
            return await connect_once()
        except (OSError, asyncpg.PostgresError, aio_pika.exceptions.AMQPError) as exc:
            error = mask_secrets(str(exc) or repr(exc))
            delay = next(waits)
            if loop.time() + delay > deadline:
                raise Unreachable(
                    f"{what} not reachable within {within:g} s ({error}); check {setting}"
                ) from None
            get_logger().warning(f"{what} not reachable yet; retrying", error=error, in_seconds=delay)
            await asyncio.sleep(delay)

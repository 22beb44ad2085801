"""The one retry policy: which errors are worth trying again, and how long to wait before each try.

Used by every place that waits out a dependency: the broker's message wrapper, the collector's
batch store, the gateway's start-up connections, the OpenAI client, the scheduler's step retries
and the gateway's polling for a read model to catch up.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import aio_pika
import asyncpg

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

"""Caps on what one client can make the gateway spend: open event streams, waiting reads and expensive
requests.

Each event stream holds a RabbitMQ channel and an exclusive queue (2,047 channels per connection is
the broker's hard wall), so streams are capped in total and per client (503 + Retry-After past a cap).
A waiting read (`GET /tasks/{id}?wait=S`) holds a connection and reads its task now and then, so those
are capped the same way.
Expensive routes (training search, table listing, opening a stream) draw from a token bucket per
client (429 + Retry-After when empty). Both are in-process: with several gateway replicas each
enforces its own share.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator

from services.api_gateway.errors import ServiceUnavailable
from shared.settings import GatewaySettings

STREAM_RETRY_AFTER_SECONDS = 5
WAITS_TOTAL = 1000
WAITS_PER_CLIENT = 20
_MAX_BUCKETS = 10_000


class Slots:
    """Counts held requests (open event streams, waiting reads: `what`, `reason`) in total and per client."""

    def __init__(
        self, total: int, per_client: int, what: str = "open event streams", reason: str = "stream_limit"
    ) -> None:
        self.total = total
        self.per_client = per_client
        self.what = what
        self.reason = reason
        self._open: dict[str, int] = {}

    @property
    def in_use(self) -> int:
        return sum(self._open.values())

    @contextlib.contextmanager
    def hold(self, client: str) -> Iterator[None]:
        """A slot for the body of the block, or ServiceUnavailable with Retry-After."""
        mine = self._open.get(client, 0)
        if mine >= self.per_client:
            raise self._full(f"this client already has {mine} {self.what} (limit {self.per_client})")
        if self.in_use >= self.total:
            raise self._full(f"the gateway has {self.total} {self.what}, its limit")
        self._open[client] = mine + 1
        try:
            yield
        finally:
            left = self._open[client] - 1
            if left:
                self._open[client] = left
            else:
                del self._open[client]

    def _full(self, reason: str) -> ServiceUnavailable:
        return ServiceUnavailable(
            f"{reason}; close one or retry later",
            headers={"Retry-After": str(STREAM_RETRY_AFTER_SECONDS)},
            extra={"reason": self.reason},
        )


class RateLimiter:
    """A token bucket per client: `burst` requests at once, refilled at `per_minute`."""

    def __init__(self, per_minute: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_second = per_minute / 60.0
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}  # client -> (tokens, at)

    def take(self, client: str) -> float:
        """0 if the request may proceed (one token taken), else the seconds until a token is due."""
        if self.per_second <= 0:
            return 0.0
        now = self._clock()
        tokens, at = self._buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - at) * self.per_second)
        if tokens >= 1.0:
            self._remember(client, tokens - 1.0, now)
            return 0.0
        self._remember(client, tokens, now)
        return (1.0 - tokens) / self.per_second

    def _remember(self, client: str, tokens: float, now: float) -> None:
        self._buckets.pop(client, None)
        self._buckets[client] = (tokens, now)
        if len(self._buckets) > _MAX_BUCKETS:
            # Forget the least recently seen client; it comes back with a full bucket at worst.
            self._buckets.pop(next(iter(self._buckets)))


class Limits:
    """The gateway's stream slots and rate limiter, built from its settings."""

    def __init__(self, settings: GatewaySettings) -> None:
        self.streams = Slots(settings.sse_max_streams_total, settings.sse_max_streams_per_client)
        self.waits = Slots(WAITS_TOTAL, WAITS_PER_CLIENT, "waiting task reads", "wait_limit")
        self.rate = RateLimiter(settings.rate_limit_per_minute, settings.rate_limit_burst)

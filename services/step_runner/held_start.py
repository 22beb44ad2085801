"""A try's `step_started`, held back briefly so that a short step's start and end make one message.

Most deliveries of a quick step are its two events, each to the collector and to the scheduler; sent
together they cost one delivery to each. A held start goes out alone, ahead of it, as soon as the try
emits anything but its terminal event (a log line, progress, an output, a heartbeat), and after `hold`
seconds at the latest: so a long step shows as running within `hold`, with the time it really started
(the envelope is made when the step starts).
"""

from __future__ import annotations

import asyncio
import contextlib

from pydantic import BaseModel

from shared.broker import Publisher
from shared.events import StepCancelled, StepFailed, StepStarted, StepSucceeded
from shared.logging import get_logger
from shared.messages import EventEnvelope

log = get_logger()
_TERMINAL = (StepSucceeded, StepFailed, StepCancelled)
START_HOLD_SECONDS = 0.2


class HeldStart:
    """The emit of one try: publishes each event as it comes, except a held `step_started`."""

    def __init__(self, publisher: Publisher, task_id: str, hold: float) -> None:
        self._publisher = publisher
        self._task_id = task_id
        self._hold = hold
        self._held: EventEnvelope | None = None
        self._lock = asyncio.Lock()  # the start goes out before anything emitted after it
        self._timer: asyncio.TimerHandle | None = None
        self._releasing: asyncio.Task[None] | None = None
        self._failure: Exception | None = None

    async def emit(self, payload: BaseModel) -> None:
        message = self._publisher.envelope(self._task_id, payload)
        if isinstance(payload, StepStarted):
            self._held = message
            self._timer = asyncio.get_running_loop().call_later(self._hold, self._release_soon)
            return
        async with self._lock:
            self._raise_failure()
            held, self._held = self._held, None
            self._stop_timer()
            if held is not None and isinstance(payload, _TERMINAL):
                await self._publisher.publish_events([held, message])
                return
            if held is not None:
                await self._publish_alone(held)
        await self._publisher.publish_event(message)

    def _release_soon(self) -> None:
        self._timer = None
        self._releasing = asyncio.create_task(self._release())

    async def _release(self) -> None:
        async with self._lock:
            held, self._held = self._held, None
            if held is not None:
                with contextlib.suppress(Exception):  # kept in _failure: the next emit raises it
                    await self._publish_alone(held)

    async def _publish_alone(self, held: EventEnvelope) -> None:
        try:
            await self._publisher.publish_event(held)
        except Exception as exc:
            log.warning("step_started not published", task_id=self._task_id, error=repr(exc))
            self._failure = exc
            raise

    def _raise_failure(self) -> None:
        """Nothing of a try whose start was not published goes out after it: the step runs again."""
        if self._failure is not None:
            raise self._failure

    def _stop_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def close(self) -> None:
        """The try is over: no held start goes out after it (an interrupted try leaves it unsent)."""
        self._stop_timer()
        self._held = None
        if self._releasing is not None and not self._releasing.done():
            self._releasing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._releasing

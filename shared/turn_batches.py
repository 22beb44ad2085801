"""Point reads asked for in the same turn of the event loop, answered by one query (issue 11: no
per-message round trip that a batch can replace).

Under load a service's handlers reach the same read together: the consumer hands it a burst of
deliveries, each handled in a task of its own, and all of them run in the next turn of the loop. Each
`get` joins the turn's batch; the batch's one query runs at the start of the following turn. A lone
`get` (light load) costs two turns of the loop more than a direct query, microseconds.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TurnBatches(Generic[K, V]):
    def __init__(self, fetch: Callable[[list[K]], Awaitable[dict[K, V]]]) -> None:
        """`fetch` answers a batch of distinct keys, every one of them."""
        self._fetch = fetch
        self._waiting: dict[K, list[asyncio.Future[V]]] = {}
        self._running: set[asyncio.Task[None]] = set()

    async def get(self, key: K) -> V:
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._start)
        future: asyncio.Future[V] = loop.create_future()
        self._waiting.setdefault(key, []).append(future)
        return await future

    def _start(self) -> None:
        batch, self._waiting = self._waiting, {}
        task = asyncio.create_task(self._answer(batch))
        self._running.add(task)  # kept referenced until it ends
        task.add_done_callback(self._running.discard)

    async def _answer(self, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            values = await self._fetch(list(batch))
        except asyncio.CancelledError:
            for futures in batch.values():
                for future in futures:
                    future.cancel()
            raise
        except Exception as exc:  # each caller gets the failure as its own read would have raised it
            for futures in batch.values():
                for future in futures:
                    if not future.done():
                        future.set_exception(exc)
            return
        for key, futures in batch.items():
            for future in futures:
                if not future.done():  # a caller that was cancelled meanwhile
                    future.set_result(values[key])

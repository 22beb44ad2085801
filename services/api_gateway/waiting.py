"""Waiting for the read model: woken by the collector's notifications, polling while they are unavailable.

Create and delete wait until the collector has recorded what they published; `GET /tasks/{id}?wait=S`
waits until a task has settled (docs/API.md).
"""

from __future__ import annotations

import asyncio
from typing import Any, TypeAlias

import asyncpg
from aiohttp import web

from services.api_gateway.adapters import read_models
from services.api_gateway.adapters.recorded import LISTENER, Waiter
from services.api_gateway.keys import POOL
from shared.retry import delays
from shared.vocabulary import TASK_MOVING

# With the listener up, the read model is still looked at this often: a notification may never come
# (a collector of an older release during a rolling upgrade, a row written by other means).
_BACKSTOP = (0.5, 2.0)

Row: TypeAlias = asyncpg.Record | dict[str, Any]


async def wait_until(predicate: Any, timeout: float, woken: Waiter | None = None) -> Any:
    """Poll `predicate()` (async) with a growing interval until it returns a truthy value or time runs out.

    With `woken` (a notification waiter) it is checked when woken instead, and on a slow backstop, while
    the waiter's listener is up; when the listener is down it polls. It is always checked at the end, and
    the wait ends early when the gateway is shutting down (`Waiter.stopping`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    polls = delays(0.005, 0.25, factor=1.5)  # a primary-key read: polling soon is cheap
    backstop = delays(*_BACKSTOP)
    while True:
        if woken is not None and woken.listening:
            await woken.wait(min(next(backstop), deadline - loop.time()))
        value = await predicate()
        if value or loop.time() >= deadline or (woken is not None and woken.stopping):
            return value
        if woken is None or not woken.listening:
            delay = next(polls)
            if woken is None:
                await asyncio.sleep(min(delay, max(deadline - loop.time(), 0)))
            else:  # a returning listener ends the nap early
                await woken.wait(min(delay, deadline - loop.time()))


async def wait_settled(app: web.Application, task_id: str, seconds: float) -> Row | None:
    """The task's row (read_models.get_task) once it has settled (a status outside TASK_MOVING), None once it
    is gone, or its row as it stands after `seconds`.

    The collector notifies a task's every change of status, so the wait ends at the commit that settles
    it, with one read of the row per wake-up."""
    pool = app[POOL]
    row: Row | None = None

    async def settled() -> bool:
        nonlocal row
        row = await read_models.get_task(pool, task_id)
        return row is None or row["status"] not in TASK_MOVING

    with app[LISTENER].expect(task_id) as woken:
        if not await settled():  # registered first: a change committed since the caller's read wakes it
            await wait_until(settled, seconds, woken)
    return row

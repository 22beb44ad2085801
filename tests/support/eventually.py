"""The one polling helper of the test suite: wait for a condition instead of sleeping a fixed time.

`eventually(check)` calls `check()` (a plain or async callable) until it returns a truthy value, and
returns that value. An `AssertionError` raised by the check (or any exception type named in `retry_on`)
means "not yet"; any other exception fails at once, because a broken check should not be waited out.
When the time is up it raises an `AssertionError` that names what was awaited and carries the last value
the check returned or the last exception it raised, so a failure says how far things got.

A negative check ("nothing happened") is never written as "sleep, then look": it waits for a positive
marker sent after the action instead (see `CommandProbe.none` in tests/integration/gateway_fixtures.py).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")

_NOTHING = object()


@overload
async def eventually(
    check: Callable[[], Awaitable[T]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str | None = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> T: ...


@overload
async def eventually(
    check: Callable[[], T],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str | None = ...,
    retry_on: tuple[type[BaseException], ...] = ...,
) -> T: ...


async def eventually(
    check: Callable[[], Any],
    *,
    timeout: float = 20.0,
    interval: float = 0.1,
    what: str | None = None,
    retry_on: tuple[type[BaseException], ...] = (AssertionError,),
) -> Any:
    """Poll `check()` every `interval` seconds until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout
    last_value: object = _NOTHING
    last_error: BaseException | None = None
    attempts = 0
    while True:
        attempts += 1
        try:
            value = check()
            if inspect.isawaitable(value):
                value = await value
        except retry_on as error:
            last_error, last_value = error, _NOTHING
        else:
            if value:
                return value
            last_value, last_error = value, None
        if time.monotonic() >= deadline:
            break
        await asyncio.sleep(min(interval, max(0.0, deadline - time.monotonic())))
    raise AssertionError(_failure(what or _name(check), timeout, attempts, last_value, last_error))


def _name(check: Callable[..., object]) -> str:
    name = getattr(check, "__qualname__", None) or repr(check)
    return "a condition" if "<lambda>" in name else name


def _failure(what: str, timeout: float, attempts: int, value: object, error: BaseException | None) -> str:
    if error is not None:
        last = f"last error: {type(error).__name__}: {error}"
    else:
        text = repr(value)
        last = f"last value: {text if len(text) <= 2000 else text[:2000] + '…'}"
    return f"timed out after {timeout}s ({attempts} checks) waiting for {what}; {last}"

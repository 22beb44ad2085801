"""The test suite's one polling helper: returns the check's value, fails with the last value or error."""

from __future__ import annotations

import time

import pytest

from tests.support.eventually import eventually


async def test_returns_the_first_truthy_value_of_a_plain_check() -> None:
    calls: list[int] = []

    def check() -> list[int] | None:
        calls.append(1)
        return calls if len(calls) == 3 else None

    assert await eventually(check, interval=0.001) == [1, 1, 1]


async def test_awaits_an_async_check_and_retries_assertion_errors() -> None:
    seen = 0

    async def check() -> str:
        nonlocal seen
        seen += 1
        assert seen >= 2, "not yet"
        return "done"

    assert await eventually(check, interval=0.001) == "done"
    assert seen == 2


async def test_times_out_with_the_last_value_and_what_was_awaited() -> None:
    started = time.monotonic()
    with pytest.raises(AssertionError) as failure:
        await eventually(lambda: {"status": "running"}.get("missing", 0), timeout=0.05, what="the task")
    assert time.monotonic() - started < 1
    message = str(failure.value)
    assert "waiting for the task" in message and "last value: 0" in message


async def test_times_out_with_the_last_assertion() -> None:
    def check() -> bool:
        raise AssertionError("step_status was running")

    with pytest.raises(AssertionError, match="last error: AssertionError: step_status was running"):
        await eventually(check, timeout=0.05, interval=0.01)


async def test_other_errors_fail_at_once_unless_named() -> None:
    calls = 0

    def broken() -> bool:
        nonlocal calls
        calls += 1
        raise KeyError("typo")

    with pytest.raises(KeyError):
        await eventually(broken, timeout=5)
    assert calls == 1
    with pytest.raises(AssertionError, match="KeyError"):
        await eventually(broken, timeout=0.05, interval=0.01, retry_on=(KeyError,))
    assert calls > 2


async def test_checks_once_more_at_the_deadline() -> None:
    """A condition that comes true during the last interval is still seen: no off-by-one at the end."""
    started = time.monotonic()

    def check() -> bool:
        return time.monotonic() - started > 0.08

    assert await eventually(check, timeout=0.1, interval=0.5) is True

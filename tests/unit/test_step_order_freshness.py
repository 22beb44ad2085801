"""A step order's freshness (issue 11): the window the scheduler gives an order (RunStep.fresh_seconds) and
the runner's rule for starting it without asking the store whether it is still wanted."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import pytest

from services.scheduler.domain import FRESH_ORDER_SECONDS, fresh_window
from services.step_runner.freshness import StoppedTasks, needs_store_check
from tests.unit.test_scheduler_domain import POLICY, T0, created, env, fold, secs, started_task


def test_the_window_is_half_the_time_to_the_nearest_timeout_and_at_most_the_cap() -> None:
    state = started_task()
    assert fresh_window(state, T0, POLICY) == FRESH_ORDER_SECONDS
    # a dispatch timeout of 4 s: the order may be failed 4 s after it is issued
    assert fresh_window(state, T0, replace(POLICY, dispatch_timeout=secs(4))) == 2.0
    # a task started 2 h - 3 s ago with the 2 h task timeout: 3 s left
    assert fresh_window(state, T0 + timedelta(hours=2) - secs(3), POLICY) == 1.5
    # past its task timeout (the tick fails it): no window
    assert fresh_window(state, T0 + timedelta(hours=3), POLICY) == 0.0
    # a task not started yet counts only the dispatch timeout
    assert fresh_window(fold([env(created())]), T0, replace(POLICY, dispatch_timeout=secs(1))) == 0.5


NOW = T0 + secs(100)


@pytest.mark.parametrize(
    "window,issued,listened,stopped,check",
    [
        (5.0, NOW - secs(1), 60.0, False, False),  # fresh: started at once
        (5.0, NOW + secs(2), 60.0, False, False),  # the runner's clock behind by less than the window
        (5.0, NOW - secs(6), 60.0, False, True),  # older than its window
        (5.0, NOW + secs(6), 60.0, False, True),  # a clock too far off to trust
        (0.0, NOW, 60.0, False, True),  # an order without a window (an earlier scheduler's)
        (5.0, NOW - secs(1), 60.0, True, True),  # a cancel or delete of its task reached this runner
        (5.0, NOW - secs(1), 9.0, False, True),  # listening for less than twice the window
        (5.0, NOW - secs(1), None, False, True),  # not listening at all
    ],
)
def test_a_runner_asks_the_store_unless_the_order_is_known_fresh(
    window: float, issued: datetime, listened: float | None, stopped: bool, check: bool
) -> None:
    assert needs_store_check(window, issued, NOW, listened, stopped) is check


def test_stopped_tasks_remember_the_most_recent() -> None:
    stopped = StoppedTasks(capacity=2)
    for task_id in ("a", "b", "a", "c"):
        stopped.add(task_id)
    assert "a" in stopped and "c" in stopped and "b" not in stopped

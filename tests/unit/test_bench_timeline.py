"""The bench's light-load timeline: which gap between a task's events is which stretch."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from bench.timeline import medians, stretches

T0 = datetime(2026, 12, 1, tzinfo=UTC)


def _at(ms: float) -> datetime:
    return T0 + timedelta(milliseconds=ms)


def _task() -> list[tuple[str, datetime]]:
    """A two-step task whose stretches are: create 6, order 5 and 7, step 1 and 1, decide 4 and 3."""
    kinds_and_ms = [
        ("task_created", 6), ("task_started", 6.2), ("step_scheduled", 6.4),
        ("step_started", 11.4), ("step_succeeded", 12.4),
        ("step_scheduled", 16.4), ("step_started", 23.4), ("step_succeeded", 24.4),
        ("task_finished", 27.4),
    ]  # fmt: skip
    return [(kind, _at(ms)) for kind, ms in kinds_and_ms]


def test_each_gap_counts_as_its_stretch() -> None:
    sent = T0.timestamp()
    got = stretches(sent, sent + 0.0374, _task())
    rounded = {name: [round(v, 3) for v in values] for name, values in got.items()}
    assert rounded == {
        "create": [6.0],
        "order": [5.0, 7.0],
        "step": [1.0, 1.0],
        "decide": [4.0, 3.0],
        "seen": [10.0],
    }


def test_gaps_between_other_events_count_nowhere() -> None:
    """A step's log line between two events splits their gap: neither part is a stretch."""
    events = [("step_scheduled", _at(0)), ("task_log", _at(2)), ("step_started", _at(5))]
    got = stretches(T0.timestamp(), T0.timestamp(), events)
    assert got["order"] == [] and got["create"] == [] and got["seen"] == []


def test_medians_pool_every_task_and_step() -> None:
    sent = T0.timestamp()
    got = medians([stretches(sent, sent + 0.0374, _task()), stretches(sent, sent + 0.0474, _task())])
    assert round(got["order"], 3) == 6.0  # 5, 7, 5, 7
    assert round(got["seen"], 3) == 15.0  # 10 and 20
    assert medians([]) == dict.fromkeys(("create", "order", "step", "decide", "seen"))

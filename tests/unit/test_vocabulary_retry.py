"""The shared vocabulary and the one retry policy that every service uses."""

from __future__ import annotations

from itertools import islice
from typing import get_args

import asyncpg
import pytest

from shared import broker, events, vocabulary
from shared.openai_http import RetryPolicy
from shared.retry import TRANSIENT_ERRORS, backoff, delays


def test_statuses_and_levels_have_one_home() -> None:
    assert vocabulary.TASK_TERMINAL == {"completed", "partial_completed", "failed", "cancelled"}
    assert set(vocabulary.FINAL_TASK_STATUSES) == vocabulary.TASK_TERMINAL
    assert vocabulary.TASK_TERMINAL < set(vocabulary.TASK_STATUSES)
    assert vocabulary.TASK_SUCCEEDED < vocabulary.TASK_TERMINAL
    assert vocabulary.STEP_DONE | vocabulary.STEP_ACTIVE < set(vocabulary.STEP_STATUSES)
    assert list(vocabulary.LEVEL_NUMBERS) == list(vocabulary.LOG_LEVELS)
    # The events speak the same words: TaskFinished takes exactly the terminal statuses.
    finished = events.TaskFinished.model_fields["status"].annotation
    assert set(get_args(finished)) == vocabulary.TASK_TERMINAL
    # The dead aliases are gone from the event catalog.
    assert not hasattr(events, "TaskStatus") and not hasattr(events, "STEP_TERMINAL_EVENTS")


def test_backoff_is_exponential_and_capped() -> None:
    assert [backoff(a, 0.5, 3.0) for a in range(1, 6)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    assert list(islice(delays(0.2, 5.0), 7)) == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    assert list(islice(delays(0.02, 0.25, factor=1.5), 3)) == pytest.approx([0.02, 0.03, 0.045])


def test_jitter_stays_within_its_fraction() -> None:
    waits = [backoff(3, 1.0, 30.0, jitter=0.2) for _ in range(200)]
    assert all(3.2 <= w <= 4.8 for w in waits)
    assert len(set(waits)) > 1
    assert all(0.8 <= RetryPolicy().backoff(1) <= 1.2 for _ in range(50))


def test_transient_errors_are_the_brokers_and_exclude_bugs() -> None:
    assert broker.TRANSIENT_ERRORS is TRANSIENT_ERRORS
    for exc in (ConnectionRefusedError(), TimeoutError(), asyncpg.exceptions.DeadlockDetectedError()):
        assert isinstance(exc, TRANSIENT_ERRORS)
    for bug in (ValueError(), KeyError(), asyncpg.exceptions.UndefinedTableError()):
        assert not isinstance(bug, TRANSIENT_ERRORS)


@pytest.mark.parametrize("bad", ["Bad", "1abc", "a-b", "x" * 42, "public; drop"])
def test_schema_names_follow_one_rule(bad: str) -> None:
    from pydantic import ValidationError

    from shared.pipeline_settings import PipelineSettings, schema_name

    assert schema_name("dp_training_1") == "dp_training_1"
    with pytest.raises(ValueError, match="lower-case SQL identifier"):
        schema_name(bad)
    with pytest.raises(ValidationError, match="lower-case SQL identifier"):
        PipelineSettings(training_schema=bad)


def test_connection_errors_are_the_transient_ones_a_request_can_report() -> None:
    from services.api_gateway.errors import UNAVAILABLE_ERRORS
    from shared.retry import CONNECTION_ERRORS

    assert set(CONNECTION_ERRORS) <= set(TRANSIENT_ERRORS)
    assert set(CONNECTION_ERRORS) <= set(UNAVAILABLE_ERRORS)
    # A missing file is an OS error a handler may retry, but not "the service is unavailable".
    assert isinstance(FileNotFoundError(), TRANSIENT_ERRORS)
    assert not isinstance(FileNotFoundError(), CONNECTION_ERRORS)
    assert isinstance(asyncpg.exceptions.TooManyConnectionsError(), UNAVAILABLE_ERRORS)

"""The one decoder of stored events (shared/event_store.py), its upcasting hook, the projector's handler
table and the two lifecycle rules (shared/lifecycle.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

import shared.event_store as store
from services.log_collector import projections
from shared.event_store import EVENT_VERSIONS, UPCASTERS, UndecodableEvent, decode, upcast
from shared.events import EVENT_CLASSES, EVENT_TYPES, StepHeartbeat, TaskCancelRequested, check_dispatch_table
from shared.lifecycle import execution_finished, is_old_execution, step_finished, task_finished

FIXTURE = Path(__file__).parent.parent / "fixtures" / "stored_events_v1.jsonl"


def _rows() -> list[dict[str, Any]]:
    return [json.loads(line) for line in FIXTURE.read_text(encoding="utf-8").splitlines() if line.strip()]


def test_the_v1_fixture_holds_one_stored_event_of_every_type_in_the_catalog() -> None:
    types = [row["type"] for row in _rows()]
    assert sorted(types) == sorted(EVENT_TYPES)  # a new event type needs its stored example here
    assert all("version" not in row for row in _rows())  # stored before versions existed: version 1


@pytest.mark.parametrize("row", _rows(), ids=lambda r: r["type"])
def test_every_stored_v1_event_decodes_to_the_current_catalog(row: dict[str, Any]) -> None:
    envelope = decode(row)
    assert envelope.type == row["type"] == envelope.payload.type
    assert str(envelope.event_id) == row["event_id"]
    assert envelope.task_id == row["task_id"]
    assert type(envelope.payload) in EVENT_CLASSES


@pytest.mark.parametrize("row", _rows()[:3], ids=lambda r: r["type"])
def test_a_payload_stored_as_json_text_decodes_alike(row: dict[str, Any]) -> None:
    as_text = {**row, "payload": json.dumps(row["payload"]), "version": None}
    assert decode(as_text) == decode(row)


def _heartbeat_row(payload: dict[str, Any], version: int | None) -> dict[str, Any]:
    row = next(r for r in _rows() if r["type"] == "step_heartbeat")
    return {**row, "payload": {**row["payload"], **payload}, "version": version}


def test_an_upcaster_brings_an_old_shape_to_the_current_one(monkeypatch: pytest.MonkeyPatch) -> None:
    # Suppose v2 of step_heartbeat renamed `worker` (v1) to `runner_id`: v1 rows need the upcaster.
    row = _heartbeat_row({}, 1)
    old = {k: v for k, v in row["payload"].items() if k != "runner_id"} | {"worker": "runner-z9"}
    monkeypatch.setitem(EVENT_VERSIONS, "step_heartbeat", 2)
    with pytest.raises(UndecodableEvent, match="no upcaster for step_heartbeat v1 -> v2"):
        decode({**row, "payload": old})

    def rename(p: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in p.items() if k != "worker"} | {"runner_id": p["worker"]}

    monkeypatch.setitem(UPCASTERS, ("step_heartbeat", 1), rename)
    decoded = decode({**row, "payload": old})
    assert isinstance(decoded.payload, StepHeartbeat) and decoded.payload.runner_id == "runner-z9"
    # A row already in v2 is not upcast again.
    assert decode({**row, "version": 2}).payload == decoded.payload.model_copy(
        update={"runner_id": "runner-a1"}
    )


def test_without_an_upcaster_a_removed_field_is_undecodable() -> None:
    """Why versions exist: events forbid unknown fields, so a stored field the model lost fails."""
    with pytest.raises(ValidationError):
        decode(_heartbeat_row({"worker": "gone"}, None))


def test_a_version_newer_than_this_release_is_refused_with_a_reason() -> None:
    with pytest.raises(UndecodableEvent, match="newer release"):
        upcast("task_started", 2, {"type": "task_started"})


def test_appended_events_are_stamped_with_their_current_version() -> None:
    assert set(store.EVENT_VERSIONS) == set(EVENT_TYPES)
    assert all(v >= 1 for v in store.EVENT_VERSIONS.values())


def test_the_projector_table_covers_the_catalog() -> None:
    assert set(projections.HANDLERS) | projections.IGNORED == set(EVENT_CLASSES)
    assert not set(projections.HANDLERS) & projections.IGNORED


def test_a_table_missing_an_event_or_naming_a_stranger_is_refused() -> None:
    handlers = dict(projections.HANDLERS)
    del handlers[StepHeartbeat]
    with pytest.raises(
        TypeError, match="projector handler table: no handler and not ignored: \\['StepHeartbeat'\\]"
    ):
        check_dispatch_table("projector", handlers, projections.IGNORED)

    class Stray(StepHeartbeat):
        pass

    with pytest.raises(TypeError, match="not in the event catalog: \\['Stray'\\]"):
        check_dispatch_table("projector", [*projections.HANDLERS, Stray], projections.IGNORED)
    with pytest.raises(TypeError, match="handled and ignored"):
        check_dispatch_table("projector", projections.HANDLERS, {TaskCancelRequested, StepHeartbeat})


def test_a_finished_state_never_moves_back() -> None:
    assert all(task_finished(s) for s in ("completed", "partial_completed", "failed", "cancelled"))
    assert not any(task_finished(s) for s in ("pending", "in_progress", None))
    assert all(step_finished(s) for s in ("completed", "failed", "skipped", "cancelled"))
    assert not any(step_finished(s) for s in ("pending", "scheduled", "running", "waiting_retry"))
    assert all(execution_finished(s) for s in ("completed", "failed", "cancelled"))
    assert not any(execution_finished(s) for s in ("pending", "running", None))


def test_an_old_execution_is_ignored() -> None:
    assert is_old_execution("exec_2", "exec_1")
    assert not is_old_execution("exec_2", "exec_2")
    assert not is_old_execution("exec_2", None)  # a skip or a retry decision names no execution
    assert not is_old_execution(None, "exec_1")  # no execution known yet


async def test_the_projector_dispatches_through_the_table_and_touches_nothing_for_an_ignored_event(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: list[tuple[str, int]] = []

    async def record(p: projections.Projector, env: Any, e: Any, seq: int) -> None:
        seen.append((e.type, seq))

    monkeypatch.setitem(projections.HANDLERS, StepHeartbeat, record)
    projector = projections.Projector(conn=None)  # type: ignore[arg-type]  # any query would fail
    by_type = {row["type"]: decode(row) for row in _rows()}
    await projector.apply(by_type["step_heartbeat"], 7)
    await projector.apply(by_type["task_cancel_requested"], 8)
    assert seen == [("step_heartbeat", 7)]

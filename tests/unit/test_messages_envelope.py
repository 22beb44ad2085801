"""The envelope's `type`: filled from the payload when a producer leaves it out, refused when it differs
(shared/messages.py checks both after validation, so decoding JSON stays on pydantic's fast path)."""

from __future__ import annotations

import json

import pytest
from pydantic import ValidationError

from shared.commands import CancelTask
from shared.events import LogEmitted
from shared.messages import EVENT_ADAPTER, CommandEnvelope, EventEnvelope, decode_message, encode


def _event_json(**changes: object) -> bytes:
    body = json.loads(encode(EventEnvelope(producer="p", task_id="t1", payload=LogEmitted(message="m"))))
    body.update(changes)
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_type_is_filled_from_the_payload_when_left_out() -> None:
    assert EventEnvelope(producer="p", task_id="t1", payload=LogEmitted(message="m")).type == "log_emitted"
    assert EVENT_ADAPTER.validate_json(_event_json(type=...)).type == "log_emitted"
    assert EVENT_ADAPTER.validate_json(_event_json(type="")).type == "log_emitted"
    assert decode_message(_event_json(type=...)).type == "log_emitted"
    command = CommandEnvelope(producer="p", task_id="t1", payload=CancelTask(reason="r"))
    assert command.type == "cancel_task"
    assert decode_message(encode(command)).type == "cancel_task"


def test_a_type_other_than_the_payloads_is_refused() -> None:
    with pytest.raises(ValidationError, match="does not match payload type 'log_emitted'"):
        EVENT_ADAPTER.validate_json(_event_json(type="step_started"))
    with pytest.raises(ValidationError, match="does not match"):
        EventEnvelope(type="task_created", producer="p", task_id="t1", payload=LogEmitted(message="m"))


def test_the_filled_type_round_trips_and_the_envelope_stays_frozen() -> None:
    decoded = EVENT_ADAPTER.validate_json(_event_json(type=...))
    again = EVENT_ADAPTER.validate_json(encode(decoded))
    assert again == decoded
    assert json.loads(encode(decoded))["type"] == "log_emitted"
    assert decoded.routing_key.startswith("task.t1.log_emitted.")
    with pytest.raises(ValidationError):
        decoded.type = "x"  # type: ignore[misc]

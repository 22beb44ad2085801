"""The checker that holds test doubles of the gateway to its OpenAPI document catches what drifts."""

from __future__ import annotations

import json

from services.api_gateway.envelope import envelope
from tests.support.openapi_contract import ContractChecker, gateway_document

CHECK = ContractChecker(gateway_document())
TASKS = "/api/v0/data_pipeline/tasks"
TASK_ID = "task_20250101_000000_ab"


def _json(status: int, **data: object) -> bytes:
    return json.dumps(envelope(status, "text", data)).encode()


def test_a_documented_response_passes() -> None:
    body = _json(202, task_id=TASK_ID, command="cancel_task", command_id="c1")
    assert CHECK.response_problems("POST", f"{TASKS}/{TASK_ID}/cancel", 202, "application/json", body) == []


def test_a_missing_field_is_named() -> None:
    body = _json(202, task_id=TASK_ID, command="cancel_task")
    problems = CHECK.response_problems("POST", f"{TASKS}/{TASK_ID}/cancel", 202, "application/json", body)
    assert problems == [f"POST {TASKS}/{TASK_ID}/cancel -> 202: data: 'command_id' is a required property"]


def test_wrong_envelope_status_and_content_type_are_caught() -> None:
    ok = _json(200, tasks=[], next_cursor=None, total=0, limit=20, offset=None)
    assert CHECK.response_problems("GET", TASKS, 200, "application/json", ok) == []
    assert "status not documented" in CHECK.response_problems("GET", TASKS, 418, "application/json", ok)[0]
    assert "content type 'text/plain'" in CHECK.response_problems("GET", TASKS, 200, "text/plain", b"x")[0]
    wrong_message = json.loads(ok)
    wrong_message["message"] = "ok"
    problems = CHECK.response_problems(
        "GET", TASKS, 200, "application/json", json.dumps(wrong_message).encode()
    )
    assert problems == [f"GET {TASKS} -> 200: message: 'success' was expected"]


def test_unknown_operations_and_fixed_paths() -> None:
    assert CHECK.operation("GET", f"{TASKS}/active").path == f"{TASKS}/active"  # type: ignore[union-attr]
    assert CHECK.operation("PATCH", f"{TASKS}/{TASK_ID}") is None
    assert (
        "no such operation"
        in CHECK.response_problems("GET", "/api/v0/nope", 200, "application/json", b"{}")[0]
    )


def test_requests_the_gateway_refuses() -> None:
    assert CHECK.request_problems("GET", f"{TASKS}/{TASK_ID}", {}, None, False) == []
    assert "path parameter task_id='t1'" in CHECK.request_problems("GET", f"{TASKS}/t1", {}, None, False)[0]
    assert (
        "query parameter limit=500" in CHECK.request_problems("GET", TASKS, {"limit": "500"}, None, False)[0]
    )
    assert CHECK.request_problems("GET", TASKS, {"limit": "5"}, None, False) == []
    assert CHECK.request_problems("POST", TASKS, {}, None, False) == [
        f"POST {TASKS}: a request body is required"
    ]
    assert CHECK.request_problems("POST", TASKS, {}, {"parameters": {}}, True)

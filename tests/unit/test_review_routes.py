"""The review routes in the gateway's route table (issue #12 part 1): reading needs the viewer role,
every decision, the preview (business rows), complete and abandon need the operator role; the document
states the pair id's shape."""

from __future__ import annotations

from services.api_gateway.bootstrap import all_routes
from services.api_gateway.openapi import build_openapi
from services.api_gateway.spec import DATA_PIPELINE

TASK = f"{DATA_PIPELINE}/tasks/{{task_id}}"


def test_reading_is_for_viewers_and_deciding_for_operators() -> None:
    roles = {(r.method, r.path): r.role for r in all_routes() if "/pairs" in r.path or "/review/" in r.path}
    assert roles == {
        ("GET", f"{TASK}/pairs"): "viewer",
        ("PATCH", f"{TASK}/pairs/{{pair_id}}"): "operator",
        ("GET", f"{TASK}/pairs/{{pair_id}}/preview"): "operator",
        ("POST", f"{TASK}/review/bulk"): "operator",
        ("POST", f"{TASK}/review/complete"): "operator",
        ("POST", f"{TASK}/review/abandon"): "operator",
    }


def test_the_document_states_the_pair_id_and_the_create_parameter() -> None:
    doc = build_openapi(all_routes())
    patch = doc["paths"][f"{TASK}/pairs/{{pair_id}}"]["patch"]
    [pair_id] = [p for p in patch["parameters"] if p["name"] == "pair_id"]
    assert pair_id["schema"]["pattern"] == "^[0-9a-f]{16}$"
    assert patch["x-required-role"] == "operator"
    create = doc["components"]["schemas"]["CreateTaskParameters"]["properties"]
    assert create["review_before_load"]["default"] is False

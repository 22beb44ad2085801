"""Gateway: odd input that once slipped past validation (500s, or values the database cannot store),
passwords the mask could not hide, malformed uploads, task-id uniqueness, and a valid OpenAPI document."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import asyncio
import base64
import json
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from pydantic import ValidationError

from shared.ids import is_valid_task_id
from shared.settings import GatewaySettings
from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    CommandProbe,
    ReadModels,
    commands,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import assert_envelope, body, call

pytestmark = pytest.mark.integration

BIG = "9" * 30  # far past PostgreSQL's bigint


def cursor(**data: Any) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("search=a%00b", "search"),
        ("created_by=%00", "created_by"),
        ("db_name=%00", "db_name"),
        ("cursor=" + cursor(k="tasks", t="2024-01-01T00:00:00+00:00", i="\x00"), "cursor"),
    ],
)
async def test_task_list_refuses_nul_characters(gateway: TestClient, query: str, field: str) -> None:
    data = await call(gateway, "GET", f"{API}/tasks?{query}", 400)
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == [field]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("logs?q=%00", "q"),
        ("logs?after=" + BIG, "after"),
        ("logs?cursor=" + cursor(k="logs", v=int(BIG)), "cursor"),
        ("events?after=" + BIG, "after"),
        ("events?type=%00", "type"),
        ("events?cursor=" + cursor(k="events", v=int(BIG)), "cursor"),
    ],
)
async def test_log_and_event_queries_refuse_unstorable_values(
    gateway: TestClient, rows: ReadModels, query: str, field: str
) -> None:
    task_id = await rows.task(status="completed")
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/{query}", 400)
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == [field]


async def test_log_follow_refuses_an_out_of_range_last_event_id(
    gateway: TestClient, rows: ReadModels
) -> None:
    task_id = await rows.task(status="in_progress")
    data = await call(
        gateway,
        "GET",
        f"{API}/tasks/{task_id}/logs?follow=true",
        400,
        headers={"Last-Event-ID": BIG},
    )
    assert data["invalid_params"] == ["Last-Event-ID"]


@pytest.mark.parametrize(
    "raw",
    [
        b"[" * 100_000 + b"]" * 100_000,
        b'{"parameters": NaN}',
        b'{"parameters": {"theme_count": Infinity}}',
    ],
    ids=["deeply-nested", "NaN", "Infinity"],
)
async def test_create_refuses_json_that_is_not_json(
    gateway: TestClient, commands: CommandProbe, raw: bytes
) -> None:
    data = await call(
        gateway, "POST", f"{API}/tasks", 400, data=raw, headers={"Content-Type": "application/json"}
    )
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["body"]
    await commands.none()


@pytest.mark.parametrize(
    ("parameters", "field"),
    [
        ({"business_context": "a\x00b"}, "business_context"),
        ({"task_name": "\x00"}, "task_name"),
        ({"db_connection": "postgresql://u:pw@h/db\x00"}, "db_connection"),
        ({"output_dir": "x\x00"}, "output_dir"),
    ],
)
async def test_create_refuses_nul_characters_postgresql_cannot_store(
    gateway: TestClient, commands: CommandProbe, parameters: dict[str, Any], field: str
) -> None:
    data = await call(gateway, "POST", f"{API}/tasks", 400, json=body(**parameters))
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == [field]
    await commands.none()


async def test_cancel_refuses_a_nul_character_in_the_reason(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(status="in_progress")
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/cancel", 400, json={"reason": "why\x00"})
    assert data["invalid_params"] == ["reason"]
    await commands.none()


@pytest.mark.parametrize(
    ("url", "password"),
    [
        ("postgresql://u:pa ss@db.example/shop", "pa ss"),
        ("postgresql://u:pa\tss@db.example/shop", "pa\tss"),
        ("postgresql://u:pa\nss@db.example/shop", "pa\nss"),
    ],
    ids=["space", "tab", "newline"],
)
async def test_a_password_the_mask_cannot_hide_is_refused(
    gateway: TestClient, commands: CommandProbe, url: str, password: str
) -> None:
    """`mask_secrets` cannot tell where a password with whitespace ends: such a URL is refused."""
    for path, payload in (
        (f"{API}/tasks", body(db_connection=url)),
        (f"{API}/database/tables", {"db_connection": url}),
    ):
        resp = await gateway.post(path, json=payload)
        text = await resp.text()
        assert resp.status == 400, text
        data = assert_envelope(json.loads(text), 400)
        assert data["invalid_params"] == ["db_connection"]
        assert password not in text and json.dumps(password)[1:-1] not in text
        assert "ss@" not in text
    await commands.none()


async def test_a_percent_encoded_password_is_accepted_and_masked(
    make_gateway: Any, commands: CommandProbe
) -> None:
    client = await make_gateway(create_visibility_timeout_seconds=0.05)
    await call(client, "POST", f"{API}/tasks", 202, json=body(db_connection="postgresql://u:p%40s%20s@h/db"))
    params = (await commands.next()).payload.parameters  # type: ignore[union-attr]
    assert params.db_connection == "postgresql://u:***@h/db"
    # An unencoded "@" inside the password: the driver would end the userinfo at the first "@" and read
    # the host as "ss@h", so the URL is refused (without echoing it).
    data = await call(
        client, "POST", f"{API}/tasks", 400, json=body(db_connection="postgresql://u:p@ss@h/db")
    )
    assert data["invalid_params"] == ["db_connection"] and "ss@" not in json.dumps(data)
    await commands.none()


@pytest.mark.parametrize(
    ("content_type", "raw"),
    [
        ("multipart/form-data; boundary=xx", b"not multipart at all"),
        ("multipart/form-data", b"--xx\r\n"),
        ("multipart/form-data; boundary=" + "x" * 100, b""),
        ("multipart/form-data; boundary=xx", b"--xx\r\nBad header\r\n\r\nabc\r\n--xx--\r\n"),
    ],
    ids=["no-boundary-in-body", "no-boundary-param", "long-boundary", "bad-part-header"],
)
async def test_a_malformed_upload_is_400(
    gateway: TestClient, rows: ReadModels, content_type: str, raw: bytes
) -> None:
    task_id = await rows.task(status="pending")
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/upload-table-list",
        400,
        data=raw,
        headers={"Content-Type": content_type},
    )
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["body"]


async def test_many_creates_in_the_same_second_get_distinct_ids(
    make_gateway: Any, commands: CommandProbe
) -> None:
    client = await make_gateway(create_visibility_timeout_seconds=0.01)
    count = 60
    answers = await asyncio.gather(
        *(client.post(f"{API}/tasks", json=body(task_name=f"t{i}")) for i in range(count))
    )
    ids = []
    for resp in answers:
        data = assert_envelope(await resp.json(), resp.status)
        assert resp.status in (201, 202)
        ids.append(data["task_id"])
    assert len(set(ids)) == count
    assert all(is_valid_task_id(t) and t.startswith("task_") and len(t) <= 32 for t in ids)
    published = {(await commands.next()).task_id for _ in range(count)}
    assert published == set(ids)


async def test_openapi_document_is_a_valid_openapi_3_document(gateway: TestClient) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    resp = await gateway.get("/api/v0/openapi.json")
    assert resp.status == 200
    doc = await resp.json()
    assert doc["openapi"].startswith("3.")
    validator.validate(doc)


def test_a_configured_connection_the_driver_cannot_parse_is_refused_at_start_up() -> None:
    """A space and an unencoded "@" in a configured URL: the service does not start, and says which
    connection is wrong without printing it."""
    with pytest.raises(ValidationError) as info:
        GatewaySettings(connections={"odd": "postgresql://svc:pa ss@word@db.internal/shopdb"})
    assert "odd" in str(info.value) and "pa ss" not in str(info.value) and "word@" not in str(info.value)


async def test_task_list_default_page_size_is_the_seeds_50(gateway: TestClient, rows: ReadModels) -> None:
    marker = f"db_{rows.new_id()[-6:]}_default"
    for _ in range(51):
        await rows.task(db_name=marker)
    data = await call(gateway, "GET", f"{API}/tasks?db_name={marker}", 200)
    assert len(data["tasks"]) == 50 and data["total"] == 51 and data["next_cursor"]


async def test_openapi_documents_the_errors_every_route_can_answer(gateway: TestClient) -> None:
    doc = await (await gateway.get("/api/v0/openapi.json")).json()
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            where = (method, path)
            if "requestBody" in op:
                assert {"400", "413", "415"} <= set(op["responses"]), where
            if op.get("security"):
                assert "401" in op["responses"], where
            if op.get("security") and path.startswith(f"{API}/tasks"):
                assert "503" in op["responses"], where
            if "{task_id}" in path:
                assert {"400", "404"} <= set(op["responses"]), where
    logs = doc["paths"][f"{API}/tasks/{{task_id}}/logs"]["get"]
    assert any(p["in"] == "header" and p["name"] == "Last-Event-ID" for p in logs["parameters"])

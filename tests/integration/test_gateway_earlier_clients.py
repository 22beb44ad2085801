"""Gateway: what the earlier implementation's clients call besides the seed's routes (issue #14, items
5-7): offset paging on GET /tasks, POST /tasks/query, POST /tasks/{id}/logs/query, the earlier keys of
the task detail. Before, `offset` was ignored (offset-paging clients looped on the first page) and the
two query routes were 404."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ClientFactory,
    ReadModels,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import call
from tests.support.demo_db import demo_db_url  # noqa: F401

pytestmark = pytest.mark.integration


async def _five_tasks(rows: ReadModels) -> tuple[str, list[str]]:
    """Five tasks of one database of their own, oldest first."""
    db = f"db_{uuid.uuid4().hex[:8]}"
    base = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
    ids = []
    for i, status in enumerate(["completed", "failed", "completed", "pending", "in_progress"]):
        ids.append(
            await rows.task(
                status=status,
                created_at=base + timedelta(days=i),
                db_name=db,
                task_name=f"highway {i}" if i % 2 == 0 else f"bank {i}",
            )
        )
    return db, ids


async def test_get_tasks_pages_by_offset_and_echoes_limit_and_offset(
    gateway: TestClient, rows: ReadModels
) -> None:
    db, ids = await _five_tasks(rows)
    newest_first = list(reversed(ids))
    seen: list[str] = []
    offset = 0
    while True:
        data = await call(
            gateway, "GET", f"{API}/tasks", 200, params={"db_name": db, "limit": "2", "offset": str(offset)}
        )
        assert data["limit"] == 2 and data["offset"] == offset and data["total"] == 5
        if not data["tasks"]:
            break
        seen += [t["task_id"] for t in data["tasks"]]
        offset += 2
    assert seen == newest_first
    # The keyset cursor still works, and says so by echoing no offset.
    data = await call(gateway, "GET", f"{API}/tasks", 200, params={"db_name": db, "limit": "2"})
    assert data["offset"] == 0 and data["next_cursor"]
    data = await call(
        gateway,
        "GET",
        f"{API}/tasks",
        200,
        params={"db_name": db, "limit": "2", "cursor": data["next_cursor"]},
    )
    assert [t["task_id"] for t in data["tasks"]] == newest_first[2:4] and data["offset"] is None
    refused = await call(
        gateway,
        "GET",
        f"{API}/tasks",
        400,
        params={"db_name": db, "offset": "2", "cursor": data["next_cursor"]},
    )
    assert refused["invalid_params"] == ["cursor", "offset"]
    await call(gateway, "GET", f"{API}/tasks", 400, params={"offset": "-1"})


async def test_query_tasks_filters_sorts_and_pages(gateway: TestClient, rows: ReadModels) -> None:
    db, ids = await _five_tasks(rows)
    url = f"{API}/tasks/query"
    data = await call(gateway, "POST", url, 200, json={"db_name": db, "page": 1, "page_size": 2})
    assert [t["task_id"] for t in data["tasks"]] == [ids[4], ids[3]]
    assert data["pagination"] == {
        "page": 1,
        "page_size": 2,
        "total": 5,
        "total_pages": 3,
        "has_next": True,
        "has_prev": False,
    }
    data = await call(gateway, "POST", url, 200, json={"db_name": db, "page": 3, "page_size": 2})
    assert [t["task_id"] for t in data["tasks"]] == [ids[0]] and data["pagination"]["has_next"] is False
    data = await call(
        gateway,
        "POST",
        url,
        200,
        json={"db_name": db, "status": "completed", "task_name": "HIGHWAY", "sort_order": "asc"},
    )
    assert [t["task_id"] for t in data["tasks"]] == [ids[0], ids[2]]
    data = await call(gateway, "POST", url, 200, json={"db_name": db, "status": "running"})
    assert [t["task_id"] for t in data["tasks"]] == [ids[4]]
    # Naive times, as the earlier clients send them, are UTC.
    data = await call(
        gateway,
        "POST",
        url,
        200,
        json={
            "db_name": db,
            "created_time_start": "2025-06-02T00:00:00",
            "created_time_end": "2025-06-03T23:59:59",
            "sort_by": "task_name",
            "sort_order": "asc",
        },
    )
    assert [t["task_name"] for t in data["tasks"]] == ["bank 1", "highway 2"]
    # No body at all is every task, first page.
    data = await call(gateway, "POST", url, 200)
    assert data["pagination"]["page"] == 1 and data["pagination"]["page_size"] == 20
    for bad, field in (
        ({"status": "sleeping"}, "status"),
        ({"page": 0}, "page"),
        ({"page_size": 101}, "page_size"),
        ({"sort_by": "parameters"}, "sort_by"),
        ({"created_time_start": "yesterday"}, "created_time_start"),
        ({"unknown": 1}, "unknown"),
    ):
        error = await call(gateway, "POST", url, 400, json=bad)
        assert error["invalid_params"] == [field], bad
    error = await call(
        gateway,
        "POST",
        url,
        400,
        json={"created_time_start": "2025-06-03T00:00:00Z", "created_time_end": "2025-06-02T00:00:00Z"},
    )
    assert error["invalid_params"] == ["created_time_start", "created_time_end"]


async def test_query_logs_by_exact_level_keyword_time_and_page(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    base = datetime(2025, 6, 27, 14, 30, tzinfo=UTC)
    ids = []
    for i, (level, message) in enumerate(
        [
            ("INFO", "starting"),
            ("ERROR", "SQL验证失败 one"),
            ("WARNING", "slow"),
            ("ERROR", "SQL验证失败 two"),
            ("CRITICAL", "crashed"),
        ]
    ):
        ids.append(await rows.log(task_id, message, level=level, at=base + timedelta(minutes=i)))
    url = f"{API}/tasks/{task_id}/logs/query"
    data = await call(gateway, "POST", url, 200, json={"page": 1, "page_size": 20, "level": "error"})
    assert [line["id"] for line in data["logs"]] == [ids[3], ids[1]]  # exactly ERROR, newest first
    data = await call(gateway, "POST", url, 200, json={"min_level": "ERROR", "sort_order": "asc"})
    assert [line["id"] for line in data["logs"]] == [ids[1], ids[3], ids[4]]
    data = await call(
        gateway,
        "POST",
        url,
        200,
        json={"keyword": "SQL验证", "start_time": "2025-06-27T14:32:00", "end_time": "2025-06-27T14:45:00"},
    )
    assert [line["id"] for line in data["logs"]] == [ids[3]]
    data = await call(gateway, "POST", url, 200, json={"page": 2, "page_size": 2})
    assert [line["id"] for line in data["logs"]] == [ids[2], ids[1]]
    assert data["pagination"] == {
        "page": 2,
        "page_size": 2,
        "total": 5,
        "total_pages": 3,
        "has_next": True,
        "has_prev": True,
    }
    assert data["total"] == 5 and data["total_exact"] is True
    await call(gateway, "POST", url, 400, json={"level": "LOUD"})
    await call(gateway, "POST", url, 400, json={"step_name": "step_9"})
    await call(gateway, "POST", f"{API}/tasks/task_20200101_000000_nothere/logs/query", 404, json={})


async def test_task_detail_has_the_earlier_keys_beside_the_seeds(
    gateway: TestClient, rows: ReadModels
) -> None:
    started = datetime.now(UTC) - timedelta(minutes=2)
    task_id = await rows.task(
        status="in_progress",
        current_step="qa_generation",
        step_status={"ddl_generation": "completed", "qa_generation": "running"},
    )
    await rows.execution(
        task_id,
        "ddl_generation",
        status="completed",
        started_at=started,
        completed_at=started + timedelta(minutes=1),
    )
    running = await rows.execution(
        task_id, "qa_generation", status="running", started_at=started + timedelta(minutes=1)
    )
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}", 200)
    assert data["current_step"] == "qa_generation"  # the seed's string stays
    assert data["current_execution"]["execution_id"] == running
    assert data["current_execution"]["step"] == "qa_generation"
    assert data["current_execution"]["status"] == "running"
    assert data["current_execution"]["started_at"]
    assert data["total_steps"] == 4
    for step in data["steps"]:
        assert step["step_name"] == step["step"] and step["step_status"] == step["status"]
    assert [s["step_status"] for s in data["steps"][:2]] == ["completed", "running"]
    idle = await rows.task(status="completed")
    assert (await call(gateway, "GET", f"{API}/tasks/{idle}", 200))["current_execution"] is None


async def test_database_tools_at_the_old_paths(gateway: TestClient, demo_db_url: str) -> None:
    """Issue #14, item 8: before, both paths were 404 and the new path refused `table_name_pattern`
    and comma-separated schemas (400)."""
    data = await call(
        gateway,
        "POST",
        "/api/v0/database/tables",
        200,
        json={"db_connection": demo_db_url, "schema": "public, nowhere", "table_name_pattern": "order*"},
    )
    assert data["tables"] == ["public.order_items", "public.orders"]
    assert [t["name"] for t in data["table_details"]] == ["order_items", "orders"]
    assert data["schemas"] == ["public", "nowhere"] and data["table_name_pattern"] == "order*"
    assert data["total"] == 2 and data["db_connection_info"]["database"] == demo_db_url.rsplit("/", 1)[1]
    data = await call(
        gateway,
        "POST",
        "/api/v0/database/tables",
        200,
        json={"db_connection": demo_db_url, "table_name_pattern": "%ments"},  # SQL LIKE spelling
    )
    assert data["tables"] == ["public.payments", "public.shipments"]
    # The seed-side path takes the earlier fields too (its `tables` stay objects).
    data = await call(
        gateway,
        "POST",
        f"{API}/database/tables",
        200,
        json={"db_connection": demo_db_url, "schema": "public,nowhere", "table_name_pattern": "ods_*"},
    )
    assert data["tables"] == []
    data = await call(
        gateway,
        "POST",
        f"{API}/database/tables",
        200,
        json={"db_connection": demo_db_url, "schema": "public", "table_name_pattern": "stor%"},
    )
    assert [t["name"] for t in data["tables"]] == ["stores"]
    # One name filter or the other, as the document's at_most_one_of says: given means not null, so
    # two empty strings are refused too (before, only two non-empty ones were: the document disagreed).
    for both in (("stor%", "stor*"), ("", "")):
        error = await call(
            gateway,
            "POST",
            f"{API}/database/tables",
            400,
            json={"db_connection": demo_db_url, "table_name_pattern": both[0], "pattern": both[1]},
        )
        assert error["invalid_params"] == ["pattern", "table_name_pattern"]
    for bad, field in (({"schema": "x;y"}, "schema"), ({"unknown": True}, "unknown")):
        error = await call(
            gateway, "POST", "/api/v0/database/tables", 400, json={"db_connection": demo_db_url, **bad}
        )
        assert error["invalid_params"] == [field]
    error = await call(gateway, "POST", "/api/v0/database/tables", 400, json={})
    assert error["missing_params"] == ["db_connection"]  # no DP_DEFAULT_CONNECTION on this server

    data = await call(
        gateway,
        "POST",
        "/api/v0/database/table/ddl",
        200,
        json={"db_connection": demo_db_url, "table": "public.orders", "business_context": "一个网上商店"},
    )
    assert "create table" in data["ddl"].lower() and "orders" in data["ddl"]
    assert data["md"].startswith("#") and "orders" in data["md"]
    assert data["table_info"]["full_name"] == "public.orders"
    assert data["table_info"]["field_count"] == len(data["fields"]) > 0
    assert any(f["is_primary_key"] for f in data["fields"])
    assert data["generation_info"]["llm"] == "offline" and data["generation_info"]["output_type"] == "both"
    data = await call(
        gateway,
        "POST",
        "/api/v0/database/table/ddl",
        200,
        json={"db_connection": demo_db_url, "table": "customers", "type": "ddl"},
    )
    assert data["md"] is None and "customers" in data["ddl"]
    assert data["generation_info"]["has_llm_comments"] is False  # no business context: no descriptions
    error = await call(
        gateway,
        "POST",
        "/api/v0/database/table/ddl",
        404,
        json={"db_connection": demo_db_url, "table": "nope"},
    )
    assert "nope" in error["response"]
    error = await call(
        gateway,
        "POST",
        "/api/v0/database/table/ddl",
        400,
        json={"db_connection": demo_db_url, "table": "orders; drop table x"},
    )
    assert error["invalid_params"] == ["table"]
    error = await call(
        gateway, "POST", "/api/v0/database/table/ddl", 400, json={"db_connection": demo_db_url}
    )
    assert error["missing_params"] == ["table"]
    error = await call(
        gateway,
        "POST",
        "/api/v0/database/table/ddl",
        400,
        json={"db_connection": "postgresql://u:S3cret@127.0.0.1:1/x", "table": "orders"},
    )
    assert error["invalid_params"] == ["db_connection"] and "S3cret" not in str(error)

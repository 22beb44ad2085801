"""Gateway read paths built to stay flat at 100k tasks and 1M log lines (issue 11, goal 3), against what
such optimisations break: keyset pages with equal timestamps, filters combined with cursors, a text
search whose matches lie beyond the near window, capped totals, and the task search (issue 10, item
10) by a fragment of an id, a name, a database and a context, served by the migration's indexes."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.api_gateway.adapters import keyset, read_models
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

pytestmark = pytest.mark.integration


async def _pages(client: TestClient, url: str, params: dict[str, str], key: str) -> list[Any]:
    """Every item of a listing, page by page through next_cursor."""
    seen: list[Any] = []
    cursor = None
    for _ in range(100):
        data = await call(
            client, "GET", url, 200, params={**params, **({"cursor": cursor} if cursor else {})}
        )
        seen += data[key]
        cursor = data["next_cursor"]
        if cursor is None:
            return seen
    raise AssertionError("the listing did not end")


async def test_search_finds_an_id_fragment_a_name_a_database_and_a_context(
    gateway: TestClient, rows: ReadModels
) -> None:
    marker = rows.new_id()[-6:]
    named = await rows.task(task_name=f"Quarterly {marker} Report", db_name="ledger")
    in_db = await rows.task(db_name=f"warehouse_{marker}")
    in_context = await rows.task(business_context=f"Ferries of the {marker} harbour")
    other = await rows.task(task_name="unrelated")
    url = f"{API}/tasks"

    async def found(text: str, name: str = "search", **also: str) -> list[str]:
        data = await call(gateway, "GET", url, 200, params={name: text, "limit": "100", **also})
        return [t["task_id"] for t in data["tasks"]]

    # A fragment of the id, in any case: a piece of its suffix, a piece across its time and suffix.
    assert await found(other[-5:-1].upper()) == [other]
    assert await found(other[-10:-2]) == [other]
    assert await found(f"quarterly {marker.upper()}") == [named]
    assert await found(f"WAREHOUSE_{marker}") == [in_db]
    assert await found(f"{marker} HARBOUR", name="q") == [in_context]  # q: the web UI's name for it
    # Both given: a task contains both texts.
    assert await found(marker, q="ledger") == [named] and await found("quarterly", q="harbour") == []
    assert sorted(await found(marker)) == sorted([named, in_db, in_context])
    # One field at a time: a text running from the name into the database finds nothing.
    assert await found("reportledger") == [] and await found("report ledger") == []


async def test_search_rejects_control_characters(gateway: TestClient) -> None:
    """The searched fields are joined by line breaks: a search text is one line, else 400."""
    for name, text in (("search", "a\nb"), ("q", "tab\there")):
        data = await call(gateway, "GET", f"{API}/tasks", 400, params={name: text})
        assert data["invalid_params"] == [name]


async def test_task_total_is_exact_when_small_and_a_flagged_lower_bound_past_the_cap(
    make_gateway: ClientFactory, rows: ReadModels
) -> None:
    marker = f"db_{rows.new_id()[-6:]}_cap"
    for _ in range(5):
        await rows.task(db_name=marker)
    capped = await make_gateway(task_count_limit=3)
    data = await call(capped, "GET", f"{API}/tasks", 200, params={"db_name": marker, "limit": "2"})
    assert data["total"] == 3 and data["total_exact"] is False and data["response"] == "2 of 3+ tasks"
    assert len(await _pages(capped, f"{API}/tasks", {"db_name": marker, "limit": "2"}, "tasks")) == 5
    data = await call(capped, "GET", f"{API}/tasks", 200, params={"db_name": marker, "search": "nothing"})
    assert data["total"] == 0 and data["total_exact"] is True
    default = await make_gateway()
    data = await call(default, "GET", f"{API}/tasks", 200, params={"db_name": marker})
    assert data["total"] == 5 and data["total_exact"] is True


@pytest.mark.parametrize(("window", "cap"), [(keyset.TEXT_WINDOW, 1000), (2, 1)])
async def test_task_pages_with_equal_timestamps_combine_status_search_and_cursor(
    make_gateway: ClientFactory, rows: ReadModels, monkeypatch: pytest.MonkeyPatch, window: int, cap: int
) -> None:
    """Six tasks in one instant and three in another, several statuses: every combination of a status
    list (one index branch per status), a search and the cursor yields each matching task once, newest
    first, ties by id. Below the count's cap a search reads its matches as a set; past it (cap 1), a
    near window and then the matches beyond it (a window of 2 rows puts most of them beyond)."""
    monkeypatch.setattr(keyset, "TEXT_WINDOW", window)
    gateway = await make_gateway(task_count_limit=cap)
    marker = rows.new_id()[-6:]
    same, later = datetime(2024, 3, 1, tzinfo=UTC), datetime(2024, 3, 2, tzinfo=UTC)
    made: list[tuple[datetime, str, str, str]] = []
    for i, status in enumerate(["failed", "completed", "cancelled", "failed", "completed", "failed"]):
        name = f"{marker} {'alpha' if i % 2 else 'beta'}"
        made.append((same, await rows.task(created_at=same, status=status, task_name=name), status, name))
    for status in ("failed", "pending", "completed"):
        name = f"{marker} alpha"
        made.append((later, await rows.task(created_at=later, status=status, task_name=name), status, name))
    for statuses in ("", "failed", "failed,cancelled", "completed,failed,pending"):
        for text in (marker, f"{marker} ALPHA"):
            expected = [
                task_id
                for at, task_id, status, name in sorted(made, key=lambda m: (m[0], m[1]), reverse=True)
                if (not statuses or status in statuses.split(",")) and text.lower() in name.lower()
            ]
            params = {"limit": "2", "search": text, **({"status": statuses} if statuses else {})}
            seen = [t["task_id"] for t in await _pages(gateway, f"{API}/tasks", params, "tasks")]
            assert seen == expected, (statuses, text)


async def test_status_list_pages_by_offset_as_well(gateway: TestClient, rows: ReadModels) -> None:
    marker = f"db_{rows.new_id()[-6:]}_offset"
    at = datetime(2024, 4, 1, tzinfo=UTC)
    ids = [
        await rows.task(db_name=marker, status=s, created_at=at + timedelta(seconds=i))
        for i, s in enumerate(["failed", "completed", "failed", "cancelled", "completed"])
    ]
    wanted = [ids[i] for i in (4, 3, 2, 1, 0) if i != 3]
    params = {"db_name": marker, "status": "failed,completed", "limit": "2"}
    first = await call(gateway, "GET", f"{API}/tasks", 200, params=params)
    second = await call(gateway, "GET", f"{API}/tasks", 200, params={**params, "offset": "2"})
    assert [t["task_id"] for t in first["tasks"] + second["tasks"]] == wanted
    assert first["total"] == second["total"] == 4


async def _task_with_many_lines(rows: ReadModels) -> tuple[str, list[dict[str, Any]]]:
    """Twenty lines over two steps and all five levels; "needle" in lines 2, 3, 11 and 18."""
    task_id = await rows.task(status="completed")
    base = datetime(2025, 2, 1, tzinfo=UTC)
    levels = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]
    lines = []
    for i in range(20):
        level, step = levels[(i * 3) % 5], "ddl_generation" if i < 12 else "qa_generation"
        message = f"line {i} {'NEEDLE' if i in (2, 3, 11, 18) else 'hay'}"
        # Every two lines share a timestamp: the order is the log id's, not the time's.
        line_id = await rows.log(
            task_id, message, level=level, step=step, at=base + timedelta(seconds=i // 2)
        )
        lines.append({"id": line_id, "level": level, "step": step, "message": message})
    return task_id, lines


@pytest.mark.parametrize("window", [keyset.TEXT_WINDOW, 3])
async def test_log_filters_combined_with_cursors_page_every_line_once(
    gateway: TestClient, rows: ReadModels, monkeypatch: pytest.MonkeyPatch, window: int
) -> None:
    """Level filters read one index branch per level, a step filter reads its index by level, a text
    search reads a near window and then the matches beyond it (window 3: most are beyond); each
    combination, paged two lines at a time in either order or from the tail, is the filtered log."""
    monkeypatch.setattr(keyset, "TEXT_WINDOW", window)
    monkeypatch.setattr(keyset, "COUNT_WINDOW", window)  # 3: the text counts go to the indexes
    task_id, lines = await _task_with_many_lines(rows)
    numbers = read_models.LEVEL_NUMBERS
    cases: list[dict[str, str]] = [
        {},
        {"level": "WARNING"},
        {"level": "CRITICAL"},
        {"step": "qa_generation"},
        {"step": "1", "level": "ERROR"},
        {"q": "needle"},
        {"q": "needle", "level": "ERROR"},
        {"q": "NEEDLE", "step": "ddl_generation"},
        {"q": "no such text"},
    ]
    for filters in cases:
        step = {"1": "ddl_generation"}.get(filters.get("step", ""), filters.get("step"))
        expected = [
            line["id"]
            for line in lines
            if numbers[line["level"]] >= numbers[filters.get("level", "DEBUG")]
            and (step is None or line["step"] == step)
            and filters.get("q", "").lower() in line["message"].lower()
        ]
        url = f"{API}/tasks/{task_id}/logs"
        for order, want in (("asc", expected), ("desc", expected[::-1])):
            got = [
                line["id"]
                for line in await _pages(gateway, url, {**filters, "limit": "2", "order": order}, "logs")
            ]
            assert got == want, (filters, order)
        # The tail: newest pages first, each in time order.
        tail = [line["id"] for line in await _pages(gateway, url, {**filters, "limit": "2"}, "logs")]
        assert sorted(tail) == expected and tail[:2] == sorted(expected[-2:]), filters
        first = await call(gateway, "GET", url, 200, params={**filters, "limit": "2"})
        assert first["total"] == len(expected) and first["total_exact"] is True


async def test_search_and_log_text_use_the_trigram_indexes(rows: ReadModels) -> None:
    """The expression of read_models.TASK_SEARCH_TEXT must be the one migration 0005 indexed (else the
    search reads the whole table); the log text filter must reach the message index."""
    pg: asyncpg.Connection = rows.pg
    async with pg.transaction():
        await pg.execute("SET LOCAL enable_seqscan = off")
        where = read_models._task_where(read_models.TaskFilters(search="needle"))
        plan = "\n".join(
            r[0]
            for r in await pg.fetch(f"EXPLAIN SELECT id FROM data_pipeline_tasks{where.sql()}", *where.args)
        )
        assert "idx_tasks_search_trgm" in plan, plan
        plan = "\n".join(
            r[0]
            for r in await pg.fetch(
                "EXPLAIN SELECT id FROM data_pipeline_task_logs WHERE message ILIKE $1", "%needle%"
            )
        )
        assert "idx_logs_message_trgm" in plan, plan


async def test_a_log_level_outside_the_five_is_refused(rows: ReadModels) -> None:
    """The level filter reads one branch per known level: a line of another level_no would never be
    found, so the table refuses it."""
    task_id = await rows.task()
    with pytest.raises(asyncpg.CheckViolationError):
        await rows.pg.execute(
            "INSERT INTO data_pipeline_task_logs (task_id, log_level, message, timestamp, event_id, level_no)"
            " VALUES ($1, 'NOTICE', 'x', now(), gen_random_uuid(), 25)",
            task_id,
        )

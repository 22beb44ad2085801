"""Gateway: GET /tasks/{id}/logs/download, the whole log as a data_pipeline.log-formatted text file."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiohttp.test_utils import TestClient

from services.api_gateway.adapters import log_export
from shared.task_log import log_file_line
from tests.integration.gateway_fixtures import API, ReadModels, gateway, gw_topology, make_gateway, rows  # noqa: F401
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration


async def test_download_is_the_log_file_text_with_filters(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    base = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    first = await rows.log(task_id, "starting", level="DEBUG", step="ddl_generation", at=base)
    second = await rows.log(
        task_id,
        "two lines\nsecond line; postgresql://u:hunter2@db/x",
        level="WARNING",
        step="qa_generation",
        at=base + timedelta(minutes=1),
    )
    third = await rows.log(task_id, "all done", at=base + timedelta(minutes=2))

    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download")
    assert resp.status == 200, await resp.text()
    assert resp.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert resp.headers["Content-Disposition"].startswith(
        f'attachment; filename="{task_id}_data_pipeline.log"'
    )
    assert resp.headers.get("Transfer-Encoding") == "chunked" and "Content-Length" not in resp.headers
    assert await resp.text() == (
        f"2025-01-01T12:00:00.000+00:00 DEBUG    [ddl_generation] starting (#{first})\n"
        f"2025-01-01T12:01:00.000+00:00 WARNING  [qa_generation] two lines\n"
        f"    second line; postgresql://u:***@db/x (#{second})\n"
        f"2025-01-01T12:02:00.000+00:00 INFO     [task] all done (#{third})\n"
    )

    resp = await gateway.get(
        f"{API}/tasks/{task_id}/logs/download", params={"level": "info", "since": "2025-01-01T12:01:30Z"}
    )
    assert resp.status == 200
    assert 'filename="' + f'{task_id}_data_pipeline_filtered.log"' in resp.headers["Content-Disposition"]
    assert (await resp.text()).splitlines() == [
        f"2025-01-01T12:02:00.000+00:00 INFO     [task] all done (#{third})"
    ]
    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download", params={"step": "2", "q": "TWO"})
    assert (await resp.text()).startswith("2025-01-01T12:01:00.000+00:00 WARNING  [qa_generation] two lines")
    # An empty step is every step, as the OpenAPI document says (its enum lists "").
    everything = await (await gateway.get(f"{API}/tasks/{task_id}/logs/download")).text()
    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download", params={"step": ""})
    assert resp.status == 200 and await resp.text() == everything
    document = await (await gateway.get("/api/v0/openapi.json")).json()
    (step,) = [
        p
        for p in document["paths"]["/api/v0/data_pipeline/tasks/{task_id}/logs/download"]["get"]["parameters"]
        if p["name"] == "step"
    ]
    assert "" in step["schema"]["anyOf"][0]["enum"]


async def test_download_pages_through_a_long_log(
    gateway: TestClient, rows: ReadModels, monkeypatch: pytest.MonkeyPatch
) -> None:
    task_id = await rows.task(status="completed")
    await rows.pg.execute(
        """INSERT INTO data_pipeline_task_logs (task_id, log_level, message, step_name, timestamp, event_id, level_no)
           SELECT $1, 'INFO', 'line ' || i, 'ddl_generation', now(), gen_random_uuid(), 20
           FROM generate_series(1, 12345) AS i""",
        task_id,
    )
    pages: list[int] = []
    real_pages = log_export.log_pages

    async def counted(*args: object, **kwargs: object):  # type: ignore[no-untyped-def]
        async for page in real_pages(*args, page_rows=1000):  # type: ignore[arg-type]
            pages.append(page.lines)
            yield page

    monkeypatch.setattr("services.api_gateway.routes.log_download.log_pages", counted)
    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download")
    assert resp.status == 200
    lines = (await resp.text()).splitlines()
    assert len(lines) == 12345
    assert [line.split("] ", 1)[1].split(" (#")[0] for line in lines[:2]] == ["line 1", "line 2"]
    assert lines[-1].split("] ", 1)[1].startswith("line 12345 (#")
    assert pages == [1000] * 12 + [345]


async def test_download_refuses_what_the_log_route_refuses(gateway: TestClient, rows: ReadModels) -> None:
    missing = rows.new_id()
    await call(gateway, "GET", f"{API}/tasks/{missing}/logs/download", 404)
    task_id = await rows.task(status="completed")
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/logs/download", 400, params={"step": "nope"})
    assert data["invalid_params"] == ["step"]
    await call(
        gateway,
        "GET",
        f"{API}/tasks/{task_id}/logs/download",
        400,
        params={"since": "2025-01-02T00:00:00Z", "until": "2025-01-01T00:00:00Z"},
    )
    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download")
    assert resp.status == 200 and await resp.text() == ""


async def test_postgresql_renders_lines_exactly_as_the_log_file_format(
    gateway: TestClient, rows: ReadModels
) -> None:
    """The download's lines are made by PostgreSQL; the collector's file by shared/task_log.py."""
    task_id = await rows.task(status="completed")
    at = datetime(2025, 3, 9, 23, 59, 59, 999999, tzinfo=UTC)
    for i, (level, step, message) in enumerate(
        [
            ("CRITICAL", None, "ünïcödé ✓ and a tab\there"),
            ("DEBUG", "workflow_start", "line one\nline two\n\nline four"),
            ("ERROR", "sql_validation", "back\\slash 'quoted' \"double\" %_ trailing space "),
            ("INFO", "training_load", ""),
        ]
    ):
        await rows.log(task_id, message, level=level, step=step, at=at + timedelta(microseconds=i * 123457))
    stored = await rows.pg.fetch(
        "SELECT id, timestamp, log_level, step_name, message FROM data_pipeline_task_logs"
        " WHERE task_id = $1 ORDER BY id",
        task_id,
    )
    resp = await gateway.get(f"{API}/tasks/{task_id}/logs/download")
    assert await resp.text() == "".join(log_file_line(r) for r in stored)

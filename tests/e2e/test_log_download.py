"""The log download on the composed services: byte for byte the data_pipeline.log the collector writes."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import DB_URL, SECRET
from tests.support.api import BASE, Api
from tests.support.eventually import eventually

pytestmark = pytest.mark.e2e


async def test_download_equals_the_task_log_file(api: Api, data_dir: Path) -> None:
    task_id = await api.create(DB_URL, "logs:ddl_generation=25 logs:qa_generation=5", task_name="download")
    assert (await api.wait(task_id))["status"] == "completed"
    url = f"{api.url}{BASE}/tasks/{task_id}/logs/download"

    async def same_as_file() -> str:
        async with api.session.get(url) as resp:
            assert resp.status == 200
            assert resp.headers["Content-Disposition"].startswith("attachment;")
            body = await resp.text()
        assert body == (data_dir / task_id / "data_pipeline.log").read_text(encoding="utf-8")
        return body

    body = await eventually(same_as_file, timeout=15, what="the download to equal data_pipeline.log")
    assert "[workflow_complete]" in body and body.count("scripted line") == 30
    assert SECRET not in body  # the scripted step logs its connection URL; it arrives masked

    async with api.session.get(url, params={"level": "CRITICAL", "step": "ddl_generation"}) as resp:
        critical = (await resp.text()).splitlines()
    assert len(critical) == 5 and all(" CRITICAL [ddl_generation] " in line for line in critical)

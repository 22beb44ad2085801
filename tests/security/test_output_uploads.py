"""POST /tasks/{id}/files (issue #14, item 4) writes into a task directory: it must never write, read or
create anything but the task's own registered outputs, whatever name, link or content it is given."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

from pathlib import Path

import aiohttp
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

pytestmark = pytest.mark.integration


async def _upload(
    client: TestClient, task_id: str, name: str, content: bytes, mode: str = "replace"
) -> tuple[int, dict]:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=name, content_type="application/octet-stream")
    form.add_field("overwrite_mode", mode)
    resp = await client.post(f"{API}/tasks/{task_id}/files", data=form)
    return resp.status, await resp.json()


async def test_only_registered_outputs_of_the_task_can_be_written(
    gateway: TestClient, rows: ReadModels, tmp_path: Path
) -> None:
    task_id = await rows.task(status="completed")
    other = await rows.task(status="completed")
    directory = rows.task_dir(task_id)
    (directory / "orders.ddl").write_text("create table orders ();\n")
    await rows.output(task_id, "orders.ddl", file_type="ddl")
    (rows.task_dir(other) / "secret.ddl").write_text("theirs\n")
    await rows.output(other, "secret.ddl", file_type="ddl")
    for name, refused in (
        ("../" + other + "/secret.ddl", 400),  # another task's output through a traversal
        ("secret.ddl", 404),  # another task's output by name: no such output of this task
        ("..", 400),
        (".env", 400),
        ("orders.ddl/../../x.ddl", 400),
        ("new_table.ddl", 404),  # a file the pipeline never registered
        ("data_pipeline.log", 404),
        ("table_list.txt", 400),  # the table list has its own route
    ):
        status, body = await _upload(gateway, task_id, name, b"create table x ();")
        assert status == refused, (name, body)
    assert (rows.task_dir(other) / "secret.ddl").read_text() == "theirs\n"
    assert sorted(p.name for p in directory.iterdir()) == ["orders.ddl"]
    # A registered output of a kind that is not editable text stays as it is.
    (directory / "report.log").write_text("x")
    await rows.output(task_id, "report.log", file_type="log")
    status, body = await _upload(gateway, task_id, "report.log", b"y")
    assert status == 400 and (directory / "report.log").read_text() == "x"
    # Not while the task runs.
    running = await rows.task(status="in_progress")
    (rows.task_dir(running) / "orders.ddl").write_text("v1\n")
    await rows.output(running, "orders.ddl", file_type="ddl")
    status, body = await _upload(gateway, running, "orders.ddl", b"v2\n")
    assert status == 409 and (rows.task_dir(running) / "orders.ddl").read_text() == "v1\n"


async def test_a_link_in_the_task_directory_is_replaced_never_followed(
    gateway: TestClient, rows: ReadModels, tmp_path: Path
) -> None:
    outside = tmp_path / "outside.ddl"
    outside.write_text("outside\n")
    task_id = await rows.task(status="completed")
    directory = rows.task_dir(task_id)
    (directory / "orders.ddl").symlink_to(outside)
    await rows.output(task_id, "orders.ddl", file_type="ddl")
    status, body = await _upload(gateway, task_id, "orders.ddl", b"create table orders (id int);\n", "backup")
    assert status == 200, body
    assert outside.read_text() == "outside\n"  # neither written through nor copied into a backup
    assert not (directory / "orders.ddl").is_symlink()
    assert (directory / "orders.ddl").read_text() == "create table orders (id int);\n"
    assert body["data"]["backup_info"] is None
    assert not any(p.name.startswith("orders.ddl_bak") for p in directory.iterdir())


async def test_uploads_are_bounded(make_gateway: ClientFactory, rows: ReadModels) -> None:
    small = await make_gateway(max_upload_bytes=2048)
    task_id = await rows.task(status="completed")
    (rows.task_dir(task_id) / "orders.ddl").write_text("v1\n")
    await rows.output(task_id, "orders.ddl", file_type="ddl")
    status, _ = await _upload(small, task_id, "orders.ddl", b"x" * 5000)
    assert status == 413
    form = aiohttp.FormData()
    for i in range(25):
        form.add_field(f"f{i}", "x")
    form.add_field("file", b"v2\n", filename="orders.ddl")  # a file part: multipart, not urlencoded
    resp = await small.post(f"{API}/tasks/{task_id}/files", data=form)
    assert resp.status == 400
    resp = await small.post(f"{API}/tasks/{task_id}/files", json={"file": "x"})
    assert resp.status == 415
    assert (rows.task_dir(task_id) / "orders.ddl").read_text() == "v1\n"

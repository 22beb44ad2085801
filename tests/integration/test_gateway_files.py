"""Gateway: output files (listing, downloads confined to the task directory) and table-list writes."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    ReadModels,
    gateway,
    gw_topology,
    make_gateway,
    rows,
)
from tests.integration.test_gateway_tasks import call

pytestmark = pytest.mark.integration


async def test_list_registered_files(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    await rows.output(task_id, "orders.ddl", step_name="ddl_generation")
    await rows.output(
        task_id, "qs_shop_1_pair.json", is_primary=True, step_name="qa_generation", file_size=99
    )
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/files", 200)
    assert data["total"] == 2
    primary, ddl = data["files"]
    assert (
        primary["file_name"] == "qs_shop_1_pair.json"
        and primary["is_primary"] is True
        and primary["size"] == 99
    )
    assert primary["sha256"] == "ab" * 32 and primary["step"] == "qa_generation"
    assert ddl["download_url"] == f"{API}/tasks/{task_id}/files/download/orders.ddl"
    await call(gateway, "GET", f"{API}/tasks/task_20200101_000000_nothere/files", 404)


async def test_download_as_attachment(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    (rows.task_dir(task_id) / "orders.ddl").write_text("CREATE TABLE orders ();")
    (rows.task_dir(task_id) / "订单_detail.md").write_text("# 订单")
    await rows.output(task_id, "orders.ddl")  # only registered outputs download
    await rows.output(task_id, "订单_detail.md")
    for path in ("files/download/orders.ddl", "files/orders.ddl"):
        resp = await gateway.get(f"{API}/tasks/{task_id}/{path}")
        assert resp.status == 200
        assert await resp.text() == "CREATE TABLE orders ();"
        assert resp.headers["Content-Disposition"].startswith('attachment; filename="orders.ddl"')
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
    resp = await gateway.get(f"{API}/tasks/{task_id}/files/download/订单_detail.md")
    assert (
        resp.status == 200
        and "filename*=UTF-8''%E8%AE%A2%E5%8D%95_detail.md" in resp.headers["Content-Disposition"]
    )


async def test_download_refuses_files_marked_not_downloadable(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    (rows.task_dir(task_id) / "internal.json").write_text("{}")
    await rows.output(task_id, "internal.json", is_downloadable=False)
    await call(gateway, "GET", f"{API}/tasks/{task_id}/files/download/internal.json", 404)


@pytest.mark.parametrize(
    "name",
    [
        "..%2f..%2fsecret.txt",
        "..%2Fsecret.txt",
        "%2e%2e%2fsecret.txt",
        "%2Fetc%2Fpasswd",
        "..%5csecret.txt",
        "..",
        "...",
        ".hidden",
        "a%00b",
        "sub%2Fdir.txt",
    ],
)
async def test_traversal_attempts_are_refused_without_leaking(
    gateway: TestClient, rows: ReadModels, name: str
) -> None:
    task_id = await rows.task(status="completed")
    rows.task_dir(task_id)
    (rows.data_root / "secret.txt").write_text("top secret")
    (rows.task_dir(task_id) / ".hidden").write_text("hidden")
    for route in ("files/download", "files"):
        resp = await gateway.get(f"{API}/tasks/{task_id}/{route}/{name}")
        body = await resp.json()
        assert resp.status in (400, 404), (route, name, resp.status, body)
        assert body["success"] is False and body["code"] == resp.status
        assert "top secret" not in str(body) and body["data"]["error_type"] in (
            "invalid_params",
            "resource_not_found",
        )


async def test_a_refused_name_does_not_tell_whether_the_target_exists(
    gateway: TestClient, rows: ReadModels
) -> None:
    task_id = await rows.task(status="completed")
    (rows.data_root / "exists.txt").write_text("x")
    answers = []
    for name in ("..%2fexists.txt", "..%2fabsent.txt", "exists.txt", "absent.txt"):
        resp = await gateway.get(f"{API}/tasks/{task_id}/files/download/{name}")
        body = await resp.json()
        answers.append(
            (resp.status, body["data"]["error_type"], body["data"]["response"].replace("absent", "exists"))
        )
    assert answers[0] == answers[1] and answers[2] == answers[3]


async def test_traversal_through_the_raw_path(gateway: TestClient, rows: ReadModels) -> None:
    """Paths the client does not normalise: the router or the name check refuses them, never a file."""
    task_id = await rows.task(status="completed")
    (rows.data_root / "secret.txt").write_text("top secret")
    async with aiohttp.ClientSession() as session:
        for raw in (
            f"{API}/tasks/{task_id}/files/download/../../secret.txt",
            f"{API}/tasks/{task_id}/files/download/..%2F..%2Fsecret.txt",
            f"{API}/tasks/{task_id}/files/download//etc/passwd",
        ):
            url = gateway.make_url("").with_path(raw, encoded=True)
            async with session.get(url) as resp:
                text = await resp.text()
                assert resp.status in (400, 404), (raw, resp.status)
                assert "top secret" not in text and "root:" not in text


async def test_symlink_out_of_the_task_directory_is_not_served(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    (rows.data_root / "outside.txt").write_text("outside")
    (rows.task_dir(task_id) / "link.txt").symlink_to(rows.data_root / "outside.txt")
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/files/download/link.txt", 404)
    assert data["error_type"] == "resource_not_found"
    data = await call(gateway, "GET", f"{API}/tasks/{task_id}/files/download/missing.txt", 404)
    assert data["response"] == "file not found: missing.txt"


async def test_table_list_by_names(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="pending")
    data = await call(
        gateway,
        "POST",
        f"{API}/tasks/{task_id}/table-list",
        200,
        json={"tables": ["public.orders", "customers", "orders"]},
    )
    assert data["file_name"] == "table_list.txt" and data["table_count"] == 3
    assert (rows.data_root / task_id / "table_list.txt").read_text() == "public.orders\ncustomers\norders\n"
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/table-list", 200, json={"tables": "a, b\nc"})
    assert data["tables"] == ["a", "b", "c"]
    assert not [p for p in (rows.data_root / task_id).iterdir() if p.name.startswith(".")]  # no temp file


async def test_table_list_goes_to_the_tasks_own_file_name(gateway: TestClient, rows: ReadModels) -> None:
    params = {
        "db_connection": "postgresql://u:***@h/db",
        "business_context": "x",
        "table_list_file": "mine.txt",
    }
    task_id = await rows.task(status="failed", parameters=params)
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/table-list", 200, json={"table_list": ["t1"]})
    assert data["file_name"] == "mine.txt" and (rows.data_root / task_id / "mine.txt").read_text() == "t1\n"


@pytest.mark.parametrize(
    ("payload", "status", "key", "names"),
    [
        ({"tables": ["ok", "drop table x;"]}, 400, "invalid_params", ["tables"]),
        ({"tables": []}, 400, "missing_params", ["tables"]),
        ({"tables": "  "}, 400, "missing_params", ["tables"]),
        ({}, 400, "missing_params", ["tables"]),
        ({"tables": [1, 2]}, 400, "invalid_params", ["tables"]),
    ],
)
async def test_table_list_rejects_bad_names(
    gateway: TestClient, rows: ReadModels, payload: dict[str, Any], status: int, key: str, names: list[str]
) -> None:
    task_id = await rows.task()
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/table-list", status, json=payload)
    assert data[key] == names


async def test_table_list_conflicts_while_running(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="in_progress")
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/table-list", 409, json={"tables": ["a"]})
    assert data["error_type"] == "conflict"
    form = aiohttp.FormData()
    form.add_field("file", b"a\n", filename="t.txt", content_type="text/plain")
    await call(gateway, "POST", f"{API}/tasks/{task_id}/upload-table-list", 409, data=form)
    await call(
        gateway, "POST", f"{API}/tasks/task_20200101_000000_nothere/table-list", 404, json={"tables": ["a"]}
    )


def upload(content: bytes, filename: str = "tables.txt") -> aiohttp.FormData:
    form = aiohttp.FormData()
    form.add_field("file", content, filename=filename, content_type="text/plain")
    return form


async def test_upload_table_list(gateway: TestClient, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    content = "\ufeff# tables for the demo\npublic.orders\n\ncustomers, 商品\n".encode()
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/upload-table-list", 200, data=upload(content))
    assert data["tables"] == ["public.orders", "customers", "商品"]
    assert (rows.data_root / task_id / "table_list.txt").read_text() == "public.orders\ncustomers\n商品\n"


@pytest.mark.parametrize(
    ("content", "filename", "status", "names"),
    [
        (b"orders\n", "tables.csv", 400, ["file"]),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "tables.txt", 400, ["file"]),
        (b"\xff\xfe\xfa", "tables.txt", 400, ["file"]),
        (b"orders\n../../etc/passwd\n", "tables.txt", 400, ["tables"]),
        (b"# nothing\n\n", "tables.txt", 400, ["tables"]),
    ],
)
async def test_upload_rejects_bad_files(
    gateway: TestClient, rows: ReadModels, content: bytes, filename: str, status: int, names: list[str]
) -> None:
    task_id = await rows.task()
    data = await call(
        gateway, "POST", f"{API}/tasks/{task_id}/upload-table-list", status, data=upload(content, filename)
    )
    assert (data.get("invalid_params") or data.get("missing_params")) == names
    assert not (rows.data_root / task_id / "table_list.txt").exists()


async def test_upload_limits_and_shape(make_gateway: Any, rows: ReadModels) -> None:
    client = await make_gateway(max_upload_bytes=2048, max_body_bytes=1_000_000)
    task_id = await rows.task()
    data = await call(
        client, "POST", f"{API}/tasks/{task_id}/upload-table-list", 413, data=upload(b"t\n" * 5000)
    )
    assert data["error_type"] == "payload_too_large"
    data = await call(client, "POST", f"{API}/tasks/{task_id}/upload-table-list", 415, json={"tables": ["a"]})
    assert data["invalid_params"] == ["content_type"]
    form = aiohttp.FormData()
    form.add_field("note", "no file here")
    form.add_field("other", b"x", filename="")
    data = await call(client, "POST", f"{API}/tasks/{task_id}/upload-table-list", 400, data=form)
    assert data["missing_params"] == ["file"]

"""A task's table list given with its create (multipart upload, or a file under DP_TABLE_LISTS_DIR),
and step ranges on create and execute: the gateway against real PostgreSQL and RabbitMQ."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient

from tests.integration.gateway_fixtures import (  # noqa: F401
    API,
    CommandProbe,
    ReadModels,
    commands,
    gateway,
    gw_topology,
    make_gateway,
    rows,
    serve_creates,
)

pytestmark = pytest.mark.integration

URL = "postgresql://u:S3cretPw@db.example:5432/shop"


def parameters(**overrides: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"db_connection": URL, "business_context": "an online shop"}
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not ...}


def form(
    params: dict[str, Any] | str | None,
    file: tuple[str, bytes] | None,
    *,
    task_type: str | None = None,
    extra: dict[str, str] | None = None,
) -> aiohttp.FormData:
    data = aiohttp.FormData()
    if task_type is not None:
        data.add_field("task_type", task_type)
    if params is not None:
        text = params if isinstance(params, str) else json.dumps(params)
        data.add_field("parameters", text, content_type="application/json")
    for name, value in (extra or {}).items():
        data.add_field(name, value)
    if file is not None:
        data.add_field("table_list_file", file[1], filename=file[0], content_type="text/plain")
    return data


async def post(client: TestClient, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    resp = await client.post(path, **kwargs)
    body = await resp.json()
    return resp.status, body["data"]


# ---- multipart create -----------------------------------------------------------------------------


async def test_multipart_create_writes_the_list_before_the_task_is_scheduled(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels, data_root: Path
) -> None:
    # The probe reads the CreateTask command the moment it is published: the file must be there then.
    collector = serve_creates(commands, rows)
    content = b"\xef\xbb\xbfpublic.orders\n# a comment\ncustomers, public.orders\n\n"
    status, data = await post(
        gateway,
        f"{API}/tasks",
        data=form(parameters(task_name="upload"), ("tables.txt", content), task_type="complete_workflow"),
    )
    assert status == 201, data
    [command] = await collector
    task_id = data["task_id"]
    assert command.task_id == task_id
    params = command.payload.parameters  # type: ignore[union-attr]
    assert params.table_list_file == "tables.txt" and params.table_list is None
    assert params.table_list_source == "upload"
    assert (data_root / task_id / "tables.txt").read_text() == "public.orders\ncustomers\n"


@pytest.mark.parametrize(
    ("file", "status", "field", "reason"),
    [
        (("big.txt", b"orders\n" * 40_000), 413, None, "larger than"),
        (("bin.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"), 400, "table_list_file", "not text"),
        (("latin.txt", "caf\xe9\n".encode("latin-1")), 400, "table_list_file", "not UTF-8"),
        (("tables.csv", b"orders\n"), 400, "table_list_file", "*.txt"),
        (("../escape.txt", b"orders\n"), 400, "table_list_file", "not a plain file name"),
        (("/etc/cron.d/x.txt", b"orders\n"), 400, "table_list_file", "not a plain file name"),
        (("..\\win.txt", b"orders\n"), 400, "table_list_file", "not a plain file name"),
        ((".hidden.txt", b"orders\n"), 400, "table_list_file", "not a plain file name"),
        (("metadata.txt", b"orders\n"), 400, "table_list_file", "pipeline's own output"),
        (("empty.txt", b""), 400, "table_list_file", "empty"),
        (("comments.txt", b"# nothing\n\n"), 400, "table_list_file", "empty"),
        (("bad.txt", b"orders; drop table x\n"), 400, "table_list_file", "not table names"),
    ],
)
async def test_multipart_create_refuses_bad_files(
    gateway: TestClient,
    commands: CommandProbe,
    data_root: Path,
    file: tuple[str, bytes],
    status: int,
    field: str | None,
    reason: str,
) -> None:
    before = set(os.listdir(data_root)) if data_root.exists() else set()
    got, data = await post(gateway, f"{API}/tasks", data=form(parameters(), file))
    assert got == status, data
    assert reason in data["response"]
    if field is not None:
        assert field in (data.get("invalid_params") or data.get("missing_params") or [])
    await commands.none()
    after = set(os.listdir(data_root)) if data_root.exists() else set()
    assert after == before  # no task directory was left behind
    assert not (data_root.parent / "escape.txt").exists()


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (lambda: form(parameters(), None), "no table_list_file"),
        (lambda: form(None, ("t.txt", b"orders\n")), "`parameters`"),
        (lambda: form("{not json", ("t.txt", b"orders\n")), "not JSON"),
        (lambda: form("[1, 2]", ("t.txt", b"orders\n")), "JSON object"),
        (lambda: form(parameters(table_list=["orders"]), ("t.txt", b"orders\n")), "leave table_list_file"),
        (
            lambda: form(parameters(), ("t.txt", b"orders\n"), extra={"surprise": "1"}),
            "unexpected form field",
        ),
        (
            lambda: form(parameters(enable_sql_validation="no"), ("t.txt", b"orders\n")),
            "enable_sql_validation",
        ),
        (lambda: form(parameters(db_connection=...), ("t.txt", b"orders\n")), "db_connection"),
    ],
)
async def test_multipart_create_refuses_bad_forms(
    gateway: TestClient, commands: CommandProbe, build: Any, reason: str
) -> None:
    status, data = await post(gateway, f"{API}/tasks", data=build())
    assert status == 400, data
    assert reason in data["response"]
    await commands.none()


async def test_a_truncated_form_is_a_400(gateway: TestClient, commands: CommandProbe) -> None:
    body = (
        b'--b\r\nContent-Disposition: form-data; name="parameters"\r\n\r\n{"db_connection": "x"}\r\n'
        b'--b\r\nContent-Disposition: form-data; name="table_list_file"; filename="t.txt"\r\n\r\norders\n'
    )
    status, data = await post(
        gateway, f"{API}/tasks", data=body, headers={"Content-Type": "multipart/form-data; boundary=b"}
    )
    assert status == 400 and "malformed multipart" in data["response"], data
    await commands.none()


# ---- DP_TABLE_LISTS_DIR ---------------------------------------------------------------------------


async def test_naming_a_file_without_the_directory_is_a_400_saying_so(
    gateway: TestClient, commands: CommandProbe
) -> None:
    status, data = await post(
        gateway, f"{API}/tasks", json={"parameters": parameters(table_list_file="tables.txt")}
    )
    assert status == 400, data
    assert "DP_TABLE_LISTS_DIR is not set" in data["response"]
    assert data["invalid_params"] == ["table_list_file"]
    await commands.none()


@pytest.fixture
def lists_dir(tmp_path: Path) -> Path:
    root = tmp_path / "lists"
    (root / "sales").mkdir(parents=True)
    (root / "sales" / "q3.txt").write_text("public.orders\ncustomers\n")
    (root / "plain.txt").write_text("orders\n")
    (root / "binary.txt").write_bytes(b"\x00\x01\x02")
    (root / "huge.txt").write_text("orders\n" * 40_000)
    (root / "metadata.txt").write_text("orders\n")
    # Outside the directory: what traversal would reach.
    (tmp_path / "secret.txt").write_text("stolen_table\n")
    (root / "link_out.txt").symlink_to(tmp_path / "secret.txt")
    (root / "dir_link").symlink_to(tmp_path)
    (root / "link_in.txt").symlink_to(root / "plain.txt")
    os.mkfifo(root / "fifo.txt")
    (root / "dir.txt").mkdir()
    return root


async def test_a_file_under_the_directory_is_copied_into_the_task(
    make_gateway: Any, commands: CommandProbe, rows: ReadModels, data_root: Path, lists_dir: Path
) -> None:
    gateway = await make_gateway(table_lists_dir=str(lists_dir))
    for name, expected_file, tables in [
        ("sales/q3.txt", "q3.txt", "public.orders\ncustomers\n"),
        ("plain.txt", "plain.txt", "orders\n"),
        ("link_in.txt", "plain.txt", "orders\n"),  # a link that stays inside is followed
    ]:
        collector = serve_creates(commands, rows)
        status, data = await post(
            gateway, f"{API}/tasks", json={"parameters": parameters(table_list_file=name)}
        )
        assert status == 201, (name, data)
        [command] = await collector
        params = command.payload.parameters  # type: ignore[union-attr]
        assert params.table_list_file == expected_file and params.table_list_source == name
        assert (data_root / data["task_id"] / expected_file).read_text() == tables


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("../secret.txt", 400, "invalid_params"),  # refused by the document's pattern
        ("sales/../../secret.txt", 400, "invalid_params"),
        ("/etc/passwd", 400, "invalid_params"),
        ("..", 400, "invalid_params"),
        ("sales//q3.txt", 400, "invalid_params"),
        ("link_out.txt", 400, "leads outside DP_TABLE_LISTS_DIR"),
        ("dir_link/secret.txt", 400, "leads outside DP_TABLE_LISTS_DIR"),
        ("missing.txt", 400, "no such readable file"),
        ("sales", 400, "must be named *.txt"),
        ("dir.txt", 400, "no such readable file"),
        ("fifo.txt", 400, "no such readable file"),
        ("binary.txt", 400, "not text"),
        ("huge.txt", 413, "larger than"),
        ("metadata.txt", 400, "pipeline's own output"),
    ],
)
async def test_traversal_and_bad_files_in_the_directory_are_refused(
    make_gateway: Any,
    commands: CommandProbe,
    data_root: Path,
    lists_dir: Path,
    name: str,
    status: int,
    reason: str,
) -> None:
    gateway = await make_gateway(table_lists_dir=str(lists_dir))
    before = set(os.listdir(data_root)) if data_root.exists() else set()
    resp = await gateway.post(f"{API}/tasks", json={"parameters": parameters(table_list_file=name)})
    text = await resp.text()
    assert resp.status == status, text
    assert reason in text
    assert "stolen_table" not in text
    body = json.loads(text)["data"]
    if status == 400:
        assert "table_list_file" in body["invalid_params"]
    await commands.none()
    assert (set(os.listdir(data_root)) if data_root.exists() else set()) == before


# ---- step ranges ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ({"from_step": 1, "to_step": 2}, ("complete", None, None, 2)),
        ({"to_step": "qa_generation"}, ("complete", None, None, 2)),
        ({"from_step": "ddl_md_generation", "to_step": 3}, ("complete", None, None, 3)),
        ({"from_step": 1, "to_step": 1}, ("single", 1, None, None)),  # from = to is single mode
        ({"from_step": 1, "to_step": 4}, ("complete", None, None, None)),
    ],
)
async def test_create_with_a_range(
    gateway: TestClient,
    commands: CommandProbe,
    rows: ReadModels,
    given: dict[str, Any],
    expected: tuple[Any, ...],
) -> None:
    collector = serve_creates(commands, rows)
    status, data = await post(
        gateway, f"{API}/tasks", json={"parameters": parameters(table_list=["orders"], **given)}
    )
    assert status == 201, data
    [command] = await collector
    p = command.payload.parameters  # type: ignore[union-attr]
    assert (p.execution_mode, p.single_step, p.from_step, p.to_step) == expected


@pytest.mark.parametrize(
    ("given", "status", "fields"),
    [
        ({"from_step": 3, "to_step": 2}, 400, ["from_step", "to_step"]),
        ({"from_step": "no_such_step"}, 400, ["from_step"]),
        ({"from_step": 0}, 400, ["from_step"]),
        ({"to_step": 5}, 400, ["to_step"]),
        ({"execution_mode": "single", "single_step": 1, "from_step": 1}, 400, ["from_step", "to_step"]),
        # A new task directory holds only the table list: a run starting past step 1 cannot run.
        ({"from_step": 2, "to_step": 3}, 409, None),
        ({"from_step": "sql_validation"}, 409, None),
        ({"execution_mode": "single", "single_step": 4}, 409, None),
    ],
)
async def test_create_refuses_impossible_ranges(
    gateway: TestClient,
    commands: CommandProbe,
    data_root: Path,
    given: dict[str, Any],
    status: int,
    fields: list[str] | None,
) -> None:
    before = set(os.listdir(data_root)) if data_root.exists() else set()
    got, data = await post(gateway, f"{API}/tasks", data=form(parameters(**given), ("t.txt", b"orders\n")))
    assert got == status, data
    if fields is not None:
        assert data["invalid_params"] == fields
    else:
        assert data["missing_inputs"] and data["step"] != "ddl_generation"
        assert "cannot run: its inputs are missing" in data["response"]
    await commands.none()
    assert (set(os.listdir(data_root)) if data_root.exists() else set()) == before


async def test_execute_a_range(gateway: TestClient, commands: CommandProbe, rows: ReadModels) -> None:
    task_id = await rows.task(status="completed")
    directory = rows.task_dir(task_id)
    directory.mkdir(parents=True, exist_ok=True)
    # Only step 1's outputs: step 2 can run, step 3 cannot (no question/SQL pairs yet).
    (directory / "public_orders.ddl").write_text("create table orders ();\n")
    (directory / "public_orders_detail.md").write_text("# orders\n")
    status, data = await post(gateway, f"{API}/tasks/{task_id}/execute", json={"from_step": 3, "to_step": 4})
    assert status == 409, data
    assert data["missing_inputs"] == ["qs_*_pair.json (run qa_generation first)"]
    assert data["step"] == "sql_validation"
    await commands.none()

    status, data = await post(
        gateway, f"{API}/tasks/{task_id}/execute", json={"from_step": "question_sql_generation", "to_step": 3}
    )
    assert status == 202, data
    command = (await commands.next()).payload
    assert command.type == "execute_task"
    assert (command.execution_mode, command.step, command.from_step, command.to_step) == (  # type: ignore[union-attr]
        "complete",
        None,
        "qa_generation",
        "sql_validation",
    )


@pytest.mark.parametrize(
    ("given", "fields"),
    [
        ({"from_step": 4, "to_step": 1}, ["from_step", "to_step"]),
        ({"single_step": 2, "from_step": 2}, ["from_step", "to_step"]),
        ({"execution_mode": "single", "to_step": 2}, ["from_step", "to_step"]),
        ({"from_step": "bogus"}, ["from_step"]),
    ],
)
async def test_execute_refuses_bad_ranges(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels, given: dict[str, Any], fields: list[str]
) -> None:
    task_id = await rows.task(status="completed")
    status, data = await post(gateway, f"{API}/tasks/{task_id}/execute", json=given)
    assert status == 400, data
    assert data["invalid_params"] == fields
    await commands.none()


async def test_execute_from_step_one_needs_the_table_list(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    task_id = await rows.task(
        status="failed",
        parameters={"db_connection": URL, "business_context": "x", "table_list_file": "gone.txt"},
    )
    status, data = await post(gateway, f"{API}/tasks/{task_id}/execute", json={"to_step": 2})
    assert status == 409, data
    assert data["missing_inputs"] == ["gone.txt (give the task its table list first)"]
    await commands.none()

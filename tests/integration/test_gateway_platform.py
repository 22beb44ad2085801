"""Gateway: auth, the envelope on every kind of response, probes, metrics, OpenAPI, secrets never shown,
and the training-data and business-database routes."""

# ruff: noqa: F811  (fixtures are imported from gateway_fixtures and then requested by name)

from __future__ import annotations

import json
import re
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestClient

from services.api_gateway.adapters import read_models
from services.api_gateway.keys import BROKER
from shared import training_store, training_writer
from shared.embeddings import OfflineEmbedder
from shared.settings import CommonSettings
from tests.conftest import PG_URL
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
from tests.integration.test_gateway_tasks import assert_envelope, call

pytestmark = pytest.mark.integration

SECRET = "S3cretPw"
URL = f"postgresql://u:{SECRET}@db.example:5432/shop"
SAMPLE_ID = "task_20200101_000000_sample"
TOKEN_1 = "tok-1-0123456789abcdefghijklmn"
TOKEN_2 = "tok-2-0123456789abcdefghijklmn"


def concrete(path: str) -> str:
    return path.replace("{task_id}", SAMPLE_ID).replace("{filename}", "x.txt")


async def test_every_route_but_probes_needs_a_bearer_token(make_gateway: Any) -> None:
    client = await make_gateway(api_tokens=[TOKEN_1, TOKEN_2])
    open_paths = {"/healthz", "/readyz", f"{API}/healthz", f"{API}/readyz", "/", "/static/{filename}"}
    checked = 0
    for route in client.server.app.router.routes():
        path = route.resource.canonical  # type: ignore[union-attr]
        if path in open_paths:
            continue
        for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN_1}"}):
            resp = await client.request(route.method, concrete(path), headers=headers)
            data = assert_envelope(await resp.json(), 401)
            assert resp.status == 401 and data["error_type"] == "unauthorized", (route.method, path)
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
        checked += 1
    assert checked >= 20
    for path in ("/healthz", "/readyz", f"{API}/healthz"):
        assert (await client.get(path)).status == 200
    assert (await client.get("/")).status == 200
    ok = await client.get(f"{API}/tasks", headers={"Authorization": f"Bearer {TOKEN_2}"})
    assert ok.status == 200
    assert (await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN_1}"})).status == 200


async def test_framework_errors_are_enveloped(gateway: TestClient) -> None:
    data = await call(gateway, "GET", "/api/v0/nothing/here", 404)
    assert data["error_type"] == "resource_not_found"
    resp = await gateway.put(f"{API}/tasks")
    data = assert_envelope(await resp.json(), 405)
    assert data["error_type"] == "invalid_params" and data["invalid_params"] == ["method"]
    assert "GET" in resp.headers["Allow"]
    resp = await gateway.post("/healthz")
    assert resp.status == 405 and (await resp.json())["success"] is False


async def test_unexpected_errors_are_500_and_dependency_errors_503(
    gateway: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def broken(*_: object) -> None:
        raise RuntimeError(f"bug with {URL}")

    monkeypatch.setattr(read_models, "get_task", broken)
    resp = await gateway.get(f"{API}/tasks/{SAMPLE_ID}")
    text = await resp.text()
    data = assert_envelope(json.loads(text), 500)
    assert data["error_type"] == "internal_error" and SECRET not in text

    async def down(*_: object) -> None:
        raise asyncpg.exceptions.CannotConnectNowError("the database system is starting up")

    monkeypatch.setattr(read_models, "get_task", down)
    data = await call(gateway, "GET", f"{API}/tasks/{SAMPLE_ID}", 503)
    assert data["error_type"] == "service_unavailable"


async def test_readiness_follows_the_broker_channel(gateway: TestClient, rows: ReadModels) -> None:
    data = await call(gateway, "GET", "/readyz", 200)
    # The collector check (API.md: collector lag under its threshold): no accepted task waits here.
    assert data["checks"] == {"database": True, "broker": True, "collector": True}
    await call(gateway, "GET", "/healthz", 200)
    await gateway.server.app[BROKER].channel.close()
    data = await call(gateway, "GET", "/readyz", 503)
    assert data["error_type"] == "service_unavailable" and data["checks"]["broker"] is False
    await call(gateway, "GET", "/healthz", 200)
    # A command that cannot be published is 503, not 500.
    task_id = await rows.task(status="completed")
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/cancel", 409)
    data = await call(gateway, "POST", f"{API}/tasks/{task_id}/execute", 503, json={})
    assert data["error_type"] == "service_unavailable"


async def test_metrics_count_requests_by_route_template(make_gateway: Any) -> None:
    first, second = await make_gateway(), await make_gateway()
    await first.get(f"{API}/tasks/{SAMPLE_ID}")
    await first.get(f"{API}/tasks/{SAMPLE_ID}")
    await first.get("/no/such/path")
    resp = await first.get("/metrics")
    assert resp.status == 200 and resp.headers["Content-Type"].startswith("text/plain")
    text = await resp.text()
    line = re.search(
        r'dp_gateway_http_requests_total\{method="GET",route="/api/v0/data_pipeline/tasks/\{task_id\}",status="404"\} (\S+)',
        text,
    )
    assert line and float(line.group(1)) == 2.0
    assert 'route="unmatched"' in text and SAMPLE_ID not in text
    assert "dp_gateway_http_request_duration_seconds_bucket" in text
    # Each app has its own registry.
    other = await (await second.get("/metrics")).text()
    assert "tasks/{task_id}" not in other


async def test_openapi_lists_every_route_from_the_models(make_gateway: Any) -> None:
    client = await make_gateway(api_tokens=[TOKEN_1])
    resp = await client.get("/api/v0/openapi.json", headers={"Authorization": f"Bearer {TOKEN_1}"})
    doc = await resp.json()
    assert doc["openapi"].startswith("3.1")
    for route in client.server.app.router.routes():
        if route.name is None:
            continue  # a guard that answers 405 (DELETE /tasks/active), not an operation
        path = route.resource.canonical  # type: ignore[union-attr]
        assert route.method.lower() in doc["paths"].get(path, {}), (route.method, path)
    create = doc["paths"][f"{API}/tasks"]["post"]
    body_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schemas = doc["components"]["schemas"]
    # oneOf the seed's create {task_type, parameters} and the earlier flat create.
    shapes = [schemas[one["$ref"].rsplit("/", 1)[1]] for one in schemas[body_ref.rsplit("/", 1)[1]]["oneOf"]]
    [body] = [shape for shape in shapes if "parameters" in shape["properties"]]
    params = schemas[body["properties"]["parameters"]["$ref"].rsplit("/", 1)[1]]
    assert {"db_connection", "business_context"} <= set(params["required"])
    assert params["properties"]["enable_sql_validation"]["type"] == "boolean"
    assert set(create["responses"]) >= {"201", "400", "401", "409", "413", "500"}
    logs = doc["paths"][f"{API}/tasks/{{task_id}}/logs"]["get"]
    assert {p["name"] for p in logs["parameters"]} >= {
        "task_id",
        "level",
        "step",
        "q",
        "limit",
        "cursor",
        "follow",
    }
    assert "text/event-stream" in logs["responses"]["200"]["content"]
    refs = set(re.findall(r'"\$ref": ?"#/components/schemas/([^"]+)"', json.dumps(doc)))
    assert refs and refs <= set(schemas)
    assert doc["paths"]["/healthz"]["get"].get("security") is None
    assert doc["paths"][f"{API}/tasks"]["get"]["security"] == [{"bearer": []}]


async def test_a_password_never_appears_in_any_response(
    gateway: TestClient, commands: CommandProbe, rows: ReadModels
) -> None:
    bodies: list[str] = []

    async def record(method: str, path: str, **kwargs: Any) -> Any:
        resp = await gateway.request(method, path, **kwargs)
        bodies.append(await resp.text())
        return resp

    collector = serve_creates(commands, rows)
    created = await record(
        "POST",
        f"{API}/tasks",
        json={"parameters": {"db_connection": URL, "table_list": ["t"], "business_context": "x"}},
    )
    assert created.status == 201
    [command] = await collector
    task_id = command.task_id
    assert task_id
    await rows.pg.execute(
        "UPDATE data_pipeline_tasks SET error_message = $2, result = $3::jsonb WHERE id = $1",
        task_id,
        f"could not connect to {URL}",
        json.dumps({"dsn": URL, "note": f"password={SECRET}"}),
    )
    await rows.log(task_id, f"connecting to {URL}")
    await rows.event(
        task_id, "task_created", {"parameters": command.payload.parameters.model_dump(mode="json")}
    )  # type: ignore[union-attr]
    await rows.execution(task_id, "ddl_generation", status="failed", error_message=f"auth failed for {URL}")
    for path in (
        f"{API}/tasks/{task_id}",
        f"{API}/tasks",
        f"{API}/tasks/active",
        f"{API}/tasks/{task_id}/logs",
        f"{API}/tasks/{task_id}/events",
        f"{API}/tasks/{task_id}/files",
    ):
        assert (await record("GET", path)).status == 200, path
    # The task's own views show the URL, masked (the lists may page it out in a full test session).
    detail, logs, events = bodies[1], bodies[4], bodies[5]
    async with gateway.get(f"{API}/tasks/{task_id}/logs", params={"follow": "true"}) as resp:
        await resp.content.readline()  # backlog is written at once; read what is there
    await record(
        "POST", f"{API}/tasks", json={"parameters": {"db_connection": URL.replace("postgresql", "mysql")}}
    )
    await record(
        "POST",
        f"{API}/database/tables",
        json={"db_connection": URL.replace("db.example:5432", "127.0.0.1:1")},
    )
    for text in bodies:
        assert SECRET not in text, text
        assert "enc:v1:" not in text and "db_connection_secret" not in text
    assert all("u:***@" in text for text in (detail, logs, events))


async def test_list_business_database_tables(gateway: TestClient, migrated: CommonSettings) -> None:
    data = await call(
        gateway,
        "POST",
        f"{API}/database/tables",
        200,
        json={"db_connection": PG_URL, "schema": migrated.db_schema, "pattern": "data_pipeline_task*"},
    )
    names = {t["name"] for t in data["tables"]}
    assert {"data_pipeline_tasks", "data_pipeline_task_logs"} <= names and "data_pipeline_events" not in names
    assert data["total"] == len(data["tables"])
    data = await call(
        gateway,
        "POST",
        f"{API}/database/tables",
        400,
        json={"db_connection": f"postgresql://u:{SECRET}@127.0.0.1:1/x"},
    )
    assert data["invalid_params"] == ["db_connection"] and SECRET not in json.dumps(data)
    data = await call(gateway, "POST", f"{API}/database/tables", 400, json={})
    assert data["missing_params"] == ["db_connection"]
    data = await call(
        gateway, "POST", f"{API}/database/tables", 400, json={"db_connection": PG_URL, "schema": "x;y"}
    )
    assert data["invalid_params"] == ["schema"]


@pytest.fixture
async def training_schema(migrated: CommonSettings) -> Any:
    schema = f"{migrated.db_schema}_training"
    yield schema
    conn = await asyncpg.connect(PG_URL)
    await conn.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
    await conn.close()


async def test_training_data_search_and_stats(gateway: TestClient, training_schema: str) -> None:
    data = await call(gateway, "GET", "/api/v0/training_data/stats", 200)
    assert data["stats"]["total"] == 0
    data = await call(
        gateway, "POST", "/api/v0/training_data/search", 200, json={"question": "orders per customer"}
    )
    assert data["results"] == []
    items = [
        training_store.TrainingItem(kind="ddl", content="CREATE TABLE orders (id int, customer_id int);"),
        training_store.TrainingItem(
            kind="question_sql",
            content="How many orders per customer?",
            question="How many orders per customer?",
            sql="SELECT customer_id, count(*) FROM orders GROUP BY 1",
        ),
        training_store.TrainingItem(kind="documentation", content="Stores and their opening hours"),
    ]
    vectors = await OfflineEmbedder(64).embed([i.content for i in items])
    conn = await asyncpg.connect(PG_URL)
    try:
        await training_store.ensure_schema(conn, training_schema)
        await training_writer.insert_items(
            conn, training_schema, items, vectors, "task_20200101_000000_loaded"
        )
    finally:
        await conn.close()
    data = await call(
        gateway,
        "POST",
        "/api/v0/training_data/search",
        200,
        json={"question": "orders per customer", "limit": 1},
    )
    assert data["total"] == 3 and data["results"][0]["kind"] == "question_sql"
    assert set(data["by_kind"]) == {"ddl", "documentation", "question_sql"}
    data = await call(
        gateway, "POST", "/api/v0/training_data/search", 200, json={"question": "orders", "kinds": ["ddl"]}
    )
    assert [r["kind"] for r in data["results"]] == ["ddl"]
    data = await call(gateway, "GET", "/api/v0/training_data/stats", 200)
    assert data["stats"]["total"] == 3 and data["stats"]["by_kind"]["ddl"] == 1
    for bad, names in (
        ({"question": ""}, ["question"]),
        ({"question": "x", "kinds": ["tables"]}, ["kinds"]),
        ({"question": "x", "limit": 0}, ["limit"]),
    ):
        data = await call(gateway, "POST", "/api/v0/training_data/search", 400, json=bad)
        assert data["invalid_params"] == names
    data = await call(gateway, "POST", "/api/v0/training_data/search", 400, json={})
    assert data["missing_params"] == ["question"]


async def test_ui_is_served(gateway: TestClient) -> None:
    resp = await gateway.get("/")
    assert resp.status == 200 and resp.content_type == "text/html"
    html = await resp.text()
    assert "/static/app.js" in html
    resp = await gateway.get("/static/app.js")
    assert resp.status == 200 and "javascript" in resp.content_type
    assert "/api/v0/data_pipeline" in await resp.text()
    await call(gateway, "GET", "/static/..%2fbootstrap.py", 404)
    await call(gateway, "GET", "/static/nothing.js", 404)

"""Fixtures for the gateway's integration tests: the app under a test client, read-model rows written
directly (no collector runs here), a probe on the scheduler's command queue, and an SSE reader.

Test modules import what they use: `from tests.integration.gateway_fixtures import gateway  # noqa: F401`.
The gateway tests use their own broker prefix (`<run prefix>.gw`) so no other test's scheduler can
consume their commands; it is deleted at the end of the session.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
import pytest
from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer

from services.api_gateway.bootstrap import create_app
from shared.broker import SCHEDULER_KEY, Publisher, Topology, declare_topology, delete_topology
from shared.commands import CommandPayload
from shared.embeddings import EmbeddingSettings
from shared.ids import new_task_id
from shared.messages import CommandEnvelope, EventEnvelope, decode_message
from shared.pipeline_settings import PipelineSettings
from shared.settings import CommonSettings, GatewaySettings
from tests.conftest import AMQP_URL

API = "/api/v0/data_pipeline"


def gateway_settings(test_env: dict[str, str], **overrides: Any) -> GatewaySettings:
    values: dict[str, Any] = {k[3:].lower(): v for k, v in test_env.items()}
    values["broker_prefix"] = f"{values['broker_prefix']}.gw"
    values.setdefault("create_visibility_timeout_seconds", 3.0)
    values.setdefault("delete_visibility_timeout_seconds", 3.0)
    values.setdefault("sse_keepalive_seconds", 0.5)
    values.update(overrides)
    return GatewaySettings(**values)


@pytest.fixture(scope="session")
async def gw_topology(test_env: dict[str, str]) -> AsyncIterator[Topology]:
    """The gateway tests' own broker prefix, declared once and deleted at the end of the session."""
    topology = Topology(gateway_settings(test_env).broker_prefix)
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await declare_topology(await connection.channel(), topology)
    yield topology
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        await delete_topology(await connection.channel(), topology)


ClientFactory = Callable[..., Awaitable[TestClient]]


@pytest.fixture
async def make_gateway(
    test_env: dict[str, str], migrated: CommonSettings, gw_topology: Topology, tmp_path: Path
) -> AsyncIterator[ClientFactory]:
    """Builds gateways with setting overrides; every one is closed after the test."""
    clients: list[TestClient] = []

    async def make(**overrides: Any) -> TestClient:
        settings = gateway_settings(test_env, **overrides)
        app = create_app(
            settings,
            embedding_settings=EmbeddingSettings(provider="offline", dimensions=64),
            pipeline_settings=PipelineSettings(training_schema=f"{migrated.db_schema}_training"),
        )
        client = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    since = datetime.now(UTC)
    yield make
    for client in clients:
        await client.close()
    # No scheduler or collector serves these gateways: what they accepted is never recorded. Left in the
    # journal (which this run shares with the composed stack), it would read as collector lag and keep a
    # later gateway's /readyz at 503 once it is older than DP_READY_MAX_COLLECTOR_LAG_SECONDS.
    conn = await asyncpg.connect(migrated.database_url.get_secret_value())
    try:
        await conn.execute(
            f"DELETE FROM {migrated.db_schema}.accepted_commands a WHERE a.accepted_at >= $1"
            f" AND NOT EXISTS (SELECT 1 FROM {migrated.db_schema}.data_pipeline_tasks t WHERE t.id = a.task_id)",
            since,
        )
    finally:
        await conn.close()


@pytest.fixture
async def gateway(make_gateway: ClientFactory) -> TestClient:
    return await make_gateway()


# --- read-model rows, as the collector would write them -------------------------------------------


@dataclass
class ReadModels:
    pg: asyncpg.Connection
    data_root: Path
    task_ids: list[str] = field(default_factory=list)

    def new_id(self) -> str:
        return new_task_id(datetime.now(UTC))

    async def task(
        self,
        task_id: str | None = None,
        *,
        status: str = "pending",
        created_at: datetime | None = None,
        parameters: dict[str, Any] | None = None,
        **columns: Any,
    ) -> str:
        task_id = task_id or self.new_id()
        now = datetime.now(UTC)
        params = parameters or {
            "db_connection": "postgresql://u:***@db.example/shop",
            "business_context": "an online shop",
            "table_list": ["public.orders"],
        }
        row: dict[str, Any] = {
            "id": task_id,
            "status": status,
            "parameters": json.dumps(params),
            "created_at": created_at or now,
            "updated_at": now,
            "output_directory": str(self.data_root / task_id),
            "business_context": params.get("business_context"),
            "db_name": params.get("db_name", "shop"),
            **columns,
        }
        for key in ("step_status", "result", "step_stats"):
            if key in row and not isinstance(row[key], str) and row[key] is not None:
                row[key] = json.dumps(row[key])
        names = list(row)
        casts = {
            "parameters": "::jsonb",
            "step_status": "::jsonb",
            "result": "::jsonb",
            "step_stats": "::jsonb",
        }
        values = ", ".join(f"${i + 1}{casts.get(n, '')}" for i, n in enumerate(names))
        await self.pg.execute(
            f"INSERT INTO data_pipeline_tasks ({', '.join(names)}) VALUES ({values})", *row.values()
        )
        self.task_ids.append(task_id)
        return task_id

    async def execution(
        self,
        task_id: str,
        step: str,
        *,
        status: str,
        attempt: int = 1,
        started_at: datetime | None = None,
        completed_at: datetime | None = None,
        error_message: str | None = None,
    ) -> str:
        started_at = started_at or datetime.now(UTC)
        execution_id = f"{task_id}_step_{step}_exec_{started_at:%Y%m%d_%H%M%S}_{uuid.uuid4().hex[:4]}"
        await self.pg.execute(
            """INSERT INTO data_pipeline_task_executions
               (task_id, execution_step, status, started_at, completed_at, error_message, execution_id, attempt,
                duration_seconds)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            task_id,
            step,
            status,
            started_at,
            completed_at,
            error_message,
            execution_id,
            attempt,
            int((completed_at - started_at).total_seconds()) if completed_at else None,
        )
        return execution_id

    async def log(
        self,
        task_id: str,
        message: str,
        *,
        level: str = "INFO",
        step: str | None = None,
        at: datetime | None = None,
        event_id: uuid.UUID | None = None,
    ) -> int:
        levels = {"DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40, "CRITICAL": 50}
        return await self.pg.fetchval(
            """INSERT INTO data_pipeline_task_logs (task_id, log_level, message, step_name, timestamp, event_id, level_no)
               VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id""",
            task_id,
            level,
            message,
            step,
            at or datetime.now(UTC),
            event_id or uuid.uuid4(),
            levels[level],
        )

    async def output(self, task_id: str, file_name: str, **columns: Any) -> None:
        now = datetime.now(UTC)
        row = {
            "task_id": task_id,
            "file_type": file_name.rsplit(".", 1)[-1],
            "file_name": file_name,
            "file_path": file_name,
            "file_size": 10,
            "content_hash": "ab" * 32,
            "created_at": now,
            "modified_at": now,
            **columns,
        }
        names = list(row)
        values = ", ".join(f"${i + 1}" for i in range(len(names)))
        await self.pg.execute(
            f"INSERT INTO data_pipeline_task_outputs ({', '.join(names)}) VALUES ({values})", *row.values()
        )

    async def event(
        self, task_id: str, type_: str, payload: dict[str, Any], *, producer: str = "test"
    ) -> int:
        return await self.pg.fetchval(
            """INSERT INTO data_pipeline_events (event_id, type, task_id, occurred_at, producer, payload)
               VALUES ($1, $2, $3, $4, $5, $6::jsonb) RETURNING seq""",
            uuid.uuid4(),
            type_,
            task_id,
            datetime.now(UTC),
            producer,
            json.dumps({"type": type_, **payload}),
        )

    def task_dir(self, task_id: str) -> Path:
        path = self.data_root / task_id
        path.mkdir(parents=True, exist_ok=True)
        return path

    async def delete_task(self, task_id: str) -> None:
        await self.pg.execute("DELETE FROM data_pipeline_tasks WHERE id = $1", task_id)

    async def cleanup(self) -> None:
        await self.pg.execute("DELETE FROM data_pipeline_tasks WHERE id = ANY($1::text[])", self.task_ids)
        await self.pg.execute(
            "DELETE FROM data_pipeline_events WHERE task_id = ANY($1::text[])", self.task_ids
        )


@pytest.fixture
async def rows(pg: asyncpg.Connection, data_root: Path) -> AsyncIterator[ReadModels]:
    models = ReadModels(pg, data_root)
    yield models
    await models.cleanup()


# --- the broker: commands the gateway publishes, events the tests publish ------------------------


MARKER_HEADER = "x-test-marker"


class CommandProbe:
    """Consumes the scheduler's queue (purged when the test starts); events bound there are skipped.

    (The queue is single-active-consumer, so basic.get is refused: a consumer feeds a local buffer.)
    """

    def __init__(self, commands_exchange: aio_pika.abc.AbstractExchange | None = None) -> None:
        self.buffer: asyncio.Queue[CommandEnvelope | str] = asyncio.Queue()
        self._exchange = commands_exchange

    async def on_message(self, message: aio_pika.abc.AbstractIncomingMessage) -> None:
        marker = (message.headers or {}).get(MARKER_HEADER)
        if marker is not None:
            self.buffer.put_nowait(str(marker))
            return
        decoded = decode_message(message.body)
        if isinstance(decoded, CommandEnvelope):
            self.buffer.put_nowait(decoded)

    async def next(self, timeout: float = 5.0) -> CommandEnvelope:
        try:
            item = await asyncio.wait_for(self.buffer.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"no command on the scheduler queue within {timeout}s") from None
        assert isinstance(item, CommandEnvelope), f"expected a command, the queue held only marker {item}"
        return item

    async def none(self, *, timeout: float = 10.0) -> None:
        """Assert that nothing published so far put a command on the scheduler's queue.

        Not "sleep, then look" (a late command would pass unseen): a marker is published now on the
        same exchange and routing key as the gateway's commands, and must be the next thing the queue
        delivers. The gateway waits for the broker's confirm before it answers, and the queue is
        ordered, so any command from the request under test is queued before the marker.
        """
        assert self._exchange is not None, "CommandProbe.none needs the commands exchange"
        marker = uuid.uuid4().hex
        await self._exchange.publish(
            aio_pika.Message(b"{}", headers={MARKER_HEADER: marker}), SCHEDULER_KEY, mandatory=True
        )
        try:
            item = await asyncio.wait_for(self.buffer.get(), timeout)
        except TimeoutError:
            raise AssertionError(f"the probe's marker did not come back within {timeout}s") from None
        assert not isinstance(item, CommandEnvelope), f"unexpected command {item.type}: {item}"
        assert item == marker, f"a stale marker {item} was still queued"


@pytest.fixture
async def commands(gw_topology: Topology) -> AsyncIterator[CommandProbe]:
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True, on_return_raises=True)
        exchanges = await declare_topology(channel, gw_topology)
        queue = await channel.get_queue(gw_topology.scheduler_queue, ensure=True)
        await queue.purge()
        probe = CommandProbe(exchanges.commands)
        await queue.consume(probe.on_message, no_ack=True)
        yield probe


@pytest.fixture
async def events(gw_topology: Topology) -> AsyncIterator[Publisher]:
    """Publishes events on the gateway tests' events exchange, as runners and the scheduler would."""
    connection = await aio_pika.connect(AMQP_URL)
    async with connection:
        channel = await connection.channel(publisher_confirms=True)
        yield Publisher(await declare_topology(channel, gw_topology), "test")


def serve_creates(
    commands: CommandProbe, rows: ReadModels, *, count: int = 1
) -> asyncio.Task[list[CommandEnvelope]]:
    """A stand-in for scheduler + collector: turns CreateTask commands into task rows."""

    async def serve() -> list[CommandEnvelope]:
        seen = []
        for _ in range(count):
            envelope = await commands.next(timeout=10)
            assert envelope.type == "create_task" and envelope.task_id
            payload: Any = envelope.payload
            await rows.task(
                envelope.task_id,
                parameters=payload.parameters.model_dump(mode="json"),
                db_name=payload.parameters.db_name,
            )
            seen.append(envelope)
        return seen

    return asyncio.create_task(serve())


def payload_of(envelope: CommandEnvelope) -> CommandPayload:
    return envelope.payload


# --- server-sent events ---------------------------------------------------------------------------


@dataclass
class SseEvent:
    event: str
    data: Any
    id: str | None


class SseReader:
    def __init__(self, response: ClientResponse) -> None:
        self.response = response
        self.comments = 0

    async def next(self, timeout: float = 5.0) -> SseEvent | None:
        """The next event (comments counted and skipped); None at the end of the stream."""
        event, data, event_id = "message", [], None
        while True:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            if not raw:
                return None
            line = raw.decode().rstrip("\n")
            if line == "":
                if data:
                    return SseEvent(event, json.loads("\n".join(data)), event_id)
                continue
            if line.startswith(":"):
                self.comments += 1
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:"):
                data.append(line[5:].strip())
            elif line.startswith("id:"):
                event_id = line[3:].strip()

    async def comment(self, timeout: float = 5.0) -> None:
        """Read up to the next comment line (a keep-alive); an event arriving first fails the test."""
        seen = self.comments
        while self.comments == seen:
            raw = await asyncio.wait_for(self.response.content.readline(), timeout)
            assert raw, "the stream ended before a comment"
            line = raw.decode().rstrip("\n")
            if line.startswith(":"):
                self.comments += 1
            else:
                assert line == "", f"an event before the keep-alive: {line}"

    async def until(self, event: str, timeout: float = 5.0) -> SseEvent:
        while True:
            got = await self.next(timeout)
            assert got is not None, f"stream ended before a {event!r} event"
            if got.event == event:
                return got


def ago(seconds: float) -> datetime:
    return datetime.now(UTC) - timedelta(seconds=seconds)


def event_envelope(task_id: str, payload: Any) -> EventEnvelope:
    return EventEnvelope(task_id=task_id, producer="test", payload=payload)

"""The gateway's one listening connection: woken when the collector has recorded a task or changed its
status (issue 11).

`POST /tasks` registers a `Waiter` for its task id before it publishes `CreateTask`, a waiting
`GET /tasks/{id}?wait=S` before it reads the task; the collector's NOTIFY (shared/recorded_channel.py,
sent in the transaction that writes the row, so delivered once the row is visible) sets it. The
connection is a dedicated asyncpg connection (a LISTEN does not survive a pool's release), with an
application_name per schema so an operator (or a test) can find it. When it is lost, every waiter is
woken to fall back to polling, and it is re-established in the background with backoff; on its return
every waiter is woken again, since notifications sent in the gap are gone.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
from aiohttp import web

from services.api_gateway.keys import SETTINGS
from shared.logging import get_logger
from shared.recorded_channel import recorded_channel, task_ids
from shared.retry import CONNECTION_ERRORS, delays
from shared.secrets import mask_secrets
from shared.settings import GatewaySettings

# A silently dead connection (no FIN from a vanished host) is noticed by a probe this often.
PROBE_SECONDS = 15.0


def application_name(schema: str) -> str:
    return f"dp_gateway_listen:{schema}"  # at most 59 bytes: PostgreSQL keeps 63


class Waiter:
    """One task's wake-up: set by its notification, a ping, or a change of the listener's state."""

    def __init__(self, listener: RecordedListener) -> None:
        self._listener = listener
        self._event = asyncio.Event()

    @property
    def listening(self) -> bool:
        """Whether a notification can be expected (else the caller polls)."""
        return self._listener.connected

    @property
    def stopping(self) -> bool:
        """The gateway is shutting down: answer with what there is now instead of waiting on."""
        return self._listener.stopping

    def wake(self) -> None:
        self._event.set()

    async def wait(self, timeout: float) -> bool:
        """True when woken within `timeout` seconds (and re-armed for the next wake-up)."""
        if not self._event.is_set():
            try:
                await asyncio.wait_for(self._event.wait(), max(timeout, 0))
            except TimeoutError:
                return False
        self._event.clear()
        return True


class RecordedListener:
    def __init__(self, settings: GatewaySettings) -> None:
        self._dsn = settings.database_url.get_secret_value()
        self.channel = recorded_channel(settings.db_schema)
        self.application_name = application_name(settings.db_schema)
        self._waiters: dict[str, set[Waiter]] = {}
        self._conn: asyncpg.Connection | None = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.stopping = False

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    @property
    def server_pid(self) -> int | None:
        """The listening connection's backend process (pg_stat_activity.pid), None while it is down."""
        return self._conn.get_server_pid() if self.connected and self._conn is not None else None

    @contextlib.contextmanager
    def expect(self, task_id: str) -> Iterator[Waiter]:
        """A waiter for `task_id`, registered until the block ends (enter it before publishing)."""
        waiter = Waiter(self)
        self._waiters.setdefault(task_id, set()).add(waiter)
        try:
            yield waiter
        finally:
            waiting = self._waiters.get(task_id)
            if waiting is not None:
                waiting.discard(waiter)
                if not waiting:
                    del self._waiters[task_id]

    def stop_waiting(self) -> None:
        """On shutdown: every waiting request answers now (a create 202, a waiting read the task as it
        stands), so that the server's grace is not spent on them and no client sees its connection cut."""
        self.stopping = True
        self._wake_all()

    def _wake_all(self) -> None:
        for waiting in self._waiters.values():
            for waiter in waiting:
                waiter.wake()

    def _notified(self, _conn: Any, _pid: int, _channel: str, payload: str) -> None:
        ids = task_ids(payload)
        if ids is None:
            self._wake_all()
            return
        for task_id in ids:
            for waiter in self._waiters.get(task_id, ()):
                waiter.wake()

    def _terminated(self, _conn: Any) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await asyncpg.connect(
            self._dsn, server_settings={"application_name": self.application_name}, timeout=10
        )
        try:
            await conn.add_listener(self.channel, self._notified)
        except BaseException:
            await conn.close()
            raise
        self._lost.clear()
        conn.add_termination_listener(self._terminated)
        self._conn = conn
        self._wake_all()  # whatever was sent while nobody listened is gone: look once

    async def start(self) -> None:
        """Listen now if the database lets us (the app starts listening), else keep trying in the background."""
        try:
            await self._connect()
        except (*CONNECTION_ERRORS, OSError, asyncpg.PostgresError) as exc:
            get_logger().warning("create notifications unavailable; polling", error=mask_secrets(repr(exc)))
        self._task = asyncio.create_task(self._keep_listening(), name="recorded-listener")

    async def _probe(self) -> bool:
        """Wait until the connection is lost or a probe fails: False; True while it is fine."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._lost.wait(), PROBE_SECONDS)
            return False
        assert self._conn is not None
        try:
            await self._conn.execute("SELECT 1", timeout=5)
        except (*CONNECTION_ERRORS, OSError, asyncpg.PostgresError):
            return False
        return True

    async def _keep_listening(self) -> None:
        log = get_logger()
        while True:
            while self.connected and await self._probe():
                pass
            if self._conn is not None:
                self._conn.terminate()
                self._conn = None
                self._wake_all()  # waiters fall back to polling
                log.warning("create notifications lost; polling until the listener is back")
            for delay in delays(0.1, 5.0):
                await asyncio.sleep(delay)  # backoff between reconnection attempts
                try:
                    await self._connect()
                except (*CONNECTION_ERRORS, OSError, asyncpg.PostgresError) as exc:
                    log.debug("create listener reconnect failed", error=mask_secrets(repr(exc)))
                    continue
                log.info("create notifications back", channel=self.channel)
                break

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._conn is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._conn.close(), 5)
            self._conn = None


LISTENER = web.AppKey("recorded_listener", RecordedListener)


async def listener_context(app: web.Application) -> AsyncIterator[None]:
    """For bootstrap's cleanup_ctx: the listener opened when the app starts, closed when it stops."""
    listener = RecordedListener(app[SETTINGS])
    await listener.start()
    app[LISTENER] = listener
    try:
        yield
    finally:
        await listener.close()

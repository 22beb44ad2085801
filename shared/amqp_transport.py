"""The socket under every RabbitMQ connection: frames go out together when the event loop is idle.

aiormq writes each frame (a publish, an ack, a confirm-select) with its own `send()`. On a busy service
that was a large share of its CPU: py-spy on the no-op bench (issue 11) found about a fifth of the
scheduler's and the step runner's samples in those sends, each one a loopback TCP segment the broker
must read as well.
The writer below keeps what the loop writes and sends it together once the loop has run every other
callback that was ready (they may write too), or after `MAX_DEFERRED_TURNS` turns, in the order
written: an idle service sends at the next turn, a busy one fewer and fuller segments, which the broker
reads with fewer system calls and frames of work. aiormq drains after every publish and ack: `drain()`
here still waits while the socket pushes back (the transport's high-water mark), but does not send
early, or every frame would again leave on its own. `write_eof()` and `close()` send what is pending
first. It plugs into aiormq's public `transport_factory`.
"""

from __future__ import annotations

import asyncio
from typing import Any, cast

import aio_pika
from aiormq.connection import TCPTransportFactory, TLSTransportFactory, TransportFactory
from yarl import URL

# A flush waits at most this many turns of the loop for the callbacks ahead of it (a bound on the delay
# under load; each turn runs every callback that was ready when it began).
MAX_DEFERRED_TURNS = 8


def _busy(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether other callbacks are ready to run. asyncio's own loops keep them in `_ready`; a loop without
    it (uvloop) counts as never busy, so each flush sends at once, as before."""
    return bool(getattr(loop, "_ready", None))


class CoalescingWriter:
    """An asyncio.StreamWriter whose writes leave as one once the loop has nothing else ready to run."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self._writer = writer
        self._pending: list[bytes] = []
        self._loop = asyncio.get_running_loop()
        self._deferred = 0

    def write(self, data: bytes) -> None:
        if not self._pending:
            self._loop.call_soon(self.flush)
        self._pending.append(data)

    def flush(self) -> None:
        """The scheduled send: behind the callbacks ready before it, at most MAX_DEFERRED_TURNS times."""
        if self._pending and self._deferred < MAX_DEFERRED_TURNS and _busy(self._loop):
            self._deferred += 1
            self._loop.call_soon(self.flush)
            return
        self._deferred = 0
        self._send()

    def _send(self) -> None:
        if self._pending:
            data = b"".join(self._pending) if len(self._pending) > 1 else self._pending[0]
            self._pending.clear()
            self._writer.write(data)

    async def drain(self) -> None:
        await self._writer.drain()

    def write_eof(self) -> None:
        self._send()
        self._writer.write_eof()

    def close(self) -> None:
        self._send()
        self._writer.close()

    def __getattr__(self, name: str) -> Any:  # transport, is_closing, wait_closed, get_extra_info...
        return getattr(self._writer, name)


class CoalescingTransportFactory(TransportFactory):
    async def create(self, url: URL, **kwargs: Any) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        plain = TLSTransportFactory() if url.scheme == "amqps" else TCPTransportFactory()
        reader, writer = await plain.create(url, **kwargs)
        return reader, cast(asyncio.StreamWriter, CoalescingWriter(writer))


class CoalescingConnection(aio_pika.RobustConnection):
    """aio-pika's robust connection (reconnects, restores channels and consumers) on the writer above."""

    def __init__(self, url: Any, loop: asyncio.AbstractEventLoop | None = None, **kwargs: Any) -> None:
        super().__init__(url, loop, **kwargs)
        self.kwargs["transport_factory"] = CoalescingTransportFactory()

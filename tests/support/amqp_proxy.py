"""A TCP relay in front of RabbitMQ whose links a test can stall: a network that silently drops traffic.

`stall()` makes every link open now drop what either side sends, and hide a close from the other side
(the client keeps a connection that looks alive, the worst case for a publish awaiting its confirm);
`cut()` then closes those links (what the client's operating system reports in the end). Links opened
later relay normally, so a client reconnecting through the relay reaches the broker again.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

from yarl import URL


@dataclass(eq=False)
class _Link:
    client: asyncio.StreamWriter
    broker: asyncio.StreamWriter
    stalled: bool = False

    def close(self) -> None:
        self.client.close()
        self.broker.close()


@dataclass
class AmqpProxy:
    broker_url: str
    links: list[_Link] = field(default_factory=list)
    _server: asyncio.Server | None = None

    async def start(self) -> str:
        """Starts listening; returns the AMQP URL that goes through the relay."""
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        return str(URL(self.broker_url).with_host("127.0.0.1").with_port(port))

    def stall(self) -> None:
        for link in self.links:
            link.stalled = True

    def cut(self) -> None:
        for link in [link for link in self.links if link.stalled]:
            link.close()
            self.links.remove(link)

    async def close(self) -> None:
        for link in self.links:
            link.close()
        self.links.clear()
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        broker = URL(self.broker_url)
        up_reader, up_writer = await asyncio.open_connection(broker.host, broker.port or 5672)
        link = _Link(writer, up_writer)
        self.links.append(link)
        await asyncio.gather(self._pipe(link, reader, up_writer), self._pipe(link, up_reader, writer))

    @staticmethod
    async def _pipe(link: _Link, source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, OSError):
            while data := await source.read(65536):
                if not link.stalled:
                    sink.write(data)
                    await sink.drain()
        if not link.stalled:
            sink.close()

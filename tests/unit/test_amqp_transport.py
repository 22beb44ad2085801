"""shared.amqp_transport.CoalescingWriter on a real loopback socket (issue 11): the writes made while the
loop is busy reach the transport as one write once it idles (or after MAX_DEFERRED_TURNS turns), in
order, and nothing stays pending when no one drains; an idle loop sends at the next turn; a drain loses
and splits nothing; write_eof and close send what is pending before they act."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from shared.amqp_transport import MAX_DEFERRED_TURNS, CoalescingWriter

READ_TIMEOUT = 5.0


@dataclass
class Link:
    """A client writer wrapped in CoalescingWriter, the server side's reader, and the calls the wrapped
    StreamWriter received (("write", bytes), ("close",), ...) in order."""

    writer: CoalescingWriter
    raw: asyncio.StreamWriter
    peer: asyncio.StreamReader
    calls: list[tuple[object, ...]] = field(default_factory=list)

    def writes(self) -> list[bytes]:
        return [bytes(c[1]) for c in self.calls if c[0] == "write"]  # type: ignore[arg-type]

    async def read(self, n: int) -> bytes:
        return await asyncio.wait_for(self.peer.readexactly(n), READ_TIMEOUT)

    async def read_to_eof(self) -> bytes:
        return await asyncio.wait_for(self.peer.read(), READ_TIMEOUT)


@pytest.fixture
async def link() -> AsyncIterator[Link]:
    accepted: asyncio.Future[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = (
        asyncio.get_running_loop().create_future()
    )

    async def on_client(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.set_result((reader, writer))

    server = await asyncio.start_server(on_client, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    _, raw = await asyncio.open_connection("127.0.0.1", port)
    peer, server_writer = await asyncio.wait_for(accepted, READ_TIMEOUT)
    link = Link(CoalescingWriter(raw), raw, peer)
    for name in ("write", "write_eof", "close"):  # a spy on the real writer: record, then pass on
        original = getattr(raw, name)

        def spy(*args: object, _name: str = name, _original: object = original) -> object:
            link.calls.append((_name, *args))
            return _original(*args)  # type: ignore[operator]

        setattr(raw, name, spy)
    yield link
    raw.close()
    server_writer.close()
    server.close()
    await server.wait_closed()


async def test_the_writes_of_one_turn_leave_as_one_write_in_order(link: Link) -> None:
    frames = [f"frame-{i:04d};".encode() for i in range(200)]
    for frame in frames:
        link.writer.write(frame)
    assert link.calls == []  # held until the loop turns
    expected = b"".join(frames)
    assert await link.read(len(expected)) == expected
    assert link.writes() == [expected]


async def test_writes_while_the_loop_is_busy_leave_together_once_it_idles(link: Link) -> None:
    for i in range(5):
        link.writer.write(f"turn-{i};".encode())
        await asyncio.sleep(0)  # one loop turn, with this test's next step ready: the loop is busy
    assert link.calls == []
    expected = b"".join(f"turn-{i};".encode() for i in range(5))
    assert await link.read(len(expected)) == expected  # the loop idles while the test waits here
    assert link.writes() == [expected]


async def test_writes_an_idle_moment_separates_leave_separately(link: Link) -> None:
    for i in range(3):
        link.writer.write(f"alone-{i};".encode())
        assert await link.read(8) == f"alone-{i};".encode()  # nothing else to run: sent at the next turn
    assert link.writes() == [f"alone-{i};".encode() for i in range(3)]


async def test_a_loop_that_never_idles_still_sends_within_the_bound(link: Link) -> None:
    loop = asyncio.get_running_loop()
    turns = 0

    def spin() -> None:  # another callback ready in every turn, as on a saturated service
        nonlocal turns
        turns += 1
        if not link.calls:
            loop.call_soon(spin)

    loop.call_soon(spin)
    link.writer.write(b"late;")
    await asyncio.wait_for(link.read(5), READ_TIMEOUT)
    assert link.writes() == [b"late;"]
    assert turns <= MAX_DEFERRED_TURNS + 2, turns


async def test_bytes_pending_at_a_drain_still_leave_together_and_in_order(link: Link) -> None:
    link.writer.write(b"head;")
    link.writer.write(b"tail;")
    await link.writer.drain()
    assert await link.read(10) == b"head;tail;"
    assert link.writes() == [b"head;tail;"]


async def test_close_sends_what_is_pending_then_closes(link: Link) -> None:
    link.writer.write(b"last words;")
    link.writer.close()
    assert link.calls == [("write", b"last words;"), ("close",)]
    await link.writer.wait_closed()  # passed through to the StreamWriter
    assert await link.read_to_eof() == b"last words;"


async def test_write_eof_sends_what_is_pending_then_the_eof(link: Link) -> None:
    link.writer.write(b"before eof;")
    link.writer.write_eof()
    assert link.calls == [("write", b"before eof;"), ("write_eof",)]
    assert await link.read_to_eof() == b"before eof;"

"""tests.support.stack.free_port never hands out one port twice, even when the kernel offers it again."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from tests.support import stack


class _Offered:
    """A socket whose bind to port 0 gets the next port of a fixed sequence, as a kernel might offer."""

    ports: list[int] = []

    def __init__(self, *args: Any) -> None:
        self.port = 0

    def __enter__(self) -> _Offered:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def bind(self, address: tuple[str, int]) -> None:
        self.port = self.ports.pop(0)

    def getsockname(self) -> tuple[str, int]:
        return ("127.0.0.1", self.port)


def test_a_port_offered_again_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(stack, "_HANDED_OUT", set())
    monkeypatch.setattr(_Offered, "ports", [40001, 40001, 40001, 40002])
    monkeypatch.setattr(socket, "socket", _Offered)
    assert [stack.free_port(), stack.free_port()] == [40001, 40002]

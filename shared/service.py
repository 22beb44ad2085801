"""Running a worker service until SIGTERM/SIGINT, then shutting it down within a grace period."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any


async def wait_for_stop_signal() -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)


def run_service(serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run the service's `serve` coroutine (it returns after a stop signal and a clean shutdown)."""
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass

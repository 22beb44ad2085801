"""Running a service until SIGTERM/SIGINT, then shutting it down within its grace period."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable, Coroutine
from typing import Any

from shared.logging import get_logger

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


async def wait_for_stop_signal() -> None:
    """Return at the first SIGTERM/SIGINT.

    The handlers stay until the loop closes: a later signal arrives while the service shuts down (a
    terminal's Ctrl-C reaches every process, then a supervisor sends SIGTERM) and is logged and
    ignored. Each shutdown is bounded by its own grace, and cutting it short would drop what it is
    finishing; the default handlers would kill a worker there, and a second signal used to leave
    aiohttp's `run_app` stuck in its shutdown.
    """
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    log = get_logger()

    def received(sig: signal.Signals) -> None:
        if stop.is_set():
            log.warning("already stopping: signal ignored", signal=sig.name)
            return
        log.info("stopping", signal=sig.name)
        stop.set()

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, received, sig)
    await stop.wait()


def run_service(serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run the service's `serve` coroutine (it returns after a stop signal and a clean shutdown)."""
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass

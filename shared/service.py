"""Running a service until SIGTERM/SIGINT, then shutting it down within its grace period."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import Any

from aiohttp import web

from shared.logging import get_logger
from shared.retry import Unreachable

STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Container allocations (net of frees) between two young-generation collections; CPython's default is 700.
# The event path's messages, envelopes and rows are freed by reference counting, so at 700 the collector
# ran hundreds of times per bench run to find next to nothing (issue 11: docs/scaling.md, "The garbage
# collector"). The older generations keep their defaults: cycles are still found, about 30 times less
# often.
YOUNG_GENERATION_THRESHOLD = 20_000


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


class CannotListen(Exception):
    """A service's port is taken or not allowed to it: one log line and exit status 1, no traceback
    (as for a dependency that stays unreachable, shared.retry.Unreachable)."""


async def listen(runner: web.BaseRunner, host: str, port: int, setting: str) -> None:
    """Serve `runner` on host:port; `setting` names the variable that moves it."""
    try:
        await web.TCPSite(runner, host, port).start()
    except OSError as exc:
        reason = os.strerror(exc.errno) if exc.errno else str(exc)  # asyncio's own text repeats the address
        raise CannotListen(
            f"cannot listen on {host}:{port}: {reason}; free the port or set {setting}"
        ) from None


def tune_garbage_collector() -> None:
    """Freeze what the imports made (never traversed again by a collection) and collect the young
    generation less often."""
    gc.freeze()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *gc.get_threshold()[1:])


def run_service(serve: Callable[[], Coroutine[Any, Any, None]]) -> None:
    """asyncio.run the service's `serve` coroutine (it returns after a stop signal and a clean shutdown)."""
    tune_garbage_collector()
    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass
    except (CannotListen, Unreachable) as exc:
        get_logger().error("not started", reason=str(exc))
        sys.exit(1)
    get_logger().info("stopped")

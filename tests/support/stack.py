"""Starts the real services as processes against the test run's PostgreSQL schema and broker prefix."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.eventually import eventually

SERVICE_MODULES = {
    "gateway": "services.api_gateway.main",
    "scheduler": "services.scheduler.main",
    "collector": "services.log_collector.main",
    "runner": "services.step_runner.main",
}


_HANDED_OUT: set[int] = set()


def free_port() -> int:
    """A port nothing listens on now, never one this process handed out before: the kernel may offer the
    same free port twice before the first taker binds it, and two gateways given one port left the second
    unable to listen while the first answered for it (a test then talked to the wrong gateway)."""
    while True:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port: int = s.getsockname()[1]
        if port not in _HANDED_OUT:
            _HANDED_OUT.add(port)
            return port


@dataclass
class Stack:
    env: dict[str, str]
    log_dir: Path
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def start(self, name: str, *, kind: str | None = None, extra_env: dict[str, str] | None = None) -> None:
        kind = kind or name
        env = {**os.environ, **self.env, **(extra_env or {})}
        log = (self.log_dir / f"{name}.log").open("ab")
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", SERVICE_MODULES[kind]],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parents[2],
        )

    def stop(self, name: str, sig: int = signal.SIGTERM, timeout: float = 30) -> None:
        proc = self.procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)

    def kill(self, name: str) -> None:
        self.stop(name, signal.SIGKILL)

    def alive(self, name: str) -> bool:
        proc = self.procs.get(name)
        return proc is not None and proc.poll() is None

    def stop_all(self) -> None:
        for name in list(self.procs):
            self.stop(name)

    def logs(self, name: str) -> str:
        path = self.log_dir / f"{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""


def wait_until(predicate, timeout: float = 30.0, interval: float = 0.1, what: str = "condition"):  # type: ignore[no-untyped-def]
    """`eventually` for code outside an event loop (e.g. under asyncio.to_thread)."""
    return asyncio.run(eventually(predicate, timeout=timeout, interval=interval, what=what))

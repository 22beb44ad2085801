"""A RabbitMQ node of `make bench`'s own, configured as the deployment ships its broker.

The benches that go through a broker (the collector's lag, consuming, end to end with its raw-chain and
Celery baselines) then measure RabbitMQ with deploy/rabbitmq/dp.conf, the file compose mounts into
/etc/rabbitmq/conf.d/ and both Kubernetes flavours repeat, instead of whatever the machine's broker runs
(RabbitMQ's defaults here: a 512 MiB quorum write-ahead log whose rollover, when a run catches one,
doubles the lag p99; docs/scaling.md, "The eleventh session"). The node starts empty, so no run inherits
queues, logs or a half-full write-ahead log from earlier work on the machine's broker.

The node runs as the user who runs the bench, from the installed RabbitMQ's own start script, with its
data, logs and Erlang cookie in a temporary directory that is removed when it stops; it listens on
127.0.0.1 only, on ports free when it starts, and registers with the machine's epmd under a name of its
own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

DEPLOYED_CONFIG = Path(__file__).resolve().parent.parent / "deploy" / "rabbitmq" / "dp.conf"
# Debian's /usr/sbin/rabbitmq-server switches to the rabbitmq user (su); the script it wraps does not.
_SERVER_CANDIDATES = ("/usr/lib/rabbitmq/bin/rabbitmq-server",)
START_TIMEOUT = 90.0


@dataclass(frozen=True)
class Node:
    name: str
    url: str
    pid: int  # the Erlang VM's (beam.smp), whose CPU the benches count as the broker's
    wal_max_size_bytes: int | None  # as the running node reports it; None: not set (Ra's default)


def find_server() -> Path | None:
    """RabbitMQ's start script: DP_BENCH_RABBITMQ_SERVER, Debian's unwrapped one, or rabbitmq-server on PATH."""
    chosen = os.environ.get("DP_BENCH_RABBITMQ_SERVER")
    if chosen:
        return Path(chosen)
    for candidate in _SERVER_CANDIDATES:
        if os.access(candidate, os.X_OK):
            return Path(candidate)
    found = shutil.which("rabbitmq-server")
    return Path(found) if found else None


def node_config(deployed: str, port: int) -> str:
    """The deployment's settings, plus a listener on loopback only."""
    return f"{deployed.rstrip()}\n\nlisteners.tcp.default = 127.0.0.1:{port}\n"


def _free_ports(count: int) -> list[int]:
    """Ports free now, all different (bound at once, so the kernel cannot offer one twice)."""
    with ExitStack() as stack:
        probes = [stack.enter_context(socket.socket()) for _ in range(count)]
        for probe in probes:
            probe.bind(("127.0.0.1", 0))
        return [int(probe.getsockname()[1]) for probe in probes]


def listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    except OSError:
        return False
    return True


def _node_environment(base: Path, name: str, dist_port: int) -> dict[str, str]:
    return {
        **os.environ,
        "HOME": str(base),  # the Erlang cookie the node and rabbitmqctl share
        "RABBITMQ_CONF_ENV_FILE": str(base / "rabbitmq-env.conf"),  # not the machine broker's
        "RABBITMQ_NODENAME": name,
        "RABBITMQ_DIST_PORT": str(dist_port),
        "RABBITMQ_CONFIG_FILE": str(base / "rabbitmq.conf"),
        "RABBITMQ_ENABLED_PLUGINS_FILE": str(base / "enabled_plugins"),
        "RABBITMQ_MNESIA_BASE": str(base / "mnesia"),
        "RABBITMQ_LOG_BASE": str(base / "log"),
        "ERL_EPMD_ADDRESS": "127.0.0.1",
        "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
    }


def _beam_pid(script_pid: int) -> int:
    """The Erlang VM the start script runs as its child (or the script's own pid, had it exec'd the VM)."""
    children = Path(f"/proc/{script_pid}/task/{script_pid}/children").read_text().split()
    beams = [int(c) for c in children if Path(f"/proc/{c}/comm").read_text().startswith("beam")]
    return beams[0] if beams else script_pid


def _read_wal_size(ctl: Path, name: str, env: dict[str, str]) -> int | None:
    done = subprocess.run(
        [str(ctl), "-n", name, "eval", "application:get_env(ra, wal_max_size_bytes)."],
        env=env, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    # {ok,67108864}, or `undefined` when the node runs Ra's own default
    text = done.stdout.strip()
    return int(text.removeprefix("{ok,").removesuffix("}")) if text.startswith("{ok,") else None


def _log_tail(base: Path, name: str) -> str:
    log = base / "log" / f"{name}.log"
    return "\n".join(log.read_text(errors="replace").splitlines()[-20:]) if log.exists() else "(no log)"


@contextmanager
def private_node(server: Path, deployed_config: Path = DEPLOYED_CONFIG) -> Iterator[Node]:
    """Start a node with `deployed_config`, yield it once it takes connections, stop it and remove its data."""
    base = Path(tempfile.mkdtemp(prefix="dp-bench-broker-"))
    name = f"dpbench{os.getpid()}@localhost"
    port, dist_port = _free_ports(2)
    (base / "rabbitmq.conf").write_text(node_config(deployed_config.read_text(), port))
    (base / "enabled_plugins").write_text("[].\n")
    (base / "rabbitmq-env.conf").write_text("")
    env = _node_environment(base, name, dist_port)
    process = subprocess.Popen(
        [str(server)], cwd=base, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        start_new_session=True,  # a Ctrl-C at the bench reaches the node through terminate() below, once
    )  # fmt: skip
    beam = process.pid
    try:
        deadline = time.monotonic() + START_TIMEOUT
        while not listening(port):
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"the bench's RabbitMQ node {name} did not start ({server}):\n{_log_tail(base, name)}"
                )
            time.sleep(0.2)  # the node takes several seconds to boot
        beam = _beam_pid(process.pid)
        wal = _read_wal_size(server.with_name("rabbitmqctl"), name, env)
        yield Node(name, f"amqp://guest:guest@127.0.0.1:{port}/", beam, wal)
    finally:
        _stop(process, beam)
        shutil.rmtree(base, ignore_errors=True)


def _stop(process: subprocess.Popen[bytes], beam: int) -> None:
    process.terminate()  # the start script passes SIGTERM on to the VM; RabbitMQ stops cleanly on it
    deadline = time.monotonic() + 60
    while (process.poll() is None or Path(f"/proc/{beam}").exists()) and time.monotonic() < deadline:
        time.sleep(0.1)  # a clean stop takes about a second
    if process.poll() is None or Path(f"/proc/{beam}").exists():
        with suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
    process.wait()

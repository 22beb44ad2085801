"""`make bench`: every bench, one after another, the broker ones against a RabbitMQ node of the run's own.

    .venv/bin/python -m bench [--rabbitmq-url URL] [--only bench_e2e ...]

Without --rabbitmq-url the broker benches run against a node this starts with the deployment's broker
settings (bench/broker_node.py) and stops at the end; where no RabbitMQ is installed to start one, they
use the broker at 127.0.0.1:5672 as it is configured, and say so. With --rabbitmq-url (the compose
stack's broker, say) they use that one; its CPU is then counted from every Erlang VM on the machine.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

from bench.broker_node import DEPLOYED_CONFIG, find_server, private_node

# In this order: the broker benches follow the PostgreSQL ones that leave the least behind.
BENCHES = (
    ("bench_steps", False),
    ("bench_collector", False),
    ("bench_collector_lag", True),
    ("bench_consume", True),
    ("bench_e2e", True),
    ("bench_reads", False),
    ("bench_log_download", False),
)
MACHINE_BROKER = "amqp://guest:guest@127.0.0.1:5672/"
_CONFIG = DEPLOYED_CONFIG.relative_to(DEPLOYED_CONFIG.parents[2])  # as the repository names it


@contextmanager
def _broker(url: str | None) -> Iterator[tuple[str, dict[str, str]]]:
    """The broker URL for the benches and the environment that tells them which VM is the broker."""
    if url:
        print(f"broker: {_without_password(url)} (given)")
        yield url, {}
        return
    server = find_server()
    if server is None:
        print(f"broker: {_without_password(MACHINE_BROKER)} as it is configured (no rabbitmq-server found")
        print(f"  to start one with {_CONFIG})")
        yield MACHINE_BROKER, {}
        return
    with private_node(server) as node:
        print(f"broker: the run's own node {node.name} ({server}), pid {node.pid}, settings of")
        print(f"  {_CONFIG}; the node reports")
        wal = node.wal_max_size_bytes
        print(f"  raft.wal_max_size_bytes = {wal if wal is not None else 'not set (RabbitMQ default)'}")
        yield node.url, {"DP_BENCH_RABBITMQ_PID": str(node.pid)}


def _without_password(url: str) -> str:
    scheme, _, rest = url.partition("://")
    credentials, at, host = rest.rpartition("@")
    return f"{scheme}://{credentials.partition(':')[0]}:***@{host}" if at else url


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rabbitmq-url", help="use this broker instead of starting one")
    parser.add_argument("--only", nargs="+", choices=[name for name, _ in BENCHES], metavar="BENCH")
    args = parser.parse_args(argv)
    chosen = [(name, broker) for name, broker in BENCHES if not args.only or name in args.only]
    needs_broker = any(broker for _, broker in chosen)
    with _broker(args.rabbitmq_url) if needs_broker else nullcontext(("", {})) as (url, env):
        for name, broker in chosen:
            print(f"\n== {name}", flush=True)
            command = [sys.executable, "-m", f"bench.{name}"] + (["--rabbitmq-url", url] if broker else [])
            done = subprocess.run(command, env={**os.environ, **env} if broker else None, check=False)
            if done.returncode:
                print(f"{name} failed (exit {done.returncode})", file=sys.stderr)
                return done.returncode
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""`make bench`'s runner: how it names the broker it uses and which Erlang VM it counts as that broker."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from bench.__main__ import _without_password
from bench.broker_node import DEPLOYED_CONFIG, find_server, node_config
from bench.process_stats import machine_busy_seconds, server_pids


def test_a_given_broker_is_printed_without_its_password() -> None:
    assert _without_password("amqp://dp:s3cret@broker:5672/dp") == "amqp://dp:***@broker:5672/dp"
    assert _without_password("amqp://broker:5672/") == "amqp://broker:5672/"


def test_the_node_runs_the_deployed_settings_on_loopback() -> None:
    config = node_config(DEPLOYED_CONFIG.read_text(), 5999)
    assert config.startswith(DEPLOYED_CONFIG.read_text().rstrip())
    assert config.splitlines()[-1] == "listeners.tcp.default = 127.0.0.1:5999"


def test_the_server_can_be_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("DP_BENCH_RABBITMQ_SERVER", str(tmp_path / "rabbitmq-server"))
    assert find_server() == tmp_path / "rabbitmq-server"


def test_a_pinned_broker_is_the_only_vm_counted(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DP_BENCH_RABBITMQ_PID", str(os.getpid()))
    assert server_pids()["rabbitmq"] == [os.getpid()]


def test_the_machine_is_busy_at_least_while_this_process_is() -> None:
    machine, own = machine_busy_seconds(), time.process_time()
    while time.process_time() - own < 0.2:
        pass
    assert machine_busy_seconds() - machine >= 0.15  # /proc/stat counts in ticks of 10 ms

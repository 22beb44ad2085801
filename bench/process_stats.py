"""CPU seconds and peak RSS of a process, from /proc (Linux), and the pids of the local servers."""

from __future__ import annotations

import os
from pathlib import Path

_TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | list[int]) -> float:
    """user + system CPU of the process (or of every process of a list; gone ones count 0)."""
    total = 0.0
    for one in pid if isinstance(pid, list) else [pid]:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime
    return total


def machine_busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (all cores; /proc/stat's user, nice,
    system, irq and softirq: the kernel's share too, which no process's own counters hold)."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq = (int(f) for f in fields[:7])
    return (user + nice + system + irq + softirq) / _TICKS


def peak_rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def server_pids() -> dict[str, list[int]]:
    """The RabbitMQ (beam.smp) and PostgreSQL processes running on this machine.

    With DP_BENCH_RABBITMQ_PID (set by `python -m bench` for the node it starts), RabbitMQ is that one VM.
    """
    pinned = os.environ.get("DP_BENCH_RABBITMQ_PID")
    found: dict[str, list[int]] = {"rabbitmq": [int(pinned)] if pinned else [], "postgresql": []}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            comm = (entry / "comm").read_text().strip()
        except OSError:
            continue
        if comm.startswith("beam") and not pinned:
            found["rabbitmq"].append(int(entry.name))
        elif comm.startswith("postgres") or comm.startswith("postmaster"):
            found["postgresql"].append(int(entry.name))
    return found

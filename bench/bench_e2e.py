"""End to end (issue 11, goal 2): no-op tasks through the four real services against the same broker's
raw 4-hop quorum chain and Celery's safe chain, measured in one run.

    .venv/bin/python -m bench.bench_e2e [--tasks 300] [--clients 16]

The services run as processes on a private schema, broker prefix and task root (removed at the end),
with DP_EXECUTOR_REGISTRY=bench.noop_executors:registry, so every step costs only the platform: its
events are published with confirms, scheduled, stored and projected as in production. Prints tasks/s,
light-load create -> completed p50 (a client waiting with `?wait=`, beside a bare chain of the hops a
task waits for in turn), each service's peak RSS and CPU per task (from /proc), and the ratios against
the baselines. The pipeline and the baselines alternate (--rounds, default 3), each rate and p50 the
best of its rounds, every round printed: the machine's speed moves within minutes. PostgreSQL and RabbitMQ CPU counts every process of
theirs on the machine (other users of the same servers included).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aio_pika
import aiohttp
import asyncpg

from bench.process_stats import cpu_seconds, peak_rss_mb, server_pids
from bench.raw_chain import run_chain_bench
from bench.timeline import STRETCHES, Timed, timeline
from shared.broker import SCHEDULER_EVENT_TYPES, SCHEDULER_KEY, STEPS_KEY, Topology, delete_topology
from shared.migrate import drop_schema, migrate
from shared.settings import CommonSettings
from tests.support.stack import Stack, free_port

BASE = "/api/v0/data_pipeline"
SERVICES = {"gateway": "gateway", "scheduler": "scheduler", "collector": "collector", "runner": "runner"}
GOALS = {"raw": 0.10, "celery": 0.5, "p50_ms": 60.0, "rss_mb": 150.0}
# The hops a light-load task waits for one after another: its create to the scheduler, each of its four
# steps ordered to the runner and reported back, and its task_finished to the collector.
CRITICAL_HOPS = 10


def _body(i: int) -> dict[str, Any]:
    return {
        "task_type": "complete_workflow",
        "parameters": {
            "db_connection": "postgresql://bench@127.0.0.1:5432/business",
            "table_list": ["public.orders"],
            "business_context": f"bench {i}",
        },
    }


async def _create(session: aiohttp.ClientSession, url: str, i: int) -> str:
    async with session.post(f"{url}{BASE}/tasks", json=_body(i)) as resp:
        data = await resp.json()
        assert resp.status in (201, 202), data
        return str(data["data"]["task_id"])


async def _light_load(
    session: aiohttp.ClientSession, url: str, pg: asyncpg.Connection, n: int, timed: list[Timed] | None = None
) -> list[float]:
    """One task at a time: POST /tasks until GET /tasks/{id} says completed (each added to `timed`).

    The client waits as the API offers (`?wait=`, answered at the commit that settles the task); a client
    polling every 2 ms instead took a core's worth of HTTP reads on this 2-core machine from the services
    it was timing (docs/scaling.md)."""
    latencies = []
    for i in range(n):
        began, sent = time.perf_counter(), time.time()
        task_id = await _create(session, url, i)
        while True:
            async with session.get(f"{url}{BASE}/tasks/{task_id}", params={"wait": "30"}) as resp:
                if resp.status == 200 and (await resp.json())["data"]["status"] == "completed":
                    break
        latencies.append(time.perf_counter() - began)
        if timed is not None:
            timed.append(Timed(task_id, sent, time.time()))
    return latencies


async def _throughput(
    session: aiohttp.ClientSession, url: str, pg: asyncpg.Connection, tasks: int, clients: int
) -> tuple[float, list[str]]:
    ids: list[str] = []

    async def client(c: int) -> None:
        for i in range(tasks // clients):
            ids.append(await _create(session, url, 1000 + c * 1000 + i))

    began = time.perf_counter()
    await asyncio.gather(*(client(c) for c in range(clients)))
    # Only the tasks not seen completed yet: the bench's own reads are counted in PostgreSQL's CPU.
    query = "SELECT id FROM data_pipeline_tasks WHERE status = 'completed' AND id = ANY($1)"
    waiting = set(ids)
    while True:
        waiting -= {r["id"] for r in await pg.fetch(query, list(waiting))}
        if not waiting:
            break
        await asyncio.sleep(0.02)
    return time.perf_counter() - began, ids


def _celery(url: str, prefix: str, chains: int, clients: int, light: int) -> dict[str, float] | None:
    try:
        import celery  # noqa: F401
    except ImportError:
        print("  celery is not installed (make install): its baseline is skipped")
        return None
    done = Path(tempfile.mkdtemp()) / "done"
    done.touch()
    env = {
        **os.environ,
        "DP_BENCH_CELERY_BROKER": url,
        "DP_BENCH_CELERY_QUEUE": f"{prefix}.celery",
        "DP_BENCH_CELERY_DONE": str(done),
    }
    worker = subprocess.Popen(
        [
            *(
                sys.executable,
                "-m",
                "celery",
                "-A",
                "bench.celery_chain",
                "worker",
                "-c",
                "2",
                "-l",
                "WARNING",
            ),
            *("--without-mingle", "--without-gossip", "--without-heartbeat"),
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        code = (
            "import sys, time; from bench.celery_chain import send_chain, DONE\n"
            "import concurrent.futures as cf, os\n"
            "def wait(n, limit=60):\n"
            "    end = time.time() + limit\n"
            "    while os.path.getsize(DONE) < n:\n"
            "        assert time.time() < end, 'celery chains did not finish'\n"
            "        time.sleep(0.0005)\n"
            "send_chain(); wait(1, 60)\n"  # the worker is up
            f"lat = []\n"
            f"for i in range({light}):\n"
            "    t = time.perf_counter(); send_chain(); wait(2 + i); lat.append(time.perf_counter() - t)\n"
            f"base = 1 + {light}; t = time.perf_counter()\n"
            f"with cf.ThreadPoolExecutor({clients}) as ex:\n"
            f"    list(ex.map(lambda _: send_chain(), range({chains})))\n"
            f"wait(base + {chains}, 120); el = time.perf_counter() - t\n"
            "lat.sort(); print(lat[len(lat) // 2] * 1000, " + f"{chains} / el)\n"
        )
        out = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            cwd=Path(__file__).resolve().parents[1],
        )
        if out.returncode != 0:
            print(f"  celery baseline failed: {out.stderr.strip().splitlines()[-1:]}")
            return None
        p50, rate = (float(x) for x in out.stdout.split())
        return {"per_second": rate, "p50_ms": p50}
    finally:
        worker.terminate()
        try:
            worker.wait(20)
        except subprocess.TimeoutExpired:
            worker.kill()
        shutil.rmtree(done.parent, ignore_errors=True)


def _celery_delayed_delivery() -> tuple[list[str], list[str]]:
    """Celery's native delayed delivery, as its worker declares it for a quorum queue: 28 queues and 29
    exchanges of fixed names, shared by every Celery app on the broker (none without Celery)."""
    try:
        from kombu.transport.native_delayed_delivery import (
            CELERY_DELAYED_DELIVERY_EXCHANGE,
            MAX_LEVEL,
            level_name,
        )
    except ImportError:
        return [], []
    levels = [level_name(level) for level in range(MAX_LEVEL + 1)]
    return levels, [*levels, CELERY_DELAYED_DELIVERY_EXCHANGE]


async def _celery_delayed_delivery_exists(url: str) -> bool:
    """Whether the broker holds Celery's delayed delivery before the bench's worker would add it."""
    _, exchanges = _celery_delayed_delivery()
    if not exchanges:
        return False
    connection = await aio_pika.connect(url)
    async with connection:
        try:
            await (await connection.channel()).get_exchange(exchanges[-1], ensure=True)
        except aio_pika.exceptions.ChannelNotFoundEntity:
            return False
    return True


async def _purge_celery(url: str, prefix: str, *, delayed_delivery: bool) -> None:
    """Delete what the Celery baseline declared: its queue and kombu's exchange of the same name, and
    Celery's delayed delivery when the bench's worker created it (one that was there before stays)."""
    queues, exchanges = _celery_delayed_delivery() if delayed_delivery else ([], [])
    connection = await aio_pika.connect(url)
    async with connection:
        channel = await connection.channel()
        for name in (f"{prefix}.celery", "celery", *queues):
            await channel.queue_delete(name, if_unused=False, if_empty=False)
        for name in (f"{prefix}.celery", "celery", *exchanges):
            await channel.exchange_delete(name)


async def main(args: argparse.Namespace) -> None:
    run = uuid.uuid4().hex[:8]
    root = Path(tempfile.mkdtemp(prefix="dpbench-"))
    env = {
        "DP_DATABASE_URL": args.database_url,
        "DP_RABBITMQ_URL": args.rabbitmq_url,
        "DP_DB_SCHEMA": f"dpbench_{run}",
        "DP_BROKER_PREFIX": f"dpbench.{run}",
        "DP_DATA_ROOT": str(root / "tasks"),
        "DP_ENCRYPTION_KEY": f"bench-key-{run}-0123456789",
        "DP_HTTP_PORT": str(free_port()),
        "DP_EXECUTOR_REGISTRY": "bench.noop_executors:registry",
        "DP_MAX_CONCURRENT_TASKS": "32",
        "DP_RUNNER_CONCURRENCY": "32",
        "DP_LOG_LEVEL": "WARNING",
        "DP_LOG_FORMAT": "json",
        **dict(e.split("=", 1) for e in args.env),
    }
    settings = CommonSettings(**{k[3:].lower(): v for k, v in env.items() if k != "DP_HTTP_PORT"})
    await migrate(settings)
    celery_found = await _celery_delayed_delivery_exists(args.rabbitmq_url)
    stack = Stack(env, root)
    url = f"http://127.0.0.1:{env['DP_HTTP_PORT']}"
    results: dict[str, Any] = {}
    try:
        for name in SERVICES:
            stack.start(name)
        pg = await asyncpg.connect(args.database_url, server_settings={"search_path": settings.db_schema})
        async with aiohttp.ClientSession() as session:
            await _ready(session, url, stack)
            await _light_load(session, url, pg, 3)  # warm-up
            servers = server_pids()
            pids = {name: stack.procs[name].pid for name in SERVICES} | servers
            cpu = dict.fromkeys(pids, 0.0)
            rounds: list[dict[str, Any]] = []
            results["tasks"] = results["events"] = 0
            light = max(args.light // args.rounds, 1)
            # The pipeline and its baselines alternate on the same broker, each rate the best of its
            # rounds: this machine's speed moves by a third within minutes (other tenants), and a
            # baseline measured only after the pipeline compared two different machines. The services
            # stay up, idle, while a baseline runs.
            timed: list[Timed] = []
            results["autovacuum"] = await pg.fetchval("SHOW autovacuum") == "on"
            for _ in range(args.rounds):
                quiet = await _light_load(session, url, pg, light, timed)
                before = {name: cpu_seconds(pid) for name, pid in pids.items()}
                warm = await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks")
                events_before = await pg.fetchval("SELECT count(*) FROM data_pipeline_events")
                elapsed, _ = await _throughput(session, url, pg, args.tasks, args.clients)
                after = {name: cpu_seconds(pid) for name, pid in pids.items()}
                tasks = await pg.fetchval("SELECT count(*) FROM data_pipeline_tasks") - warm
                events = await pg.fetchval("SELECT count(*) FROM data_pipeline_events") - events_before
                for name in pids:
                    cpu[name] += after[name] - before[name]
                if not results["autovacuum"]:
                    await _analyze(pg)
                results["tasks"] += tasks
                results["events"] += events
                rounds.append(
                    {
                        "pipeline": {
                            "per_second": tasks / elapsed,
                            "p50_ms": statistics.median(quiet) * 1000,
                        },
                        "raw": await run_chain_bench(
                            args.rabbitmq_url, env["DP_BROKER_PREFIX"], args.chains, args.clients, light
                        ),
                        "critical": await run_chain_bench(
                            args.rabbitmq_url,
                            env["DP_BROKER_PREFIX"],
                            args.clients,
                            args.clients,
                            light,
                            CRITICAL_HOPS,
                        ),
                        "celery": await asyncio.to_thread(
                            _celery,
                            args.rabbitmq_url,
                            env["DP_BROKER_PREFIX"],
                            args.chains,
                            args.clients,
                            light,
                        ),
                    }
                )
            rss = {name: peak_rss_mb(stack.procs[name].pid) for name in SERVICES}
            results["timeline"] = await timeline(pg, timed)
            results["deliveries"] = await _deliveries_per_task(
                session, url, pg, args.rabbitmq_url, Topology(env["DP_BROKER_PREFIX"]), args.clients
            )
            results["store_bytes"] = await pg.fetchval(
                "SELECT pg_total_relation_size('data_pipeline_events') / greatest(count(*), 1)"
                " FROM data_pipeline_events"
            )
        await pg.close()
        results["rounds"] = rounds
        results["pipeline"] = _best([r["pipeline"] for r in rounds])
        results["raw"] = _best([r["raw"] for r in rounds])
        results["critical"] = _best([r["critical"] for r in rounds])
        results["celery"] = (
            _best([r["celery"] for r in rounds if r["celery"]]) if rounds[0]["celery"] else None
        )
        results["cpu"], results["rss"] = cpu, rss
    finally:
        stack.stop_all()
        await drop_schema(settings)
        connection = await aio_pika.connect(args.rabbitmq_url)
        async with connection:
            await delete_topology(await connection.channel(), Topology(env["DP_BROKER_PREFIX"]))
    shutil.rmtree(root, ignore_errors=True)  # kept when the run failed: the services' logs are in it
    hops = round(results["deliveries"])
    results["pattern"] = await run_chain_bench(
        args.rabbitmq_url,
        env["DP_BROKER_PREFIX"],
        max(args.chains * 4 // hops, args.clients),
        args.clients,
        3,
        hops,
    )
    await _purge_celery(args.rabbitmq_url, env["DP_BROKER_PREFIX"], delayed_delivery=not celery_found)
    _report(results, args)


async def _analyze(pg: asyncpg.Connection) -> None:
    """What autovacuum does within its first minute on PostgreSQL's defaults: without statistics, the
    services' cached generic plans go on scanning tables that have grown (docs/scaling.md)."""
    tables = await pg.fetch("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
    for row in tables:
        await pg.execute(f'ANALYZE "{row["tablename"]}"')


def _best(measured: list[dict[str, float]]) -> dict[str, float]:
    """The best round's rate and the best round's p50 (each round's are printed)."""
    return {
        "per_second": max(m["per_second"] for m in measured),
        "p50_ms": min(m["p50_ms"] for m in measured),
    }


async def _deliveries_per_task(
    session: aiohttp.ClientSession,
    url: str,
    pg: asyncpg.Connection,
    rabbitmq_url: str,
    topology: Topology,
    clients: int,
) -> float:
    """Quorum-queue deliveries per task, counted at the broker in a short run after the measured one (so
    that counting costs that run nothing): a queue of the bench's own sees every message of the two
    exchanges. An event message reaches a collector partition, the scheduler's queue when its routing
    key names a type the scheduler binds (a batch is routed by its last event), and the steps queue when
    it is a step order (its CC header); a command other than the scheduler's tick reaches one queue."""
    connection = await aio_pika.connect(rabbitmq_url)
    async with connection:
        channel = await connection.channel()
        tap = await channel.declare_queue(exclusive=True, auto_delete=True)
        await tap.bind(topology.events_exchange, routing_key="task.#")
        for key in (SCHEDULER_KEY, STEPS_KEY):
            await tap.bind(topology.commands_exchange, routing_key=key)
        deliveries = 0

        async def count(message: aio_pika.abc.AbstractIncomingMessage) -> None:
            nonlocal deliveries
            if message.exchange == topology.events_exchange:
                deliveries += 1 + ((message.routing_key or "").split(".")[2] in SCHEDULER_EVENT_TYPES)
                deliveries += "CC" in (message.headers or {})
            elif message.type != "tick":
                deliveries += 1

        await tap.consume(count, no_ack=True)
        _, ids = await _throughput(session, url, pg, clients * 4, clients)
        await asyncio.sleep(1.0)  # the last messages of the run reach the tap; nothing else is running
    return deliveries / len(ids)


async def _ready(session: aiohttp.ClientSession, url: str, stack: Stack) -> None:
    end = time.monotonic() + 60
    while time.monotonic() < end:
        try:
            async with session.get(f"{url}/readyz") as resp:
                if resp.status == 200:
                    return
        except aiohttp.ClientError:
            pass
        await asyncio.sleep(0.2)
    raise SystemExit("the bench stack did not get ready:\n" + stack.logs("gateway")[-2000:])


def _report(r: dict[str, Any], args: argparse.Namespace) -> None:
    pipeline, raw, celery = r["pipeline"], r["raw"], r["celery"]
    tasks, events = r["tasks"], r["events"]
    print(
        f"end to end: {tasks} no-op tasks (4 steps, {events / tasks:.1f} events each), {args.clients} clients,"
    )
    print("  DP_MAX_CONCURRENT_TASKS=32, one step runner with DP_RUNNER_CONCURRENCY=32")
    if not r["autovacuum"]:
        print("  this server runs without autovacuum: the bench analyzes its schema after each round, as")
        print("  autovacuum would on PostgreSQL's defaults")
    print(
        f"  pipeline:             {pipeline['per_second']:8.1f} tasks/s   create -> completed p50 "
        f"{pipeline['p50_ms']:6.1f} ms (one task at a time)"
    )
    print(f"  raw 4-hop quorum chain:{raw['per_second']:7.1f} chains/s  p50 {raw['p50_ms']:6.1f} ms")
    for i, round_ in enumerate(r["rounds"], 1):
        rate = round_["pipeline"]["per_second"]
        raw_rate, p50 = round_["raw"]["per_second"], round_["pipeline"]["p50_ms"]
        bare = round_["critical"]["p50_ms"]
        line = f"    round {i}: p50 {p50:5.1f} ms (bare {CRITICAL_HOPS} hops {bare:4.1f} ms), pipeline {rate:5.1f}/s,"
        line += f" raw chain {raw_rate:6.1f}/s"
        line += f" ({rate / raw_rate:.3f}x)"
        if round_["celery"]:
            celery_rate = round_["celery"]["per_second"]
            line += f", Celery {celery_rate:5.1f}/s ({rate / celery_rate:.3f}x)"
        print(line)
    if celery:
        print(f"  Celery 4-task chain:  {celery['per_second']:8.1f} chains/s  p50 {celery['p50_ms']:6.1f} ms")
    ratio_raw = pipeline["per_second"] / raw["per_second"]
    print(
        f"  ratio to the raw chain: {ratio_raw:5.3f}x (goal >= {GOALS['raw']}x) "
        f"{'ok' if ratio_raw >= GOALS['raw'] else 'MISSED'}"
    )
    pattern, hops = r["pattern"], round(r["deliveries"])
    print(
        f"  the pipeline's own message pattern, bare: a raw chain of {hops} hops ({r['deliveries']:.1f} quorum"
        f" deliveries per task, nothing else): {pattern['per_second']:.1f} chains/s = "
        f"{pattern['per_second'] / raw['per_second']:.3f}x the 4-hop chain"
        + (f", {pattern['per_second'] / celery['per_second']:.3f}x Celery" if celery else "")
    )
    print(
        f"  pipeline / its bare message pattern: {pipeline['per_second'] / pattern['per_second']:.2f}"
        " (what decoding, deciding, storing and HTTP leave of the messaging's own speed)"
    )
    if celery:
        ratio_celery = pipeline["per_second"] / celery["per_second"]
        print(
            f"  ratio to Celery:        {ratio_celery:5.3f}x (goal >= {GOALS['celery']}x) "
            f"{'ok' if ratio_celery >= GOALS['celery'] else 'MISSED'}"
        )
    print(
        f"  p50 {pipeline['p50_ms']:.1f} ms (goal <= {GOALS['p50_ms']:.0f} ms) "
        f"{'ok' if pipeline['p50_ms'] <= GOALS['p50_ms'] else 'MISSED'}"
    )
    floor = r["critical"]["p50_ms"]
    print(
        f"  a bare chain of the {CRITICAL_HOPS} hops a light-load task waits for in turn (create, 4 x order and"
        f" report, task_finished to the collector): p50 {floor:.1f} ms; the pipeline's p50 is"
        f" {pipeline['p50_ms'] / floor:.2f}x it"
    )
    print("  where a light-load task's time goes (medians over its tasks, from the events' own times, ms):")
    for name, label in STRETCHES:
        value = r["timeline"][name]
        print(f"    {label:68s} {value:6.1f}" if value is not None else f"    {label:68s}      -")
    print(f"  event store: {r['store_bytes']} bytes per stored event (table and indexes)")
    print("  CPU per task and per event (ms), peak RSS (MB, goal < 150):")
    for name, seconds in r["cpu"].items():
        rss = r["rss"].get(name)
        shown = f"{rss:6.1f}" if rss is not None else "     -"
        flag = "" if rss is None or rss < GOALS["rss_mb"] else "  OVER"
        print(
            f"    {name:10s} {seconds * 1000 / tasks:7.2f} /task {seconds * 1000 / events:6.3f} /event  "
            f"RSS {shown}{flag}"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--rabbitmq-url", default="amqp://guest:guest@127.0.0.1:5672/")
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--chains", type=int, default=1000)
    parser.add_argument("--light", type=int, default=30, help="tasks/chains timed one at a time")
    parser.add_argument("--rounds", type=int, default=3, help="pipeline and baselines alternate this often")
    parser.add_argument(
        "--env", action="append", default=[], help="NAME=VALUE for the services (experiments)"
    )
    asyncio.run(main(parser.parse_args()))

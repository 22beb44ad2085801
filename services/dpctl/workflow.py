"""`dpctl workflow run`: the steps in-process, without gateway or scheduler (the seed's manual runs).

With tracking (the default) the run is recorded as a `manual_...` task through the same events as any
task, so it shows up in the API and the UI; the scheduler leaves such tasks alone. The run is driven
by the scheduler's own domain, in memory: every event is folded with `evolve`, and `decide` says what
comes next (create, start, schedule or skip each step, finish); a scheduled step runs here, in-process. With
`--no-db-tracking` it needs neither broker nor pipeline database: log lines go to the terminal and to
the task directory's data_pipeline.log.

Like the seed, a tracked run degrades instead of failing: when the broker or the pipeline database
cannot be reached at the start, or the broker stops confirming during the run, dpctl warns once on
stderr and carries on untracked (files and data_pipeline.log are still written). `--task-id` takes the
seed's forms: `manual_YYYYMMDD_HHMMSS[_suffix]`, and `task_YYYYMMDD_HHMMSS[_suffix]`, which names a task
the scheduler would own, so such a run is never tracked (and never writes into an existing task's
directory: re-run those with `dpctl task run-step`).

Exit codes: 0 completed; 3 SQL validation below its threshold (or another step completed only in
part); 1 a step failed; 2 bad arguments.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aio_pika
import asyncpg
from pydantic import BaseModel, ValidationError

from services.scheduler.domain import admit, decide, scheduler_owns, start
from services.scheduler.state import Policy, TaskState, evolve
from services.step_runner.bootstrap import load_registry, secret_box
from services.step_runner.context import RunnerContext
from services.step_runner.execution import execute_step
from shared.broker import Publisher, Topology, connect, declare_topology, open_channel
from shared.commands import CreateTask
from shared.events import FailureCode, StepScheduled, TaskFinished
from shared.final_report import final_report, report_lines
from shared.ids import TASK_ID_RE, new_task_id
from shared.llm_usage import Prices, UsageMeter
from shared.messages import EventEnvelope
from shared.parameters import TaskParameters
from shared.secrets import SecretBox, mask_secrets, mask_url, strip_password, url_password
from shared.settings import RunnerSettings
from shared.settings_loading import settings_error_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
Emit = Callable[[BaseModel], Awaitable[None]]
Sink = Callable[[EventEnvelope], Awaitable[None]]
RunStep = Callable[[StepScheduled, Emit], Awaitable[None]]
# A manual run: one task, steps awaited in-process (so never silent nor undispatched), no retries.
MANUAL_POLICY = Policy(
    max_concurrent_tasks=1,
    task_timeout=timedelta(days=365),
    heartbeat_timeout=timedelta(days=365),
    dispatch_timeout=timedelta(days=365),
    retry_max_attempts=1,
)
_MAX_DECISIONS = 64
# How long a tracked run waits for the pipeline database or the broker before it goes on untracked.
TRACKING_CONNECT_TIMEOUT = 5.0
TRACKING_PUBLISH_TIMEOUT = 10.0


def add_parser(commands: argparse._SubParsersAction) -> None:
    workflow = commands.add_parser("workflow", help="run the workflow in-process (manual runs)")
    sub = workflow.add_subparsers(dest="workflow_command", required=True)
    run = sub.add_parser("run", help="run the steps here, without the gateway or the scheduler")
    run.add_argument("--db-connection", required=True, help="PostgreSQL URL of the business database")
    run.add_argument("--table-list", required=True, type=Path, help="file with one table name per line")
    run.add_argument("--business-context", required=True, help="what the business is about")
    run.add_argument("--db-name", help="name used in output file names (default: from the URL)")
    run.add_argument("--output-dir", type=Path, help="where task directories go (default DP_DATA_ROOT)")
    run.add_argument(
        "--task-id",
        help="manual_YYYYMMDD_HHMMSS[_suffix] (default: generated), or the seed's task_YYYYMMDD_HHMMSS"
        "[_suffix] (never tracked: such ids belong to the scheduler)",
    )
    run.add_argument("--no-db-tracking", action="store_true", help="no broker, no pipeline database")
    run.add_argument("--execution-mode", choices=["complete", "single"], default="complete")
    run.add_argument("--single-step", type=int, choices=[1, 2, 3, 4])
    run.add_argument("--skip-validation", action="store_true")
    run.add_argument("--disable-llm-repair", action="store_true")
    run.add_argument("--no-modify-file", action="store_true")
    run.add_argument("--skip-training-load", action="store_true")
    run.set_defaults(func=run_command, needs_gateway=False)


def run_command(_: object, args: argparse.Namespace) -> int:
    if args.execution_mode == "single" and args.single_step is None:
        print("dpctl: --single-step is required with --execution-mode single", file=sys.stderr)
        return EXIT_USAGE
    if args.execution_mode == "complete" and args.single_step is not None:
        print("dpctl: --single-step only goes with --execution-mode single", file=sys.stderr)
        return EXIT_USAGE
    if args.task_id and not TASK_ID_RE.fullmatch(args.task_id):
        print(
            "dpctl: --task-id must look like manual_YYYYMMDD_HHMMSS[_suffix] or task_YYYYMMDD_HHMMSS[_suffix]"
            " (suffix: up to 10 lower-case letters and digits)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        settings = RunnerSettings()
    except ValidationError as exc:
        print(settings_error_text(RunnerSettings, "dpctl", exc), file=sys.stderr)  # without the values
        return EXIT_USAGE
    try:
        lines = args.table_list.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        print(f"dpctl: cannot read the table list: {exc.strerror} ({args.table_list})", file=sys.stderr)
        return EXIT_USAGE
    # Same format as `task create --table-list`: one name per line, blank lines and `#` comments skipped.
    tables = [name for line in lines if (name := line.split("#", 1)[0].strip())]
    if not tables:
        print(f"dpctl: the table list is empty ({args.table_list})", file=sys.stderr)
        return EXIT_USAGE
    data_root = (args.output_dir or settings.data_root).resolve()
    if args.task_id and scheduler_owns(args.task_id):  # the seed's task_... form
        if (data_root / args.task_id).exists():
            print(
                f"dpctl: {data_root / args.task_id} exists: {args.task_id} is a task of the API; re-run its"
                " steps with `dpctl task run-step`, or choose another --task-id or --output-dir",
                file=sys.stderr,
            )
            return EXIT_USAGE
        if not args.no_db_tracking:
            _warn(
                f"{args.task_id} is not tracked: task_... ids belong to tasks the scheduler runs (manual_... ids"
                " are tracked); the files and data_pipeline.log are written as usual"
            )
            args.no_db_tracking = True
    if not args.no_db_tracking and data_root != settings.data_root.resolve():
        print(
            "dpctl: with tracking, task files live under DP_DATA_ROOT so the API can serve them;"
            " set DP_DATA_ROOT, or add --no-db-tracking to write elsewhere",
            file=sys.stderr,
        )
        return EXIT_USAGE
    try:
        return asyncio.run(_run(args, settings, tables, data_root))
    except KeyboardInterrupt:
        return 130


def _parameters(args: argparse.Namespace, tables: list[str], box: SecretBox) -> TaskParameters:
    url = args.db_connection
    return TaskParameters(
        db_connection=mask_url(url),
        db_connection_secret=box.encrypt(url) if url_password(url) else None,
        table_list=tables,
        business_context=args.business_context,
        task_name=f"manual run of {len(tables)} tables",
        db_name=args.db_name or strip_password(url).rsplit("/", 1)[-1].split("?")[0] or None,
        execution_mode=args.execution_mode,
        single_step=args.single_step,
        enable_sql_validation=not args.skip_validation,
        enable_llm_repair=not args.disable_llm_repair,
        modify_original_file=not args.no_modify_file,
        enable_training_data_load=not args.skip_training_load,
    )


def _warn(message: str) -> None:
    print(f"dpctl: warning: {message}", file=sys.stderr, flush=True)


def _reason(exc: BaseException) -> str:
    """A failure in a few words, without any URL's password."""
    text = str(exc).strip()
    return mask_secrets(f"{type(exc).__name__}: {text}" if text else type(exc).__name__)[:300]


async def pipeline_db_problem(
    settings: RunnerSettings, timeout: float = TRACKING_CONNECT_TIMEOUT
) -> str | None:
    """Why the pipeline database cannot record this run (unreachable, or no event store), or None."""
    try:
        conn = await asyncpg.connect(settings.database_url.get_secret_value(), timeout=timeout)
    except Exception as exc:  # like the seed: any failure to track means untracked
        return f"the pipeline database is unreachable ({_reason(exc)})"
    try:
        table = await conn.fetchval(
            "SELECT to_regclass($1)::text", f"{settings.db_schema}.data_pipeline_events", timeout=timeout
        )
    except Exception as exc:  # like the seed: any failure to track means untracked
        return f"the pipeline database does not answer ({_reason(exc)})"
    finally:
        with contextlib.suppress(Exception):
            await conn.close(timeout=timeout)
    if table is None:
        return f"the pipeline database has no event store in schema {settings.db_schema} (migrations not run)"
    return None


@asynccontextmanager
async def tracked_or_local(settings: RunnerSettings, task_dir: Path) -> AsyncIterator[Sink]:
    """The broker when the run can be tracked; otherwise, or from the moment the broker stops confirming,
    the task directory only. Says so once on stderr, like the seed's manual runs."""
    problem = await pipeline_db_problem(settings)
    connection: aio_pika.abc.AbstractRobustConnection | None = None
    tracked: Publisher | None = None
    if problem is None:
        try:
            connection = await asyncio.wait_for(
                connect(settings.rabbitmq_url.get_secret_value(), f"dp:dpctl:{settings.broker_prefix}"),
                TRACKING_CONNECT_TIMEOUT,
            )
            channel = await open_channel(connection, prefetch=1)
            tracked = Publisher(
                await declare_topology(
                    channel, Topology(settings.broker_prefix, settings.collector_partitions)
                ),
                "dpctl",
            )
        except Exception as exc:  # like the seed: any failure to track means untracked
            problem = f"the broker is unreachable ({_reason(exc)})"
    if tracked is None:
        _warn(f"this run is not tracked: {problem}; the files and data_pipeline.log are written as usual")
    async with _local_sink(task_dir) as local:

        async def publish(envelope: EventEnvelope) -> None:
            nonlocal tracked
            if tracked is not None:
                try:
                    await asyncio.wait_for(tracked.publish_event(envelope), TRACKING_PUBLISH_TIMEOUT)
                    return
                except Exception as exc:  # like the seed: any failure to track means untracked
                    tracked = None
                    _warn(
                        f"tracking stopped: the broker did not confirm an event ({_reason(exc)}); the run goes"
                        f" on untracked (its record keeps the last state it reached), writing to {task_dir}"
                    )
            await local(envelope)

        try:
            yield publish
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(connection.close(), TRACKING_CONNECT_TIMEOUT)


@asynccontextmanager
async def _local_sink(task_dir: Path) -> AsyncIterator[Sink]:
    """Log lines to the task directory's data_pipeline.log (opened at the first line)."""
    log_file = None

    async def write(envelope: EventEnvelope) -> None:
        nonlocal log_file
        payload: Any = envelope.payload
        if payload.type == "log_emitted":
            if log_file is None:
                log_file = (task_dir / "data_pipeline.log").open("a", encoding="utf-8")
            ts = datetime.now(UTC).isoformat(timespec="milliseconds")
            step = payload.step.value if payload.step else "task"
            log_file.write(f"{ts} {payload.level:<8} [{step}] {payload.message}\n")
            log_file.flush()

    try:
        yield write
    finally:
        if log_file is not None:
            log_file.close()


def _print_event(payload: BaseModel) -> None:
    data: Any = payload
    match data.type:
        case "log_emitted":
            print(f"  {data.level:<8} {data.message}")
        case "step_started":
            print(f"==> {data.step.value}")
        case "step_succeeded":
            print(f"<== {data.step.value} completed")
        case "step_failed":
            print(f"<== {data.step.value} FAILED: {data.error}")
        case "step_skipped":
            print(f"--- {data.step.value} skipped ({data.reason})")


async def _run(args: argparse.Namespace, settings: RunnerSettings, tables: list[str], data_root: Path) -> int:
    task_id = args.task_id or new_task_id(datetime.now(UTC), prefix="manual")
    task_dir = data_root / task_id
    task_dir.mkdir(parents=True, exist_ok=True)
    box = secret_box(settings, data_root)  # an untracked run's key stays beside its files, not in the cwd
    params = _parameters(args, tables, box)
    registry = load_registry(settings)
    connections = {k: v.get_secret_value() for k, v in settings.connections.items()}
    print(f"manual run {task_id} -> {task_dir}")

    prices = Prices(settings.llm_price_per_1k_prompt_tokens, settings.llm_price_per_1k_completion_tokens)
    spent = 0  # LLM tokens of the run so far, as the scheduler counts them for max_llm_tokens

    async def run_step(scheduled: StepScheduled, emit: Emit) -> None:
        nonlocal spent
        ctx = RunnerContext(
            emit=emit,
            task_id=task_id,
            step=scheduled.step,
            execution_id=scheduled.execution_id,
            attempt=scheduled.attempt,
            task_dir=task_dir,
            parameters=params,
            secrets=box,
            connections=connections,
        )
        terminal = await execute_step(
            registry[scheduled.step],
            ctx,
            emit,
            runner_id="dpctl",
            heartbeat_interval=60,
            cancelled=lambda: False,
            meter=UsageMeter(params.max_llm_tokens, spent, prices),
        )
        spent += sum(u.total_tokens for u in getattr(terminal, "llm_usage", []))

    sink = _local_sink(task_dir) if args.no_db_tracking else tracked_or_local(settings, task_dir)
    events: list[EventEnvelope] = []  # the run's events, for the final report printed at the end
    async with sink as publish:

        async def keep(envelope: EventEnvelope) -> None:
            events.append(envelope)
            await publish(envelope)

        state, finished = await drive(
            task_id, CreateTask(parameters=params, created_by="manual"), str(data_root), keep, run_step
        )
    for line in ["final report:", *report_lines(final_report(events))]:
        print(line)
    error = finished.error_message if finished else "the run did not finish"
    print(f"{task_id}: {state.status}" + (f" ({error})" if error else ""))  # the verdict stays the last line
    return exit_code(state)


async def drive(
    task_id: str,
    create: CreateTask,
    output_root: str,
    publish: Sink,
    run_step: RunStep,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> tuple[TaskState, TaskFinished | None]:
    """Run one task to its end with the scheduler's domain: an in-memory loop of decide and evolve.

    Every event (the domain's decisions and the step's own reports) is folded into the state, then
    handed to `publish`; a StepScheduled is carried out by `run_step`, awaited here.
    """
    policy = replace(MANUAL_POLICY, output_root=output_root)
    state: TaskState | None = None
    finished: TaskFinished | None = None

    async def emit(payload: BaseModel) -> None:
        nonlocal state, finished
        envelope = EventEnvelope(task_id=task_id, producer="dpctl", payload=payload, occurred_at=clock())  # type: ignore[arg-type]
        state = evolve(state, envelope)
        _print_event(payload)
        if isinstance(payload, TaskFinished):
            finished = payload
            with contextlib.suppress(Exception):  # the verdict is printed even if it cannot be recorded
                await publish(envelope)
            return
        await publish(envelope)

    for decision in decide(None, clock(), policy, create, task_id=task_id):
        await emit(decision.event)
    assert state is not None
    if admit([state], policy.max_concurrent_tasks):
        await emit(start().event)
    for _ in range(_MAX_DECISIONS):
        decisions = decide(state, clock(), policy)
        if not decisions:
            break
        event = decisions[0].event
        await emit(event)
        if isinstance(event, StepScheduled):
            await run_step(event, emit)
    return state, finished


def exit_code(state: TaskState) -> int:
    """0 completed; 3 validation below its threshold or a step completed in part; 1 anything else."""
    if state.status == "completed":
        return EXIT_OK
    failed = [state.step(s) for s in state.plan if state.step(s).status == "failed"]
    if failed:
        return EXIT_PARTIAL if failed[0].code == FailureCode.VALIDATION_BELOW_THRESHOLD else EXIT_FAILED
    if state.status == "partial_completed" and any(state.step(s).partial for s in state.plan):
        return EXIT_PARTIAL
    return EXIT_FAILED

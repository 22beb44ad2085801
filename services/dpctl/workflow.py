"""`dpctl workflow run`: the steps in-process, without gateway or scheduler (the seed's manual runs).

With tracking (the default) the run is recorded as a `manual_...` task through the same events as any
task, so it shows up in the API and the UI; the scheduler leaves such tasks alone. With
`--no-db-tracking` it needs neither broker nor pipeline database: log lines go to the terminal and to
the task directory's data_pipeline.log.

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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from services.scheduler.domain import step_disabled_reason
from services.step_runner.bootstrap import load_registry, secret_box
from services.step_runner.context import RunnerContext
from services.step_runner.execution import execute_step
from services.step_runner.executors.base import VALIDATION_BELOW_THRESHOLD
from shared.broker import Publisher, Topology, connect, declare_topology, open_channel
from shared.events import StepScheduled, StepSkipped, StepSucceeded, TaskCreated, TaskFinished, TaskStarted
from shared.ids import TASK_ID_RE, execution_id, new_task_id
from shared.parameters import TaskParameters
from shared.secrets import SecretBox, mask_url, strip_password, url_password
from shared.settings import RunnerSettings
from shared.steps import STEP_ORDER, StepName, step_by_number

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
Emit = Callable[[BaseModel], Awaitable[None]]
_STEP_STATUS = {"StepSucceeded": "completed", "StepFailed": "failed", "StepCancelled": "cancelled"}


def add_parser(commands: argparse._SubParsersAction) -> None:
    workflow = commands.add_parser("workflow", help="run the workflow in-process (manual runs)")
    sub = workflow.add_subparsers(dest="workflow_command", required=True)
    run = sub.add_parser("run", help="run the steps here, without the gateway or the scheduler")
    run.add_argument("--db-connection", required=True, help="PostgreSQL URL of the business database")
    run.add_argument("--table-list", required=True, type=Path, help="file with one table name per line")
    run.add_argument("--business-context", required=True, help="what the business is about")
    run.add_argument("--db-name", help="name used in output file names (default: from the URL)")
    run.add_argument("--output-dir", type=Path, help="where task directories go (default DP_DATA_ROOT)")
    run.add_argument("--task-id", help="manual_YYYYMMDD_HHMMSS[_suffix] (default: generated)")
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
    if args.task_id and not (TASK_ID_RE.fullmatch(args.task_id) and args.task_id.startswith("manual_")):
        print("dpctl: --task-id must look like manual_YYYYMMDD_HHMMSS[_suffix]", file=sys.stderr)
        return EXIT_USAGE
    try:
        settings = RunnerSettings()
    except ValidationError as exc:
        print(f"dpctl: invalid DP_* settings: {exc}", file=sys.stderr)
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


@asynccontextmanager
async def _tracked_emitter(settings: RunnerSettings, task_id: str) -> AsyncIterator[Emit]:
    connection = await connect(settings.rabbitmq_url.get_secret_value())
    async with connection:
        channel = await open_channel(connection, prefetch=1)
        publisher = Publisher(await declare_topology(channel, Topology(settings.broker_prefix)), "dpctl")

        async def emit(payload: BaseModel) -> None:
            await publisher.event(task_id, payload)
            _print_event(payload)

        yield emit


@asynccontextmanager
async def _local_emitter(task_dir: Path) -> AsyncIterator[Emit]:
    log_file = (task_dir / "data_pipeline.log").open("a", encoding="utf-8")

    async def emit(payload: BaseModel) -> None:
        if payload.type == "log_emitted":  # type: ignore[attr-defined]
            ts = datetime.now(UTC).isoformat(timespec="milliseconds")
            step = payload.step.value if payload.step else "task"  # type: ignore[attr-defined]
            log_file.write(f"{ts} {payload.level:<8} [{step}] {payload.message}\n")  # type: ignore[attr-defined]
            log_file.flush()
        _print_event(payload)

    try:
        yield emit
    finally:
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
    box = secret_box(settings)
    params = _parameters(args, tables, box)
    plan = (
        list(STEP_ORDER) if params.execution_mode == "complete" else [step_by_number(params.single_step or 1)]
    )
    registry = load_registry(settings)
    print(f"manual run {task_id} -> {task_dir}")

    emitter = _local_emitter(task_dir) if args.no_db_tracking else _tracked_emitter(settings, task_id)
    async with emitter as emit:
        await emit(
            TaskCreated(parameters=params, created_by="manual", output_directory=str(task_dir), steps=plan)
        )
        await emit(TaskStarted())
        outcomes: dict[StepName, BaseModel] = {}
        for step in plan:
            reason = step_disabled_reason(params, step)
            if reason:
                await emit(StepSkipped(step=step, reason=reason))
                continue
            run_id = execution_id(task_id, step, datetime.now(UTC), attempt=1)
            # As the scheduler does: the read model records an execution when it is scheduled, and
            # ignores the start and end of an execution it has not seen scheduled.
            await emit(StepScheduled(step=step, execution_id=run_id, attempt=1))
            ctx = RunnerContext(
                emit=emit,
                task_id=task_id,
                step=step,
                execution_id=run_id,
                attempt=1,
                task_dir=task_dir,
                parameters=params,
                secrets=box,
                connections={k: v.get_secret_value() for k, v in settings.connections.items()},
            )
            outcomes[step] = await execute_step(
                registry[step], ctx, emit, runner_id="dpctl", heartbeat_interval=60, cancelled=lambda: False
            )
            if not isinstance(outcomes[step], StepSucceeded):
                break
        status, error, code = _verdict(plan, outcomes)
        with contextlib.suppress(Exception):
            await emit(
                TaskFinished(
                    status=status,  # type: ignore[arg-type]
                    error_message=error,
                    result={
                        s.value: _STEP_STATUS.get(type(o).__name__, "failed") for s, o in outcomes.items()
                    },
                )
            )
    print(f"{task_id}: {status}" + (f" ({error})" if error else ""))
    return code


def _verdict(plan: list[StepName], outcomes: dict[StepName, Any]) -> tuple[str, str | None, int]:
    failed = [(s, o) for s, o in outcomes.items() if o.type == "step_failed"]
    if failed:
        step, outcome = failed[0]
        completed = any(o.type == "step_succeeded" for o in outcomes.values())
        code = EXIT_PARTIAL if outcome.code == VALIDATION_BELOW_THRESHOLD else EXIT_FAILED
        return ("partial_completed" if completed else "failed"), f"{step.value} failed: {outcome.error}", code
    if any(o.summary.get("partial") for o in outcomes.values()):
        return "partial_completed", "a step completed only in part", EXIT_PARTIAL
    return "completed", None, EXIT_OK

"""`dpctl task ...`: create, list, show, logs, files, download, run-step, cancel, delete, prune."""

from __future__ import annotations

import argparse
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from services.dpctl.client import ApiError, GatewayClient
from services.dpctl.commands import leaf_options
from services.dpctl.follow import Follower, follow_logs
from services.dpctl.formatting import (
    TERMINAL_TASK_STATUSES,
    log_line,
    print_json,
    size,
    table,
    task_detail,
)
from shared.vocabulary import FINAL_TASK_STATUSES, LOG_LEVELS, STEP_ORDER, TASK_SUCCEEDED

FINISHED = FINAL_TASK_STATUSES
STEP_NAMES: tuple[str, ...] = tuple(step.value for step in STEP_ORDER)

COMMON = leaf_options()


def add_parser(subparsers: Any) -> None:
    task = subparsers.add_parser("task", help="create, watch and manage tasks")
    commands = task.add_subparsers(dest="task_command", metavar="COMMAND", required=True)

    create = commands.add_parser("create", parents=[COMMON], help="create and schedule a task")
    create.add_argument(
        "--db-connection", required=True, help="PostgreSQL URL or a configured connection name"
    )
    tables = create.add_mutually_exclusive_group(required=True)
    tables.add_argument("--tables", help="comma-separated table names (schema.table or table)")
    tables.add_argument("--table-list", type=Path, metavar="FILE", help="file with one table name per line")
    tables.add_argument(
        "--table-list-file",
        metavar="NAME",
        help="a table list file under the server's DP_TABLE_LISTS_DIR (name or relative path)",
    )
    create.add_argument("--business-context", required=True, help="what the business database is about")
    create.add_argument("--task-name")
    create.add_argument("--db-name", help="default: the database of --db-connection")
    create.add_argument("--execution-mode", choices=("complete", "single"), default=None)
    create.add_argument("--single-step", type=int, choices=(1, 2, 3, 4), help="step to run in single mode")
    create.add_argument(
        "--from-step", metavar="STEP", help="first step of a range (number or name; default 1)"
    )
    create.add_argument("--to-step", metavar="STEP", help="last step of a range (number or name; default 4)")
    create.add_argument("--skip-validation", action="store_true", help="enable_sql_validation=false")
    create.add_argument("--disable-llm-repair", action="store_true", help="enable_llm_repair=false")
    create.add_argument("--no-modify-file", action="store_true", help="modify_original_file=false")
    create.add_argument("--skip-training-load", action="store_true", help="enable_training_data_load=false")
    create.add_argument("--theme-count", type=int)
    create.add_argument("--questions-per-theme", type=int)
    create.add_argument("--llm-repair-rounds", type=int)
    create.add_argument(
        "--max-llm-tokens", type=int, help="LLM token budget of a run; the step that crosses it fails"
    )
    create.add_argument(
        "--follow", "-f", action="store_true", help="watch progress and logs until the task ends"
    )
    create.add_argument("--no-logs", action="store_true", help="with --follow: progress only")
    create.set_defaults(func=create_task)

    listing = commands.add_parser("list", parents=[COMMON], help="list tasks, newest first")
    listing.add_argument("--status", help="one status or several, comma-separated")
    listing.add_argument("--created-by")
    listing.add_argument("--db-name")
    listing.add_argument("--search", help="text in task name or business context")
    listing.add_argument("--limit", type=int, default=20, help="1-100 per page (default 20)")
    listing.add_argument("--cursor", help="next_cursor of a previous page")
    listing.add_argument("--all", action="store_true", help="follow next_cursor through every page")
    listing.set_defaults(func=list_tasks)

    show = commands.add_parser("show", parents=[COMMON], help="a task's status, steps and parameters")
    show.add_argument("task_id")
    show.set_defaults(func=show_task)

    logs = commands.add_parser("logs", parents=[COMMON], help="a task's log lines")
    logs.add_argument("task_id")
    logs.add_argument("--level", type=str.upper, choices=LOG_LEVELS)
    logs.add_argument("--step", help="step name or number")
    logs.add_argument("--grep", dest="q", help="only lines containing this text")
    logs.add_argument("--limit", type=int, default=1000, help="lines per request (default 1000)")
    logs.add_argument(
        "--follow", "-f", action="store_true", help="keep streaming new lines until the task ends"
    )
    logs.set_defaults(func=task_logs)

    files = commands.add_parser("files", parents=[COMMON], help="a task's output files")
    files.add_argument("task_id")
    files.set_defaults(func=task_files)

    download = commands.add_parser("download", parents=[COMMON], help="download one output file")
    download.add_argument("task_id")
    download.add_argument("name", help="file name as listed by `task files`")
    download.add_argument("-o", "--output", type=Path, help="where to write it ('-': stdout; default ./NAME)")
    download.set_defaults(func=download_file)

    run_step = commands.add_parser(
        "run-step", parents=[COMMON], help="run one step of an existing task again"
    )
    run_step.add_argument("task_id")
    run_step.add_argument("step", help="step name or number 1-4, or a range FROM-TO (2-3, 3-4)")
    run_step.add_argument("--force", action="store_true", help="run even if it already completed")
    run_step.add_argument("--follow", "-f", action="store_true", help="watch until the task ends")
    run_step.set_defaults(func=run_step_command)

    cancel = commands.add_parser("cancel", parents=[COMMON], help="stop a running task")
    cancel.add_argument("task_id")
    cancel.add_argument("--reason")
    cancel.set_defaults(func=cancel_task)

    delete = commands.add_parser("delete", parents=[COMMON], help="delete tasks with their files and records")
    delete.add_argument("task_ids", nargs="+", metavar="task_id")
    delete.set_defaults(func=delete_tasks)

    prune = commands.add_parser(
        "prune", parents=[COMMON], help="delete finished tasks older than N days (retention)"
    )
    prune.add_argument("--older-than-days", type=float, required=True)
    prune.add_argument("--status", default=",".join(FINISHED), help=f"default: {','.join(FINISHED)}")
    prune.add_argument("--yes", action="store_true", help="really delete (without it: only list)")
    prune.set_defaults(func=prune_tasks)


# --- create ---


def _read_table_list(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SystemExit(f"dpctl: cannot read table list {path}: {exc.strerror}") from None
    names = [line.split("#", 1)[0].strip() for line in text.splitlines()]
    return [name for name in names if name]


def build_parameters(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {"db_connection": args.db_connection, "business_context": args.business_context}
    if args.tables is not None:
        params["table_list"] = [t.strip() for t in args.tables.split(",") if t.strip()]
    elif args.table_list is not None:
        params["table_list"] = _read_table_list(args.table_list)
    else:
        params["table_list_file"] = args.table_list_file
    optional = {
        "task_name": args.task_name,
        "db_name": args.db_name,
        "execution_mode": args.execution_mode or ("single" if args.single_step else None),
        "single_step": args.single_step,
        "theme_count": args.theme_count,
        "questions_per_theme": args.questions_per_theme,
        "llm_repair_rounds": args.llm_repair_rounds,
        "max_llm_tokens": args.max_llm_tokens,
        "from_step": _step_ref(args.from_step) if args.from_step else None,
        "to_step": _step_ref(args.to_step) if args.to_step else None,
    }
    params.update({k: v for k, v in optional.items() if v is not None})
    for flag, key in (
        ("skip_validation", "enable_sql_validation"),
        ("disable_llm_repair", "enable_llm_repair"),
        ("no_modify_file", "modify_original_file"),
        ("skip_training_load", "enable_training_data_load"),
    ):
        if getattr(args, flag):
            params[key] = False
    return params


def create_task(client: GatewayClient, args: argparse.Namespace) -> int:
    created = client.create_task(build_parameters(args))
    task_id = created["task_id"]
    if not args.follow:
        if args.json:
            print_json(created)
        else:
            print(f"created {task_id} ({created.get('status')}); files in {created.get('output_directory')}")
            print(f"watch it:  dpctl task logs --follow {task_id}")
        return 0
    if not args.json:
        print(f"created {task_id}", flush=True)
    status = Follower(client, as_json=args.json, show_logs=not args.no_logs).run(task_id)
    return 0 if status == "completed" else 1


# --- reading ---


TASK_COLUMNS = [
    ("task_id", "task"),
    ("status", "status"),
    ("progress_text", "progress"),
    ("current_step", "step"),
    ("db_name", "database"),
    ("task_name", "name"),
    ("created_by", "by"),
    ("created_at", "created"),
]


def list_tasks(client: GatewayClient, args: argparse.Namespace) -> int:
    params = {
        "status": args.status,
        "created_by": args.created_by,
        "db_name": args.db_name,
        "search": args.search,
        "limit": args.limit,
        "cursor": args.cursor,
    }
    tasks: list[dict[str, Any]] = []
    while True:
        page = client.list_tasks(**params)
        tasks.extend(page.get("tasks") or [])
        if not args.all or not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    if args.json:
        print_json(
            {
                "tasks": tasks,
                "next_cursor": None if args.all else page.get("next_cursor"),
                "total": page.get("total"),
            }
        )
        return 0
    rows = [{**t, "progress_text": f"{t.get('progress', 0)}%"} for t in tasks]
    table(rows, TASK_COLUMNS)
    if page.get("next_cursor") and not args.all:
        print(f"\nmore: dpctl task list --cursor {page['next_cursor']}  (or --all)")
    return 0


def show_task(client: GatewayClient, args: argparse.Namespace) -> int:
    task = client.get_task(args.task_id)
    if args.json:
        print_json(task)
    else:
        task_detail(task)
    return 0


def task_logs(client: GatewayClient, args: argparse.Namespace) -> int:
    params: dict[str, Any] = {"level": args.level, "step": args.step, "q": args.q}
    if args.follow:
        follow_logs(client, args.task_id, params, sys.stdout, as_json=args.json)
        return 0
    params["limit"] = args.limit
    params["order"] = "asc"  # every line, oldest first (without an order a page is the newest lines)
    lines: list[dict[str, Any]] = []
    while True:
        page = client.logs(args.task_id, **params)
        lines.extend(page.get("logs") or [])
        if not page.get("next_cursor") or not page.get("logs"):
            break
        params["cursor"] = page["next_cursor"]
    if args.json:
        print_json({"logs": lines, "total": len(lines)})
    else:
        for line in lines:
            print(log_line(line))
    return 0


def task_files(client: GatewayClient, args: argparse.Namespace) -> int:
    result = client.files(args.task_id)
    files = result.get("files") or []
    if args.json:
        print_json(result)
        return 0
    rows = [
        {**f, "size_text": size(f.get("size", f.get("file_size"))), "primary": f.get("is_primary")}
        for f in files
    ]
    table(
        rows,
        [
            ("file_name", "name"),
            ("file_type", "type"),
            ("size_text", "size"),
            ("step", "step"),
            ("primary", "primary"),
            ("created_at", "created"),
        ],
    )
    return 0


def download_file(client: GatewayClient, args: argparse.Namespace) -> int:
    if args.output is not None and str(args.output) == "-":
        client.download_file(args.task_id, args.name, sys.stdout.buffer)
        sys.stdout.buffer.flush()
        return 0
    target = args.output or Path(Path(args.name).name)
    if target.is_dir():
        target = target / Path(args.name).name
    partial = target.with_name(target.name + ".part")
    try:
        with partial.open("wb") as sink:
            written = client.download_file(args.task_id, args.name, sink)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    if args.json:
        print_json({"task_id": args.task_id, "file_name": args.name, "path": str(target), "size": written})
    else:
        print(f"{target} ({size(written)})")
    return 0


# --- commands ---


def _step_ref(step: str) -> int | str:
    return int(step) if step.strip().isdigit() else step.strip()


def _step_body(step: str, force: bool) -> dict[str, Any]:
    if "-" in step:
        first, _, last = step.partition("-")
        return {"from_step": _step_ref(first), "to_step": _step_ref(last), "force": force}
    body: dict[str, Any] = {"execution_mode": "single", "force": force}
    if step.isdigit():
        body["single_step"] = int(step)
    else:
        body["step_name"] = step
    return body


def run_step_command(client: GatewayClient, args: argparse.Namespace) -> int:
    accepted = client.execute(args.task_id, _step_body(args.step, args.force))
    if not args.follow:
        if args.json:
            print_json(accepted)
        else:
            print(f"{args.task_id}: step {accepted.get('step') or args.step} scheduled")
        return 0
    status = Follower(client, as_json=args.json).run(args.task_id)
    return 0 if status in TASK_SUCCEEDED else 1


def cancel_task(client: GatewayClient, args: argparse.Namespace) -> int:
    result = client.cancel(args.task_id, args.reason)
    if args.json:
        print_json(result)
    else:
        print(f"{args.task_id}: cancel requested")
    return 0


def delete_tasks(client: GatewayClient, args: argparse.Namespace) -> int:
    results, worst = [], 0
    for task_id in args.task_ids:
        try:
            result = client.delete(task_id)
            results.append(
                {"task_id": task_id, "status": "deleted" if result.get("deleted", True) else "deleting"}
            )
        except ApiError as exc:
            if len(args.task_ids) == 1:
                raise
            results.append({"task_id": task_id, "status": "error", "reason": exc.reason})
            worst = max(worst, 2 if exc.status < 500 else 1)
    if args.json:
        print_json({"results": results})
    else:
        for r in results:
            print(f"{r['task_id']}: {r['status']}" + (f" ({r['reason']})" if r.get("reason") else ""))
    return worst


def _finished_at(task: dict[str, Any]) -> datetime | None:
    for key in ("completed_at", "updated_at", "created_at"):
        value = task.get(key)
        if value:
            try:
                moment = datetime.fromisoformat(str(value))
            except ValueError:
                continue
            return moment if moment.tzinfo else moment.replace(tzinfo=UTC)
    return None


def prune_tasks(client: GatewayClient, args: argparse.Namespace) -> int:
    """Retention: finished tasks whose completion is older than the cut-off go through the normal delete."""
    statuses = [s.strip() for s in args.status.split(",") if s.strip()]
    unknown = [s for s in statuses if s not in TERMINAL_TASK_STATUSES]
    if unknown:
        raise SystemExit(f"dpctl: prune only deletes finished tasks; not finished: {', '.join(unknown)}")
    cutoff = datetime.now(UTC) - timedelta(days=args.older_than_days)
    params: dict[str, Any] = {"status": ",".join(statuses), "limit": 100}
    old: list[dict[str, Any]] = []
    while True:
        page = client.list_tasks(**params)
        for task in page.get("tasks") or []:
            finished = _finished_at(task)
            if task.get("status") in statuses and finished is not None and finished < cutoff:
                old.append(task)
        if not page.get("next_cursor"):
            break
        params["cursor"] = page["next_cursor"]
    results = []
    failures = 0
    for task in old:
        entry = {
            "task_id": task["task_id"],
            "status": task.get("status"),
            "finished_at": str(_finished_at(task)),
        }
        if args.yes:
            try:
                client.delete(task["task_id"])
                entry["result"] = "deleted"
            except ApiError as exc:
                entry["result"] = "not_found" if exc.status == 404 else f"error: {exc.reason}"
                failures += exc.status != 404
        else:
            entry["result"] = "would delete"
        results.append(entry)
    if args.json:
        print_json(
            {
                "cutoff": cutoff.isoformat(),
                "tasks": results,
                "deleted": sum(r["result"] == "deleted" for r in results),
            }
        )
    else:
        table(
            results,
            [("task_id", "task"), ("status", "status"), ("finished_at", "finished"), ("result", "result")],
        )
        age = f"{args.older_than_days:g} day(s)"
        print(
            f"\n{len(results)} finished task(s) older than {age}"
            + ("" if args.yes else "; run with --yes to delete them")
        )
    return 1 if failures else 0

"""`dpctl task ...`: the parser of every task command, and create.

Reading (list, show, logs, files, download) is in task_views.py, the commands that change tasks
(run-step, cancel, delete, prune) in task_actions.py.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from services.dpctl.client import GatewayClient
from services.dpctl.commands import leaf_options
from services.dpctl.commands.task_actions import (
    cancel_task,
    delete_tasks,
    prune_tasks,
    run_step_command,
    step_ref,
)
from services.dpctl.commands.task_review import add_review_parser
from services.dpctl.commands.task_views import (
    download_file,
    list_tasks,
    show_task,
    task_files,
    task_logs,
    wait_task,
)
from services.dpctl.follow import Follower, watched_exit_code
from services.dpctl.formatting import print_json
from shared.vocabulary import FINAL_TASK_STATUSES, LOG_LEVELS, STEP_ORDER

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
    create.add_argument(
        "--review-before-load", action="store_true", help="after step 3 wait for `dpctl task review`"
    )
    create.add_argument("--theme-count", type=int)
    create.add_argument("--questions-per-theme", type=int)
    create.add_argument("--llm-repair-rounds", type=int)
    create.add_argument(
        "--max-llm-tokens", type=int, help="LLM token budget of a run; the step that crosses it fails"
    )
    create.add_argument(
        "--incremental-from",
        metavar="TASK",
        help="redo only what changed since TASK (a task id on the same database, or 'latest'); "
        "see `dpctl db diff`",
    )
    create.add_argument(
        "--follow", "-f", action="store_true", help="watch progress and logs until the task ends"
    )
    create.add_argument("--no-logs", action="store_true", help="with --follow: progress only")
    create.add_argument(
        "--no-wait",
        action="store_true",
        help="answer once the task is accepted, without waiting for it to be recorded (scripts creating many)",
    )
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

    wait = commands.add_parser(
        "wait",
        parents=[COMMON],
        help="wait until a task ends or waits for its review; exit 0 if it completed or awaits review",
    )
    wait.add_argument("task_id")
    wait.add_argument(
        "--max-wait", type=float, help="give up after this many seconds (exit 1; default: no limit)"
    )
    wait.set_defaults(func=wait_task)

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

    add_review_parser(commands, COMMON)


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
        "incremental_from": args.incremental_from,
        "from_step": step_ref(args.from_step) if args.from_step else None,
        "to_step": step_ref(args.to_step) if args.to_step else None,
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
    if args.review_before_load:
        params["review_before_load"] = True
    return params


def create_task(client: GatewayClient, args: argparse.Namespace) -> int:
    created = client.create_task(build_parameters(args), wait=0 if args.no_wait else None)
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
    return watched_exit_code(Follower(client, as_json=args.json, show_logs=not args.no_logs).run(task_id))

"""`dpctl task list|show|wait|logs|files|download`: reading tasks, their logs and files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from services.dpctl.client import GatewayClient
from services.dpctl.follow import follow_logs, watched_exit_code
from services.dpctl.formatting import (
    log_line,
    print_json,
    size,
    table,
    task_detail,
)
from shared.vocabulary import TASK_MOVING

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


# Each request waits at most this long (the gateway's limit is 60 s); a longer wait asks again.
WAIT_PER_REQUEST = 50.0


def wait_task(client: GatewayClient, args: argparse.Namespace) -> int:
    """Until the task ends or waits for its review (`GET /tasks/{id}?wait=`: answered when it does, no
    polling), or --max-wait runs out."""
    deadline = None if args.max_wait is None else time.monotonic() + max(args.max_wait, 0)
    while True:
        left = WAIT_PER_REQUEST if deadline is None else min(WAIT_PER_REQUEST, deadline - time.monotonic())
        task = client.wait_task(args.task_id, max(left, 0))
        status = task.get("status")
        if status not in TASK_MOVING or (deadline is not None and time.monotonic() >= deadline):
            break
    if args.json:
        print_json(task)
    else:
        late = " (still, at --max-wait)" if status in TASK_MOVING else ""
        print(f"task {args.task_id}: {status}{late}")
    return watched_exit_code(status)


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

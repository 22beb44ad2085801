"""`dpctl task run-step|cancel|delete|prune`: commands that change tasks."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta
from typing import Any

from services.dpctl.client import ApiError, GatewayClient
from services.dpctl.follow import Follower
from services.dpctl.formatting import (
    TERMINAL_TASK_STATUSES,
    print_json,
    table,
)
from shared.vocabulary import TASK_SUCCEEDED


def step_ref(step: str) -> int | str:
    return int(step) if step.strip().isdigit() else step.strip()


def _step_body(step: str, force: bool) -> dict[str, Any]:
    if "-" in step:
        first, _, last = step.partition("-")
        return {"from_step": step_ref(first), "to_step": step_ref(last), "force": force}
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

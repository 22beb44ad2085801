"""`dpctl task review TASK_ID`: review before load from the terminal.

Without an action it lists the task's pairs (with their marks: repaired, edited, and the quality flags
step 3 kept them with; `--flagged` lists only those) and the progress ("37/50 reviewed"). Actions run
in this order: `--approve-valid` (every pending pair whose SQL passed validation), `--approve`/`--reject`
(pair ids, repeatable), `--edit PAIR_ID` with `--question`/`--sql` (an edited SQL is checked on the spot;
a failing one is refused with the reason), then `--complete` (step 4 loads the approved pairs) or
`--abandon` (nothing is loaded). Needs a token with the operator role for decisions.
"""

from __future__ import annotations

import argparse
from typing import Any

from services.dpctl.client import GatewayClient, _seg
from services.dpctl.formatting import print_json, table

PAGE = 200
SHOWN_CHARS = 60


def add_review_parser(commands: Any, common: argparse.ArgumentParser) -> None:
    review = commands.add_parser(
        "review", parents=[common], help="list and decide a task's pairs before step 4 loads them"
    )
    review.add_argument("task_id")
    review.add_argument("--status", choices=("pending", "approved", "rejected"), help="list only these")
    review.add_argument("--verdict", choices=("valid", "invalid", "unchecked"), help="list only these")
    review.add_argument(
        "--flagged", action="store_true", help="list only pairs step 3 kept with quality flags"
    )
    review.add_argument("--approve-valid", action="store_true", help="approve every pending valid pair")
    review.add_argument("--approve", action="append", default=[], metavar="PAIR_ID")
    review.add_argument("--reject", action="append", default=[], metavar="PAIR_ID")
    review.add_argument("--edit", metavar="PAIR_ID", help="edit this pair (with --question and/or --sql)")
    review.add_argument("--question", help="the edited question")
    review.add_argument("--sql", help="the edited SQL (checked with the SQL gate and EXPLAIN at once)")
    end = review.add_mutually_exclusive_group()
    end.add_argument("--complete", action="store_true", help="finish: step 4 loads the approved pairs")
    end.add_argument("--abandon", action="store_true", help="finish: load nothing, the task ends cancelled")
    review.set_defaults(func=review_task)


def _short(text: str | None) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 1] + "…"


def _all_pairs(client: GatewayClient, task_id: str, **filters: Any) -> dict[str, Any]:
    params = {k: v for k, v in filters.items() if v is not None}
    first = client.request("GET", f"/tasks/{_seg(task_id)}/pairs", params={**params, "limit": PAGE})
    pairs = list(first["pairs"])
    while len(pairs) < first["matched"]:
        page = client.request(
            "GET", f"/tasks/{_seg(task_id)}/pairs", params={**params, "limit": PAGE, "offset": len(pairs)}
        )
        if not page["pairs"]:
            break
        pairs.extend(page["pairs"])
    return {**first, "pairs": pairs}


def review_task(client: GatewayClient, args: argparse.Namespace) -> int:
    task = _seg(args.task_id)
    done: list[str] = []
    if args.edit is None and (args.question or args.sql):
        raise SystemExit("--question and --sql go with --edit PAIR_ID")
    if args.approve_valid:
        result = client.request(
            "POST",
            f"/tasks/{task}/review/bulk",
            body={"decision": "approve", "filter": {"status": "pending", "verdict": "valid"}},
        )
        done.append(f"approved {result['decided']} valid pairs")
    for decision, ids in (("approve", args.approve), ("reject", args.reject)):
        for pair_id in ids:
            client.request("PATCH", f"/tasks/{task}/pairs/{_seg(pair_id)}", body={"decision": decision})
            done.append(f"{pair_id}: {decision}d")
    if args.edit is not None:
        body = {
            "decision": "edit",
            **{k: v for k, v in (("question", args.question), ("sql", args.sql)) if v},
        }
        result = client.request("PATCH", f"/tasks/{task}/pairs/{_seg(args.edit)}", body=body)
        done.append(f"{args.edit}: edited, now {result['pair']['status']}")
    if args.complete or args.abandon:
        action = "complete" if args.complete else "abandon"
        result = client.request("POST", f"/tasks/{task}/review/{action}")
        if args.json:
            print_json(result)
        elif args.complete:
            print(
                f"{args.task_id}: review completed: {result['approved']} approved, {result['rejected']} "
                f"rejected, {result['undecided']} undecided; step 4 loads the approved pairs"
            )
        else:
            print(f"{args.task_id}: review abandoned: nothing is loaded, the task ends cancelled")
        return 0
    listing = _all_pairs(
        client, args.task_id, status=args.status, verdict=args.verdict, flagged=args.flagged or None
    )
    if args.json:
        print_json({**listing, "done": done})
        return 0
    for line in done:
        print(line)
    rows = [
        {**p, "question": _short(p["question"]), "sql": _short(p["sql"]), "flags": _flags(p)}
        for p in listing["pairs"]
    ]
    columns = [("pair_id", "PAIR"), ("status", "STATUS"), ("verdict", "VERDICT"), ("flags", "")]
    table(rows, [*columns, ("theme", "THEME"), ("question", "QUESTION"), ("sql", "SQL")])
    counts = listing["counts"]
    print(
        f"{counts['reviewed']}/{counts['total']} reviewed ({counts['approved']} approved, "
        f"{counts['rejected']} rejected); task {listing['task_status']}"
    )
    return 0


def _flags(pair: dict[str, Any]) -> str:
    """repaired, edited, and the quality flags step 3 kept the pair with (their codes)."""
    quality = pair.get("quality") or {}
    kept = [f["code"] for f in quality.get("flags", [])] if quality.get("outcome") == "kept" else []
    marks = [f for f, on in (("repaired", pair.get("repaired_from")), ("edited", pair.get("edited"))) if on]
    return ",".join(marks + kept)

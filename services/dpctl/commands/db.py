"""`dpctl db tables`: list the tables of a business database through the gateway; `dpctl db diff`: what
changed in it since a task documented it (before an incremental run: `dpctl task create --incremental-from`)."""

from __future__ import annotations

import argparse
from typing import Any

from services.dpctl.client import GatewayClient
from services.dpctl.commands import leaf_options
from services.dpctl.formatting import print_json, table

COMMON = leaf_options()


def add_parser(subparsers: Any) -> None:
    db = subparsers.add_parser("db", help="business databases")
    commands = db.add_subparsers(dest="db_command", metavar="COMMAND", required=True)
    tables = commands.add_parser("tables", parents=[COMMON], help="list the tables of a business database")
    tables.add_argument(
        "--db-connection", required=True, help="PostgreSQL URL or a configured connection name"
    )
    tables.add_argument("--schema", help="default: public")
    tables.add_argument("--pattern", help="table name pattern")
    tables.add_argument(
        "--names-only", action="store_true", help="one schema.table per line (a table list file)"
    )
    tables.set_defaults(func=list_tables)

    diff = commands.add_parser(
        "diff", parents=[COMMON], help="tables changed, new and dropped since a task documented the database"
    )
    diff.add_argument("--db-connection", required=True, help="PostgreSQL URL or a configured connection name")
    diff.add_argument("--since-task", default="latest", help="a task id, or 'latest' (default)")
    diff.set_defaults(func=diff_tables)


def _name(entry: Any) -> str:
    if isinstance(entry, str):
        return entry
    schema = entry.get("schema") or entry.get("schema_name") or entry.get("table_schema")
    name = entry.get("table_name") or entry.get("name") or entry.get("table")
    return f"{schema}.{name}" if schema else str(name)


def list_tables(client: GatewayClient, args: argparse.Namespace) -> int:
    body = {"db_connection": args.db_connection, "schema": args.schema, "pattern": args.pattern}
    result = client.database_tables({k: v for k, v in body.items() if v is not None})
    tables = result.get("tables") or []
    if args.json:
        print_json(result)
    elif args.names_only:
        for entry in tables:
            print(_name(entry))
    elif tables and isinstance(tables[0], dict):
        rows = [{**t, "qualified": _name(t)} for t in tables]
        extra = [k for k in ("row_count", "estimated_rows", "comment") if k in tables[0]]
        table(rows, [("qualified", "table"), *((k, k) for k in extra)])
    else:
        table([{"qualified": _name(t)} for t in tables], [("qualified", "table")])
    return 0


def diff_tables(client: GatewayClient, args: argparse.Namespace) -> int:
    result = client.database_diff(args.db_connection, args.since_task)
    if args.json:
        print_json(result)
        return 0
    counts = result["tables"]
    print(
        f"since {result['since_task']}: {counts['changed']} changed, {counts['new']} new, "
        f"{counts['dropped']} dropped, {counts['unchanged']} unchanged"
    )
    for key in ("changed", "new", "dropped"):
        for name in result.get(key) or []:
            print(f"  {key:8} {name}")
    if counts["changed"] or counts["new"] or counts["dropped"]:
        print(
            f"run incrementally: dpctl task create --incremental-from {result['since_task']} ... "
            f"(about {result.get('llm_tokens_at_stake', 0)} LLM tokens of unchanged tables reused)"
        )
    return 0

"""Incremental runs (`incremental_from`): what an earlier task of the same database left that this one
may reuse, and the plan step 1 writes for the later steps.

Step 1 compares each table's fingerprint with the earlier task's `schema_catalog.json`: an unchanged
table's `.ddl` / `_detail.md` are copied from the earlier task's directory (no LLM call), changed and new
tables are documented again, and tables the earlier task had and this one has not are dropped. It writes
`incremental.json` (the diff, the lineage of earlier tasks and the LLM tokens the reuse saved); step 2
then generates pairs only for themes that touch changed or new tables and carries over the earlier
task's validated pairs that read only unchanged tables; step 4 removes the rows its lineage loaded that
are no longer part of it.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from services.step_runner.pipeline.catalog import SchemaCatalog, TableInfo
from services.step_runner.pipeline.fingerprint import SchemaDiff
from services.step_runner.pipeline.pair_files import PairFileError, load_pairs, pair_files
from services.step_runner.pipeline.sql_gate import referenced_names
from services.step_runner.pipeline.task_files import load_catalog, read_mapping
from shared.business_db import read_only

PLAN_FILE = "incremental.json"
MAX_SCHEMA_TABLES = 10_000
_SCHEMA_TABLES = """
SELECT n.nspname || '.' || c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = ANY($1::text[]) AND c.relkind IN ('r', 'p', 'v', 'm', 'f') ORDER BY 1 LIMIT $2
"""
MAX_LINEAGE = 100  # earlier tasks remembered (a weekly run keeps two years)


class BaselineError(ValueError):
    """The earlier task cannot serve as the base of an incremental run; the message says why."""


def table_key(table: TableInfo) -> str:
    return f"{table.schema_name}.{table.name}"


@dataclass(frozen=True)
class Baseline:
    task_id: str
    task_dir: Path
    catalog: SchemaCatalog
    mapping: dict[str, str]  # schema.table -> file stem
    lineage: list[str]  # the earlier task first, then its own bases

    @property
    def fingerprints(self) -> dict[str, str]:
        return dict(self.catalog.fingerprints)

    def table(self, key: str) -> TableInfo | None:
        return next((t for t in self.catalog.tables if table_key(t) == key), None)

    def reusable(self, key: str, fingerprint: str) -> bool:
        stem = self.mapping.get(key)
        return (
            self.catalog.fingerprints.get(key) == fingerprint
            and self.table(key) is not None
            and stem is not None
            and (self.task_dir / f"{stem}.ddl").is_file()
            and (self.task_dir / f"{stem}_detail.md").is_file()
        )

    def copy_documents(self, key: str, target_dir: Path, stem: str) -> None:
        source = self.mapping[key]
        for suffix in (".ddl", "_detail.md"):
            shutil.copyfile(self.task_dir / f"{source}{suffix}", target_dir / f"{stem}{suffix}")


def load_baseline(data_root: Path, task_id: str) -> Baseline:
    """The earlier task's step 1 results. Raises BaselineError when it has none to offer."""
    if not task_id or "/" in task_id or "\\" in task_id or task_id.startswith("."):
        raise BaselineError(f"incremental_from {task_id[:80]!r} is not a task id")
    task_dir = data_root / task_id
    catalog = load_catalog(task_dir)
    if catalog is None:
        raise BaselineError(
            f"task {task_id} has no schema_catalog.json to compare with (run its step 1 first)"
        )
    if not catalog.fingerprints:
        raise BaselineError(
            f"task {task_id} recorded no table fingerprints (it ran before incremental runs existed); "
            "run it once without incremental_from"
        )
    earlier = read_plan(task_dir) or {}
    lineage = [task_id, *[str(t) for t in earlier.get("lineage", []) if isinstance(t, str)]]
    return Baseline(task_id, task_dir, catalog, read_mapping(task_dir), lineage[:MAX_LINEAGE])


def read_plan(task_dir: Path) -> dict[str, Any] | None:
    """The plan step 1 wrote, or None when this task is not incremental."""
    path = task_dir / PLAN_FILE
    if not path.is_file():
        return None
    try:
        plan = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return plan if isinstance(plan, dict) else None


def plan_document(baseline: Baseline, diff: SchemaDiff, tokens_saved: int) -> dict[str, Any]:
    return {
        "from_task": baseline.task_id,
        "lineage": baseline.lineage,
        "tables": diff.as_dict(),
        "counts": diff.counts(),
        "llm_tokens_saved": tokens_saved,
    }


def _names_of(key: str) -> set[str]:
    schema, name = key.split(".", 1)
    return {key.lower(), name.lower()} if schema == "public" else {key.lower()}


def touches(tables: list[str], keys: set[str]) -> bool:
    """Whether any of `tables` (as a theme or a statement names them: bare or schema-qualified) is one of
    `keys` (schema.table)."""
    names = {n for key in keys for n in _names_of(key)}
    return any(t.lower().replace('"', "") in names for t in tables)


def carried_pairs(baseline_dir: Path, stale: set[str]) -> tuple[list[dict[str, Any]], int]:
    """The earlier task's pairs (as its last step wrote them: validated) whose statement reads tables,
    none of them in `stale` (changed, new or dropped); and how many pairs the earlier task had."""
    pairs: list[dict[str, Any]] = []
    total = 0
    for path in pair_files(baseline_dir):
        try:
            loaded = load_pairs(path)
        except PairFileError:
            continue
        total += len(loaded)
        for pair in loaded:
            read = referenced_names(pair["sql"])
            if read and not touches(sorted(read), stale):
                theme = pair.get("theme")
                pairs.append(
                    {
                        "question": pair["question"],
                        "sql": pair["sql"],
                        **({"theme": theme} if isinstance(theme, str) else {}),
                    }
                )
    return pairs, total


def earlier_tasks(task_dir: Path) -> list[str]:
    """The lineage an incremental run supersedes in the training store (empty when not incremental)."""
    plan = read_plan(task_dir) or {}
    lineage = plan.get("lineage")
    return [t for t in lineage if isinstance(t, str)] if isinstance(lineage, list) else []


def add_counts(a: dict[str, dict[str, int]], b: dict[str, dict[str, int]]) -> dict[str, dict[str, int]]:
    """Two {unlinked, deleted} by-kind counts of the training store, summed."""
    return {
        key: {
            kind: a.get(key, {}).get(kind, 0) + b.get(key, {}).get(kind, 0)
            for kind in {**a.get(key, {}), **b.get(key, {})}
        }
        for key in {*a, *b}
    }


async def schema_tables(conn: asyncpg.Connection, schemas: list[str]) -> list[str]:
    """Every table and view of `schemas` (schema.name, sorted): what a later diff calls new is what is
    not among them."""
    async with read_only(conn):
        rows = await conn.fetch(_SCHEMA_TABLES, sorted(set(schemas)), MAX_SCHEMA_TABLES)
    return [r["name"] for r in rows]

"""Step 4: embed the task's DDL, documentation and question/SQL pairs and load them into the
training-data store, so that the store holds exactly the task's current files.

Loading twice adds nothing and removes nothing. When a re-run of step 1 or 3 changed or dropped an item
since the last load, the task's link to its old row is removed, and the row is deleted unless another
task still links it; rows this step never loaded are never removed.

Every question/SQL pair passes the SQL gate (pipeline/sql_gate.py) again before anything is written,
whether or not step 3 ran (`enable_sql_validation: false` does not open the store): a pair the gate
refuses is left out and listed, with its reason, in the step's summary. So is a pair carrying a quality
flag whose DP_QUALITY_ACTIONS action is `drop` (pipeline/pair_quality.py: bookkeeping subject, cartesian
read, duplicate, ...), which step 3 drops from the pair files unless modify_original_file is off."""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from services.step_runner.executors.base import StepContext, StepError
from services.step_runner.pipeline.doc_chunks import chunk_markdown
from services.step_runner.pipeline.incremental import add_counts, earlier_tasks
from services.step_runner.pipeline.pair_files import PairFileError, load_pairs, pair_files
from services.step_runner.pipeline.pair_quality import drop_verdicts
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.sql_gate import PlanLimits, SqlGate
from services.step_runner.pipeline.task_files import load_catalog, read_mapping
from shared import training_stats, training_store, training_writer
from shared.atomic_files import atomic_write_text
from shared.business_db import BusinessDbError, create_pool, describe_error
from shared.embeddings import Embedder, EmbeddingError
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from shared.training_store import KINDS, TrainingItem

EmbedderFactory = Callable[[], Embedder]
EMBED_BATCH = 64
MAX_SHOWN_QUESTION = 200  # characters of a refused pair's question in the step summary


def collect_items(task_dir: Path) -> list[TrainingItem]:
    """Everything in the task directory that belongs in the store, in a stable order."""
    tables = {stem: table for table, stem in read_mapping(task_dir).items()}
    items: list[TrainingItem] = []
    for path in sorted(task_dir.glob("*.ddl")):
        text = path.read_text(encoding="utf-8").strip()
        if text:
            items.append(TrainingItem("ddl", text, table_name=tables.get(path.stem), source_file=path.name))
    for path in sorted(task_dir.glob("*_detail.md")):
        table = tables.get(path.name.removesuffix("_detail.md"))
        for chunk in chunk_markdown(path.read_text(encoding="utf-8")):
            items.append(TrainingItem("documentation", chunk, table_name=table, source_file=path.name))
    for path in pair_files(task_dir):
        for pair in load_pairs(path):
            question, sql = pair["question"].strip(), pair["sql"].strip()
            if question and sql:
                items.append(
                    TrainingItem("question_sql", question, question=question, sql=sql, source_file=path.name)
                )
    unique: dict[tuple[str, str], TrainingItem] = {}
    for item in items:
        unique.setdefault((item.kind, item.content_hash), item)
    return list(unique.values())


class TrainingLoadExecutor:
    name: ClassVar[StepName] = StepName.TRAINING_LOAD

    def __init__(
        self, settings: PipelineSettings, embedder_factory: EmbedderFactory, database_url: str
    ) -> None:
        """`database_url`: the training store's database (settings.training_database_url or the pipeline's)."""
        self._settings = settings
        self._embedder_factory = embedder_factory
        self._database_url = database_url

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        if not ctx.parameters.enable_training_data_load:
            await ctx.log("INFO", "training data load is disabled for this task")
            return {"skipped": True}
        try:
            items = await ctx.run_blocking(collect_items, ctx.task_dir)
        except PairFileError as exc:
            raise StepError(str(exc)) from None
        items, refused = await self._gate_pairs(ctx, items)
        if not items and refused:
            raise StepError(
                f"nothing to load: the SQL gate or the quality flags refused all {len(refused)} question/SQL pairs"
            )
        if not items:
            raise StepError("nothing to load: no .ddl, _detail.md or qs_*_pair.json in the task directory")
        schema = self._settings.training_schema
        try:
            conn = await asyncpg.connect(self._database_url, timeout=10)
        except Exception as exc:
            raise StepError(
                f"cannot connect to the training store: {describe_error(exc)}", retryable=True
            ) from None
        embedder = self._embedder_factory()
        try:
            summary = await self._load(ctx, conn, embedder, schema, items)
            return {**summary, "refused_pairs": refused}
        except (OSError, asyncpg.InterfaceError) as exc:
            raise StepError(f"lost the training store: {describe_error(exc)}", retryable=True) from None
        except asyncpg.PostgresError as exc:
            raise StepError(f"training store error: {describe_error(exc)}", retryable=True) from None
        except EmbeddingError as exc:
            raise StepError(f"cannot embed: {exc}", retryable=exc.retryable) from None
        finally:
            await embedder.aclose()
            await conn.close()

    async def _gate_pairs(
        self, ctx: StepContext, items: list[TrainingItem]
    ) -> tuple[list[TrainingItem], list[dict[str, Any]]]:
        """The items without the pairs the SQL gate refuses, and those pairs with the reason."""
        pairs = [i for i in items if i.kind == "question_sql"]
        if not pairs:
            return items, []
        limits = PlanLimits(self._settings.sql_max_plan_cost, self._settings.sql_max_plan_rows)
        try:
            pool = await create_pool(
                ctx.business_db_url(),
                max_size=min(4, self._settings.sql_validation_concurrency),
                statement_timeout_ms=self._settings.statement_timeout_ms,
                policy=ctx.business_db_policy,
            )
        except BusinessDbError as exc:
            raise StepError(str(exc), retryable=exc.retryable) from None
        refused: list[dict[str, Any]] = []
        rejected: set[int] = set()
        try:
            gate = SqlGate(pool, limits)
            for item in pairs:
                verdict = await gate.check(item.sql or "")
                if not verdict.valid:
                    rejected.add(id(item))
                    question = (item.question or "")[:MAX_SHOWN_QUESTION]
                    refused.append({"file": item.source_file, "question": question, "reason": verdict.error})
        finally:
            await pool.close()
        passed = [i for i in pairs if id(i) not in rejected]
        catalog = await ctx.run_blocking(load_catalog, ctx.task_dir)
        schema = SchemaIndex(catalog.tables if catalog else [])
        verdicts = drop_verdicts(
            [(i.question or "", i.sql or "") for i in passed], schema, self._settings.quality_actions
        )
        for index, codes in verdicts.items():
            item = passed[index]
            rejected.add(id(item))
            question = (item.question or "")[:MAX_SHOWN_QUESTION]
            reason = f"quality flags set to drop (DP_QUALITY_ACTIONS): {', '.join(codes)}"
            refused.append({"file": item.source_file, "question": question, "reason": reason})
        if refused:
            await ctx.log(
                "WARNING",
                f"{len(refused)} of {len(pairs)} question/SQL pairs refused by the SQL gate or the quality flags "
                "and not loaded: "
                + "; ".join(f"{r['file']}: {r['reason']}" for r in refused[:5])
                + (" …" if len(refused) > 5 else ""),
            )
        return [i for i in items if id(i) not in rejected], refused

    async def _load(
        self,
        ctx: StepContext,
        conn: asyncpg.Connection,
        embedder: Embedder,
        schema: str,
        items: list[TrainingItem],
    ) -> dict[str, Any]:
        await training_store.ensure_schema(conn, schema)
        present = await training_writer.existing_hashes(conn, schema, items)
        new = [i for i in items if _key(i) not in present]
        await ctx.log(
            "INFO", f"{len(items)} items, {len(new)} new, {len(items) - len(new)} already in the store"
        )
        await ctx.progress(5.0, f"{len(new)} new items to embed")
        # Embedding is slow, so it happens before the store's lock is taken.
        vectors = await _embed(ctx, embedder, new, progress=True)

        backup_table = None
        inserted = dict.fromkeys(KINDS, 0)
        options: dict[str, Any] = {}
        async with conn.transaction():
            await training_store.lock(conn, schema)
            options = await self._store_options(ctx, conn, schema)
            # Another task's load may have pruned a row we found above; embed it again (rare and small).
            present = await training_writer.existing_hashes(conn, schema, items)
            pruned = [i for i in items if _key(i) not in present and _key(i) not in vectors]
            if pruned:
                await ctx.log(
                    "INFO", f"{len(pruned)} items were removed by a concurrent load; embedding them"
                )
                vectors.update(await _embed(ctx, embedder, pruned, progress=False))
            if self._settings.training_backup:
                backup_table = await training_writer.backup(conn, schema, dt.datetime.now(dt.UTC))
            missing = [i for i in items if _key(i) not in present]
            if missing:
                inserted = await training_writer.insert_items(
                    conn, schema, missing, [vectors[_key(i)] for i in missing], ctx.task_id
                )
            removed = await training_writer.sync_links(
                conn, schema, ctx.task_id, items, db_name=ctx.parameters.db_name
            )
            # An incremental run replaces its lineage's rows: what they loaded and it does not goes.
            lineage = earlier_tasks(ctx.task_dir) if ctx.parameters.incremental_from else []
            if lineage:
                superseded = await training_writer.supersede(conn, schema, lineage, items)
                removed = add_counts(removed, superseded)
                await ctx.log(
                    "INFO",
                    f"incremental run: {sum(superseded['unlinked'].values())} rows of earlier tasks "
                    f"({', '.join(lineage[:5])}) are no longer current, "
                    f"{sum(superseded['deleted'].values())} of them deleted (no other task uses them)",
                )
            # Rows a writer outside the lock inserted between our check and our insert count as present.
            per_kind = Counter(i.kind for i in items)
            already_present = {k: per_kind[k] - inserted[k] for k in KINDS}
            await training_writer.record_load(
                conn, schema, ctx.task_id, inserted, already_present, backup_table, removed
            )
        store = await training_stats.stats(conn, schema)
        await ctx.progress(100.0, "loaded")
        unlinked, deleted = sum(removed["unlinked"].values()), sum(removed["deleted"].values())
        await ctx.log(
            "INFO",
            "loaded "
            + ", ".join(f"{inserted[k]} {k}" for k in KINDS)
            + f" into {schema}"
            + (f" (backup {backup_table})" if backup_table else "")
            + f"; {unlinked} stale rows unlinked from the task, {deleted} of them deleted"
            + (f" ({unlinked - deleted} still used by other tasks)" if unlinked > deleted else ""),
        )
        return {
            "schema": schema,
            "items": len(items),
            "inserted": inserted,
            "already_present": already_present,
            "removed": removed,
            "backup_table": backup_table,
            "store_by_kind": store["by_kind"],
            **options,
        }

    async def _store_options(self, ctx: StepContext, conn: asyncpg.Connection, schema: str) -> dict[str, Any]:
        """The run's backup_vector_tables / truncate_vector_tables, inside the store's lock: copy the rows
        of the task's database to a file in the task directory (an output), then remove them."""
        params = ctx.parameters
        if not (params.backup_vector_tables or params.truncate_vector_tables):
            return {}
        db_name = params.db_name
        if not db_name:
            await ctx.log(
                "WARNING", "backup/truncate of the training rows skipped: the task names no db_name"
            )
            return {}
        summary: dict[str, Any] = {}
        if params.backup_vector_tables:
            rows = await training_writer.database_rows(conn, schema, db_name)
            name = f"training_backup_{_file_part(db_name)}_{dt.datetime.now(dt.UTC):%Y%m%d_%H%M%S}.json"
            await ctx.run_blocking(_write_backup, ctx.task_dir / name, rows)
            await ctx.output(
                name, file_type="json", description=f"training rows of {db_name} before this load"
            )
            await ctx.log("INFO", f"backed up {len(rows)} training rows of {db_name} to {name}")
            summary["backup_file"], summary["backed_up_rows"] = name, len(rows)
        if params.truncate_vector_tables:
            gone = await training_writer.remove_database_rows(conn, schema, db_name)
            deleted = sum(gone["deleted"].values())
            await ctx.log(
                "INFO",
                f"removed the training rows of {db_name} before loading: {deleted} deleted, "
                f"{sum(gone['unlinked'].values()) - deleted} kept for other databases' tasks",
            )
            summary["truncated"] = gone
        return summary


def _file_part(name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in name)[:60] or "db"


def _write_backup(path: Path, rows: list[dict[str, Any]]) -> None:
    payload = [
        {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()} for row in rows
    ]
    atomic_write_text(path, json.dumps(payload, ensure_ascii=False) + "\n")


def _key(item: TrainingItem) -> tuple[str, str]:
    return item.kind, item.content_hash


async def _embed(
    ctx: StepContext, embedder: Embedder, items: list[TrainingItem], *, progress: bool
) -> dict[tuple[str, str], list[float]]:
    vectors: dict[tuple[str, str], list[float]] = {}
    for start in range(0, len(items), EMBED_BATCH):
        batch = items[start : start + EMBED_BATCH]
        vectors.update(zip(map(_key, batch), await embedder.embed([i.content for i in batch]), strict=True))
        if progress:
            done = min(len(items), start + EMBED_BATCH)
            await ctx.progress(5.0 + 85.0 * done / len(items), f"embedded {done}/{len(items)}")
    return vectors

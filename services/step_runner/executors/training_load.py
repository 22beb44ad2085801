"""Step 4: embed the task's DDL, documentation and question/SQL pairs and load them into the
training-data store. Loading twice adds nothing; rows loaded earlier (by any task) are never removed."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

import asyncpg

from services.step_runner.executors.base import StepContext, StepError
from services.step_runner.pipeline.doc_chunks import chunk_markdown
from services.step_runner.pipeline.pair_files import PairFileError, load_pairs, pair_files
from services.step_runner.pipeline.task_files import read_mapping
from shared import training_store
from shared.business_db import describe_error
from shared.embeddings import Embedder, EmbeddingError
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from shared.training_store import KINDS, TrainingItem

EmbedderFactory = Callable[[], Embedder]
EMBED_BATCH = 64


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
            return await self._load(ctx, conn, embedder, schema, items)
        except (OSError, asyncpg.InterfaceError) as exc:
            raise StepError(f"lost the training store: {describe_error(exc)}", retryable=True) from None
        except asyncpg.PostgresError as exc:
            raise StepError(f"training store error: {describe_error(exc)}", retryable=True) from None
        except EmbeddingError as exc:
            raise StepError(f"cannot embed: {exc}", retryable=exc.retryable) from None
        finally:
            await embedder.aclose()
            await conn.close()

    async def _load(
        self,
        ctx: StepContext,
        conn: asyncpg.Connection,
        embedder: Embedder,
        schema: str,
        items: list[TrainingItem],
    ) -> dict[str, Any]:
        await training_store.ensure_schema(conn, schema)
        present = await training_store.existing_hashes(conn, schema, items)
        new = [i for i in items if (i.kind, i.content_hash) not in present]
        already = Counter(i.kind for i in items if (i.kind, i.content_hash) in present)
        await ctx.log(
            "INFO", f"{len(items)} items, {len(new)} new, {len(items) - len(new)} already in the store"
        )
        await ctx.progress(5.0, f"{len(new)} new items to embed")

        vectors: list[list[float]] = []
        for start in range(0, len(new), EMBED_BATCH):
            vectors.extend(await embedder.embed([i.content for i in new[start : start + EMBED_BATCH]]))
            done = min(len(new), start + EMBED_BATCH)
            await ctx.progress(5.0 + 85.0 * done / len(new), f"embedded {done}/{len(new)}")

        backup_table = None
        inserted = dict.fromkeys(KINDS, 0)
        async with conn.transaction():
            if self._settings.training_backup:
                backup_table = await training_store.backup(conn, schema, dt.datetime.now(dt.UTC))
            if new:
                inserted = await training_store.insert_items(conn, schema, new, vectors, ctx.task_id)
            # Rows another runner inserted between our check and our insert count as already present.
            already_present = {
                k: already.get(k, 0) + sum(1 for i in new if i.kind == k) - inserted[k] for k in KINDS
            }
            await training_store.record_load(
                conn, schema, ctx.task_id, inserted, already_present, backup_table
            )
        store = await training_store.stats(conn, schema)
        await ctx.progress(100.0, "loaded")
        await ctx.log(
            "INFO",
            "loaded "
            + ", ".join(f"{inserted[k]} {k}" for k in KINDS)
            + f" into {schema}"
            + (f" (backup {backup_table})" if backup_table else ""),
        )
        return {
            "schema": schema,
            "items": len(items),
            "inserted": inserted,
            "already_present": already_present,
            "backup_table": backup_table,
            "store_by_kind": store["by_kind"],
        }

"""Step 1: introspect every listed table, let the LLM fill the descriptions the database lacks, and write
`<table>.ddl`, `<table>_detail.md`, `filename_mapping.txt` and `schema_catalog.json`."""

from __future__ import annotations

import asyncio
import dataclasses
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import urlsplit

import asyncpg

from services.step_runner.executors.base import StepContext, StepError
from services.step_runner.llm.base import LLMError, LLMFactory, TextToSQLModel
from services.step_runner.pipeline.catalog import SchemaCatalog
from services.step_runner.pipeline.ddl_file import render_ddl
from services.step_runner.pipeline.descriptions import fill_descriptions, needs_description
from services.step_runner.pipeline.detail_doc import render_detail
from services.step_runner.pipeline.files import (
    UnsafeFileName,
    atomic_write_json,
    atomic_write_text,
    bare_file_name,
)
from services.step_runner.pipeline.fingerprint import diff_fingerprints, table_fingerprint
from services.step_runner.pipeline.incremental import (
    PLAN_FILE,
    Baseline,
    BaselineError,
    load_baseline,
    plan_document,
    schema_tables,
)
from services.step_runner.pipeline.introspect import (
    IntrospectedTable,
    IntrospectionOptions,
    TableNotFound,
    introspect_table,
)
from services.step_runner.pipeline.table_list import (
    TableListError,
    TableRef,
    parse_table_list,
    parse_table_names,
    render_table_list,
)
from services.step_runner.pipeline.task_files import (
    CATALOG_FILE,
    MAPPING_FILE,
    TABLE_LIST_FILE,
    read_mapping,
)
from shared import llm_usage
from shared.business_db import BusinessDbError, create_pool, describe_error
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName

MAX_TABLE_LIST_BYTES = 1_000_000


@dataclasses.dataclass
class _Outcome:
    ref: TableRef
    table: IntrospectedTable | None = None
    error: str | None = None
    filled: int = 0
    llm_error: str | None = None
    fingerprint: str | None = None
    reused: bool = False  # documents copied from the incremental run's earlier task
    tokens: int = 0  # LLM tokens the table's descriptions cost (when reused: what they cost then)


def _render_mapping(tables: list[IntrospectedTable]) -> str:
    lines = ["# table -> file name stem (<stem>.ddl, <stem>_detail.md), written by ddl_generation"]
    lines += [f"{t.ref.qualified} -> {t.ref.file_stem}" for t in tables]
    return "\n".join(lines) + "\n"


_NAMED_IN_REASON = 20


def _missing_tables_reason(failed: list[dict[str, Any]], requested: int) -> str:
    names = [f["table"] for f in failed]
    shown = ", ".join(names[:_NAMED_IN_REASON])
    more = (
        f" and {len(names) - _NAMED_IN_REASON} more (all in tables_failed)"
        if len(names) > _NAMED_IN_REASON
        else ""
    )
    return f"{len(names)} of {requested} tables not documented (missing or unreadable): {shown}{more}"


class DdlGenerationExecutor:
    name: ClassVar[StepName] = StepName.DDL_GENERATION

    def __init__(self, settings: PipelineSettings, llm_factory: LLMFactory) -> None:
        self._settings = settings
        self._llm_factory = llm_factory

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        refs = await self._table_refs(ctx)
        url = ctx.business_db_url()
        db_name = ctx.parameters.db_name or urlsplit(url).path.lstrip("/") or "database"
        concurrency = min(self._settings.ddl_concurrency, len(refs))
        await ctx.log("INFO", f"introspecting {len(refs)} tables of {db_name} ({concurrency} at a time)")
        baseline = await self._baseline(ctx)
        try:
            pool = await create_pool(
                url,
                max_size=concurrency,
                statement_timeout_ms=self._settings.statement_timeout_ms,
                policy=ctx.business_db_policy,
            )
        except BusinessDbError as exc:
            raise StepError(str(exc), retryable=exc.retryable) from None
        llm = self._llm_factory()
        try:
            outcomes = await self._run_tables(ctx, pool, llm, refs, concurrency, baseline)
            try:
                async with pool.acquire() as conn:
                    in_schemas = await schema_tables(conn, [r.schema for r in refs])
            except asyncpg.PostgresError:
                in_schemas = []
        finally:
            await llm.aclose()
            await pool.close()
        return await self._write_outputs(ctx, db_name, refs, outcomes, baseline, in_schemas)

    async def _baseline(self, ctx: StepContext) -> Baseline | None:
        source = ctx.parameters.incremental_from
        if not source:
            return None
        try:
            baseline = await ctx.run_blocking(load_baseline, ctx.task_dir.parent, source)
        except BaselineError as exc:
            raise StepError(str(exc)) from None
        await ctx.log(
            "INFO",
            f"incremental run: comparing with the {len(baseline.catalog.tables)} tables of task {source}",
        )
        return baseline

    async def _table_refs(self, ctx: StepContext) -> list[TableRef]:
        params = ctx.parameters
        try:
            if params.table_list:
                refs = parse_table_names(params.table_list)
                listed = ctx.task_dir / TABLE_LIST_FILE
                # The task's current list: the names as an earlier run wrote them, or a list uploaded
                # since (POST .../table-list, .../upload-table-list), which the next run must use.
                if listed.is_file():
                    current = self._read_table_list(listed, TABLE_LIST_FILE)
                    if current != refs:
                        await ctx.log(
                            "INFO",
                            f"table list from {TABLE_LIST_FILE} ({len(current)} tables), given since the"
                            f" task was created with {len(refs)} names",
                        )
                    refs = current
                else:
                    await ctx.run_blocking(atomic_write_text, listed, render_table_list(refs))
                await ctx.output(TABLE_LIST_FILE, file_type="txt", description="tables of this task")
                return refs
            if params.table_list_file:
                path = ctx.task_dir / bare_file_name(params.table_list_file)
                if not path.is_file():
                    raise StepError(
                        f"table list file {params.table_list_file!r} is not in the task directory"
                    )
                return self._read_table_list(path, params.table_list_file)
        except (TableListError, UnsafeFileName) as exc:
            raise StepError(str(exc)) from None
        raise StepError("the task has neither table_list nor table_list_file")

    @staticmethod
    def _read_table_list(path: Path, name: str) -> list[TableRef]:
        if path.stat().st_size > MAX_TABLE_LIST_BYTES:
            raise StepError(f"table list file {name!r} is larger than 1 MB")
        return parse_table_list(path.read_text(encoding="utf-8", errors="replace"))

    async def _run_tables(
        self,
        ctx: StepContext,
        pool: asyncpg.Pool,
        llm: TextToSQLModel,
        refs: list[TableRef],
        concurrency: int,
        baseline: Baseline | None,
    ) -> list[_Outcome]:
        options = IntrospectionOptions.from_settings(self._settings)
        context = ctx.parameters.business_context
        semaphore = asyncio.Semaphore(concurrency)
        done = 0

        async def one(ref: TableRef) -> _Outcome:
            nonlocal done
            async with semaphore:
                outcome = await self._one_table(ctx, pool, llm, ref, options, context, baseline)
            done += 1
            await ctx.progress(100.0 * done / len(refs), f"{ref.display} ({done}/{len(refs)})")
            return outcome

        try:
            async with asyncio.TaskGroup() as group:
                tasks = [group.create_task(one(ref)) for ref in refs]
        except* StepError as errors:
            raise errors.exceptions[0] from None
        return [task.result() for task in tasks]

    async def _one_table(
        self,
        ctx: StepContext,
        pool: asyncpg.Pool,
        llm: TextToSQLModel,
        ref: TableRef,
        options: IntrospectionOptions,
        context: str,
        baseline: Baseline | None = None,
    ) -> _Outcome:
        try:
            async with pool.acquire() as conn:
                table = await introspect_table(conn, ref, options)
        except TableNotFound as exc:
            await ctx.log("WARNING", f"skipped {ref.qualified}: {exc}", table=ref.qualified)
            return _Outcome(ref, error=str(exc))
        except asyncpg.PostgresError as exc:
            error = f"cannot read {ref.qualified}: {describe_error(exc)}"
            await ctx.log("WARNING", f"skipped {error}", table=ref.qualified)
            return _Outcome(ref, error=error)
        except (OSError, asyncpg.InterfaceError) as exc:
            raise StepError(f"lost the business database: {describe_error(exc)}", retryable=True) from None

        fingerprint = table_fingerprint(table)
        for warning in table.warnings:
            await ctx.log("WARNING", f"{ref.qualified}: {warning}", table=ref.qualified)
        if baseline is not None and baseline.reusable(ref.qualified, fingerprint):
            previous = baseline.table(ref.qualified)
            assert previous is not None
            await ctx.run_blocking(baseline.copy_documents, ref.qualified, ctx.task_dir, ref.file_stem)
            await ctx.log(
                "INFO",
                f"{ref.qualified}: unchanged since task {baseline.task_id}, its documents reused (no LLM call)",
                table=ref.qualified,
                reused_from=baseline.task_id,
            )
            return _Outcome(
                ref,
                table=dataclasses.replace(table, info=previous),
                fingerprint=fingerprint,
                reused=True,
                tokens=baseline.catalog.llm_tokens.get(ref.qualified, 0),
            )
        outcome = _Outcome(ref, table=table, fingerprint=fingerprint)
        if needs_description(table.info):
            try:
                with llm_usage.counted() as meter:
                    try:
                        described = await llm.describe_table(table.info, context)
                    finally:
                        outcome.tokens = meter.total_tokens
            except LLMError as exc:
                if exc.retryable:
                    raise StepError(f"the LLM is unavailable: {exc}", retryable=True) from None
                outcome.llm_error = str(exc)
                await ctx.log("WARNING", f"{ref.qualified}: no descriptions from the LLM: {exc}")
            else:
                info, outcome.filled = fill_descriptions(table.info, described)
                outcome.table = dataclasses.replace(table, info=info)

        assert outcome.table is not None
        stem = ref.file_stem
        await ctx.run_blocking(atomic_write_text, ctx.task_dir / f"{stem}.ddl", render_ddl(outcome.table))
        await ctx.run_blocking(
            atomic_write_text, ctx.task_dir / f"{stem}_detail.md", render_detail(outcome.table)
        )
        return outcome

    async def _write_outputs(
        self,
        ctx: StepContext,
        db_name: str,
        refs: list[TableRef],
        outcomes: list[_Outcome],
        baseline: Baseline | None = None,
        in_schemas: list[str] | None = None,
    ) -> dict[str, Any]:
        succeeded = [o.table for o in outcomes if o.table is not None]
        failed = [{"table": o.ref.qualified, "error": o.error} for o in outcomes if o.error]
        if not succeeded:
            names = ", ".join(f["table"] for f in failed[:20])
            raise StepError(f"no table succeeded (0 of {len(refs)}); failed: {names}")

        # Outputs of an earlier run for tables that are no longer listed (or no longer readable) go, so the
        # directory always matches schema_catalog.json; files the step did not write are never touched.
        current = {t.ref.file_stem for t in succeeded}
        for stem in set(read_mapping(ctx.task_dir).values()) - current:
            try:
                bare_file_name(stem)
            except UnsafeFileName:
                continue
            for suffix in (".ddl", "_detail.md"):
                (ctx.task_dir / f"{stem}{suffix}").unlink(missing_ok=True)

        catalog = SchemaCatalog(
            db_name=db_name,
            business_context=ctx.parameters.business_context,
            tables=[t.info for t in succeeded],
            fingerprints={o.ref.qualified: o.fingerprint for o in outcomes if o.table and o.fingerprint},
            llm_tokens={o.ref.qualified: o.tokens for o in outcomes if o.table and o.tokens},
            schema_tables=in_schemas or [],
        )
        await ctx.run_blocking(atomic_write_text, ctx.task_dir / MAPPING_FILE, _render_mapping(succeeded))
        await ctx.run_blocking(
            atomic_write_json, ctx.task_dir / CATALOG_FILE, catalog.model_dump(mode="json")
        )

        for table in succeeded:
            stem = table.ref.file_stem
            await ctx.output(f"{stem}.ddl", file_type="ddl", description=f"DDL of {table.ref.qualified}")
            await ctx.output(
                f"{stem}_detail.md", file_type="md", description=f"documentation of {table.ref.qualified}"
            )
        await ctx.output(MAPPING_FILE, file_type="txt", description="table -> file name")
        await ctx.output(CATALOG_FILE, file_type="json", is_primary=True, description="schema catalog")
        incremental = await self._write_plan(ctx, catalog, outcomes, baseline)

        filled = sum(o.filled for o in outcomes)
        message = (
            f"{len(succeeded)} of {len(refs)} tables documented, {filled} descriptions filled by the LLM"
        )
        if failed:
            message += f"; failed: {', '.join(f['table'] for f in failed)}"
        await ctx.log("WARNING" if failed else "INFO", message)
        return {
            # docs/decisions.md: any listed table left undocumented makes the step (and the task) partial.
            "partial": bool(failed),
            "partial_reason": _missing_tables_reason(failed, len(refs)) if failed else None,
            "db_name": db_name,
            "tables_requested": len(refs),
            "tables_succeeded": len(succeeded),
            "tables_failed": failed,
            "descriptions_filled": filled,
            "llm_failures": [
                {"table": o.ref.qualified, "error": o.llm_error} for o in outcomes if o.llm_error
            ],
            "files": sorted(
                [f"{t.ref.file_stem}.ddl" for t in succeeded]
                + [f"{t.ref.file_stem}_detail.md" for t in succeeded]
            ),
            "fingerprints": catalog.fingerprints,
            **({"incremental": incremental} if incremental else {}),
        }

    async def _write_plan(
        self, ctx: StepContext, catalog: SchemaCatalog, outcomes: list[_Outcome], baseline: Baseline | None
    ) -> dict[str, Any] | None:
        """incremental.json for the later steps (removed when a re-run is not incremental)."""
        if baseline is None:
            await ctx.run_blocking((ctx.task_dir / PLAN_FILE).unlink, True)
            return None
        diff = diff_fingerprints(baseline.fingerprints, catalog.fingerprints)
        saved = sum(o.tokens for o in outcomes if o.reused)
        plan = plan_document(baseline, diff, saved)
        await ctx.run_blocking(atomic_write_json, ctx.task_dir / PLAN_FILE, plan)
        await ctx.output(
            PLAN_FILE, file_type="json", description=f"what changed since task {baseline.task_id}"
        )
        counts = diff.counts()
        await ctx.log(
            "INFO",
            f"incremental run from task {baseline.task_id}: {counts['unchanged']} tables unchanged (reused), "
            f"{counts['changed']} changed, {counts['new']} new, {counts['dropped']} dropped"
            + (f" ({', '.join(diff.dropped[:20])})" if diff.dropped else "")
            + f"; about {saved} LLM tokens saved",
        )
        return {
            "from_task": baseline.task_id,
            "tables": counts,
            "table_names": diff.as_dict(),
            "llm_tokens_saved": saved,
        }

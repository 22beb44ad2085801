"""Step 2: business themes, then question/SQL pairs per theme, from what step 1 learned of the schema.

Inputs: `schema_catalog.json` (plus the `.ddl` / `_detail.md` files) from ddl_generation. Outputs:
`qs_<db>_<timestamp>_pair.json`, `metadata.txt`, `metadata_detail.md`, `db_query_decision_prompt.txt`.
A re-run writes its pairs under the name of the pair file it replaces (and removes any other pair file
and the `.backup`), so the directory holds exactly one, registered once as primary.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from pydantic import ValidationError

from services.step_runner.executors.base import StepContext, StepError
from services.step_runner.llm.base import LLMError, LLMFactory, QuestionSQL, TextToSQLModel, Theme
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.llm.sqltext import normalize_statement, sql_fingerprint
from services.step_runner.pipeline.catalog import SchemaCatalog
from services.step_runner.pipeline.files import atomic_write_text
from services.step_runner.pipeline.incremental import carried_pairs, read_plan, touches
from services.step_runner.pipeline.pair_files import BACKUP_SUFFIX, PAIR_GLOB, render_pairs
from services.step_runner.pipeline.task_files import CATALOG_FILE
from services.step_runner.pipeline.theme_metadata import (
    METADATA_DOC_FILE,
    METADATA_SQL_FILE,
    SCOPE_FILE,
    metadata_doc,
    metadata_sql,
)
from shared.steps import StepName, missing_inputs

DEFAULT_THEMES = 5
DEFAULT_QUESTIONS_PER_THEME = 10


class QaGenerationExecutor:
    name: ClassVar[StepName] = StepName.QA_GENERATION

    def __init__(
        self,
        llm_settings: LLMSettings,
        llm_factory: LLMFactory,
        *,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._settings = llm_settings
        self._llm_factory = llm_factory
        self._clock = clock

    async def run(self, ctx: StepContext) -> dict[str, Any]:
        catalog = await ctx.run_blocking(_load_inputs, ctx.task_dir)
        params = ctx.parameters
        context = params.business_context or catalog.business_context
        db_name = params.db_name or catalog.db_name
        theme_count = params.theme_count or DEFAULT_THEMES
        per_theme = params.questions_per_theme or DEFAULT_QUESTIONS_PER_THEME
        await ctx.log(
            "INFO",
            f"qa_generation: {len(catalog.tables)} tables of {db_name}, "
            f"{theme_count} themes x {per_theme} questions",
        )
        await ctx.progress(5, "schema catalog loaded")
        carried, touched, from_task, carried_themes = await self._carried(ctx)

        model = self._llm_factory()
        try:
            await ctx.log("INFO", f"asking {model.name} for {theme_count} business themes")
            try:
                themes = await model.propose_themes(catalog.tables, context, theme_count)
            except LLMError as exc:
                raise StepError(f"could not get business themes: {exc}", retryable=exc.retryable) from exc
            if not themes:
                raise StepError("the model proposed no business theme")
            await ctx.log("INFO", f"{len(themes)} themes: " + "; ".join(t.name for t in themes))
            await ctx.progress(15, f"{len(themes)} themes proposed")
            asked = themes
            if touched is not None:
                asked = [t for t in themes if touches(t.related_tables, touched)]
                await ctx.log(
                    "INFO",
                    f"incremental run: pairs generated for the {len(asked)} of {len(themes)} themes that touch "
                    f"changed or new tables; {len(carried)} validated pairs of task {from_task} carried over",
                )

            per_theme_pairs, failures = await self._pairs_for_themes(
                ctx, model, asked, catalog, context, per_theme
            )
            pairs = _clean([carried, *per_theme_pairs])
            # Each pair names its business theme (the review screen filters by it; step 3 keeps the key).
            theme_of: dict[str, str] = dict(carried_themes)
            for theme, generated in zip(asked, per_theme_pairs, strict=True):
                for p in generated:
                    theme_of.setdefault(" ".join(p.question.split()).casefold(), theme.name)
            if not pairs:
                retryable = bool(failures) and all(f.retryable for f in failures)
                detail = f": {failures[0]}" if failures else ""
                raise StepError(f"no question/SQL pair was produced{detail}", retryable=retryable)

            await ctx.progress(92, "summarizing the business scope")
            try:
                scope = await model.summarize_scope(catalog.tables, context)
            except LLMError as exc:
                raise StepError(
                    f"could not summarize the business scope: {exc}", retryable=exc.retryable
                ) from exc
        finally:
            await model.aclose()

        generated_at = self._clock()
        pair_name = _pair_name(ctx.task_dir, db_name, generated_at)
        files = {
            pair_name: render_pairs([_pair_dict(p, theme_of.get(p.question.casefold())) for p in pairs]),
            METADATA_SQL_FILE: metadata_sql(themes, db_name, context, generated_at),
            METADATA_DOC_FILE: metadata_doc(themes, db_name),
            SCOPE_FILE: scope if scope.endswith("\n") else scope + "\n",
        }
        await ctx.run_blocking(_write_outputs, ctx.task_dir, files)
        await ctx.output(pair_name, file_type="json", is_primary=True, description="Question/SQL pairs")
        await ctx.output(
            METADATA_SQL_FILE, file_type="sql", is_primary=True, description="Business themes (SQL)"
        )
        await ctx.output(METADATA_DOC_FILE, file_type="md", description="The metadata table of themes")
        await ctx.output(SCOPE_FILE, file_type="txt", description="Business scope of the database")
        await ctx.progress(100, f"{len(pairs)} question/SQL pairs written")
        await ctx.log("INFO", f"wrote {pair_name} with {len(pairs)} pairs over {len(themes)} themes")
        return {
            "db_name": db_name,
            "provider": model.name,
            "themes": len(themes),
            "theme_names": [t.name for t in themes],
            "pairs": len(pairs),
            "failed_themes": len(failures),
            "pair_file": pair_name,
            "files": list(files),
            **(
                {
                    "incremental": {
                        "from_task": from_task,
                        "themes_generated": len(asked),
                        "pairs_carried_over": len(_clean([carried])),
                    }
                }
                if touched is not None
                else {}
            ),
        }

    async def _carried(
        self, ctx: StepContext
    ) -> tuple[list[QuestionSQL], set[str] | None, str | None, dict[str, str]]:
        """An incremental run's pairs carried over from the earlier task, the changed and new tables (None
        when the run is not incremental), the earlier task, and the carried pairs' themes by question."""
        plan = await ctx.run_blocking(read_plan, ctx.task_dir) if ctx.parameters.incremental_from else None
        if not plan or not isinstance(plan.get("tables"), dict) or not isinstance(plan.get("from_task"), str):
            return [], None, None, {}
        names = plan["tables"]
        touched = {str(t) for key in ("changed", "new") for t in names.get(key, [])}
        stale = touched | {str(t) for t in names.get("dropped", [])}
        source = ctx.task_dir.parent / plan["from_task"]
        pairs, total = await ctx.run_blocking(carried_pairs, source, stale)
        await ctx.log(
            "INFO",
            f"{len(pairs)} of the {total} validated pairs of task {plan['from_task']} read only unchanged "
            "tables and are carried over (step 3 checks them again)",
        )
        themes = {" ".join(p["question"].split()).casefold(): p["theme"] for p in pairs if "theme" in p}
        carried = [QuestionSQL(question=p["question"], sql=p["sql"]) for p in pairs]
        return carried, touched, plan["from_task"], themes

    async def _pairs_for_themes(
        self,
        ctx: StepContext,
        model: TextToSQLModel,
        themes: list[Theme],
        catalog: SchemaCatalog,
        context: str,
        per_theme: int,
    ) -> tuple[list[list[QuestionSQL]], list[LLMError]]:
        # Themes run concurrently, no more at once than the model's own request bound.
        gate = asyncio.Semaphore(self._settings.concurrency)
        results: list[list[QuestionSQL]] = [[] for _ in themes]
        failures: list[LLMError] = []
        done = 0

        async def one(index: int, theme: Theme) -> None:
            nonlocal done
            async with gate:
                try:
                    results[index] = await model.generate_pairs(theme, catalog.tables, context, per_theme)
                except LLMError as exc:
                    failures.append(exc)
                    await ctx.log("WARNING", f"theme {theme.name!r}: no pairs ({exc})", theme=theme.name)
                else:
                    await ctx.log(
                        "INFO", f"theme {theme.name!r}: {len(results[index])} pairs", theme=theme.name
                    )
            done += 1
            await ctx.progress(15 + 75 * done / len(themes), f"{done}/{len(themes)} themes done")

        try:
            async with asyncio.TaskGroup() as group:
                for index, theme in enumerate(themes):
                    group.create_task(one(index, theme))
        except BaseExceptionGroup as group_error:
            raise group_error.exceptions[
                0
            ] from None  # the runner classifies the error itself, not a group of it
        return results, failures


def _load_inputs(task_dir: Path) -> SchemaCatalog:
    missing = missing_inputs(StepName.QA_GENERATION, task_dir)
    path = task_dir / CATALOG_FILE
    if not path.is_file():
        missing.insert(0, f"{CATALOG_FILE} (run ddl_generation first)")
    if missing:
        raise StepError("step 1 outputs are missing from the task directory: " + ", ".join(missing))
    try:
        catalog = SchemaCatalog.model_validate_json(path.read_text(encoding="utf-8"))
    except (OSError, ValidationError, ValueError) as exc:
        raise StepError(f"{CATALOG_FILE} cannot be read: {str(exc)[:300]}") from exc
    if not catalog.tables:
        raise StepError(f"{CATALOG_FILE} lists no table")
    return catalog


def _pair_dict(pair: QuestionSQL, theme: str | None) -> dict[str, str]:
    return {"question": pair.question, "sql": pair.sql, **({"theme": theme} if theme else {})}


def _clean(per_theme: list[list[QuestionSQL]]) -> list[QuestionSQL]:
    """Single statements ending with ';', without a question or a statement seen before."""
    out: list[QuestionSQL] = []
    seen_questions: set[str] = set()
    seen_sql: set[str] = set()
    for pairs in per_theme:
        for pair in pairs:
            sql = normalize_statement(pair.sql)
            question = " ".join(pair.question.split())
            if sql is None or not question:
                continue
            q_key, s_key = question.casefold(), sql_fingerprint(sql)
            if q_key in seen_questions or s_key in seen_sql:
                continue
            seen_questions.add(q_key)
            seen_sql.add(s_key)
            out.append(QuestionSQL(question=question, sql=sql))
    return out


def _file_part(db_name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", db_name).strip("_") or "db"


def _pair_name(task_dir: Path, db_name: str, generated_at: datetime) -> str:
    """A re-run keeps the name of the pair file it replaces, so the task has one registered pair file
    (registering a new name would leave the old one listed as primary too); a first run names it.

    Of several pair files (a stray copy beside the registered one), the newest of this database's is
    the one replaced, else the newest of any: names end with the run's timestamp."""
    prefix = f"qs_{_file_part(db_name)}_"
    previous = [p.name for p in task_dir.glob(PAIR_GLOB) if p.is_file()]
    if previous:
        return max(previous, key=lambda n: (n.startswith(prefix), n[-len("00000000_000000_pair.json") :], n))
    return f"{prefix}{generated_at:%Y%m%d_%H%M%S}_pair.json"


def _write_outputs(task_dir: Path, files: dict[str, str]) -> None:
    # The previous run's pair file and its backup go first: the directory ends with exactly one.
    for old in task_dir.glob(PAIR_GLOB):
        old.unlink(missing_ok=True)
    for old in task_dir.glob(PAIR_GLOB + BACKUP_SUFFIX):
        old.unlink(missing_ok=True)
    for name, text in files.items():
        atomic_write_text(task_dir / name, text)

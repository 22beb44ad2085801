"""What the offline generator writes for three real schemas, kept as a golden file, so a change to its
templates (services/step_runner/offline/templates.py) that alters one byte of a question or statement is
seen (tests/unit/test_offline_templates.py).

The schemas are the catalogs step 1 wrote for the demo database, the HR/logistics schema and the highway
schema (tests/fixtures/offline_templates/*_catalog.json). Regenerate:

    .venv/bin/python -m tests.support.offline_golden catalogs   # step 1 on the three databases (PostgreSQL)
    .venv/bin/python -m tests.support.offline_golden golden     # the generator's output for them

Only rewrite the golden file for an intended change of the generated text, and say so in the commit.
"""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from services.step_runner.offline.provider import OfflineTextToSQLModel, _candidates
from services.step_runner.offline.schema import SchemaModel
from services.step_runner.pipeline.catalog import SchemaCatalog, TableInfo

FIXTURES = Path(__file__).parents[1] / "fixtures" / "offline_templates"
GOLDEN = FIXTURES / "golden.json"
SCHEMAS = ("demo", "hr", "highway")
CONTEXTS = {"en": "A business database: its entities, amounts and activity", "zh": "一家企业的业务数据"}
THEMES, PAIRS_PER_THEME = 5, 12


def catalog(schema: str) -> list[TableInfo]:
    return SchemaCatalog.model_validate_json((FIXTURES / f"{schema}_catalog.json").read_text()).tables


async def generated(schema: str, language: str) -> dict[str, Any]:
    """Every candidate the templates give for the whole schema, and a provider run's themes and pairs."""
    tables = catalog(schema)
    model = SchemaModel(tables)
    candidates = [
        {"kind": c.kind, "tables": list(c.tables), "question": c.question, "sql": c.sql}
        for c in _candidates(model, list(model.profiles), language == "zh")
    ]
    provider = OfflineTextToSQLModel()
    context = CONTEXTS[language]
    pairs = []
    for theme in await provider.propose_themes(tables, context, THEMES):
        for pair in await provider.generate_pairs(theme, tables, context, PAIRS_PER_THEME):
            pairs.append({"theme": theme.name, "question": pair.question, "sql": pair.sql})
    return {"candidates": candidates, "pairs": pairs}


async def golden() -> dict[str, Any]:
    return {f"{s}/{lang}": await generated(s, lang) for s in SCHEMAS for lang in CONTEXTS}


def render(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, indent=1) + "\n"


async def write_catalogs(server_url: str) -> None:
    from services.demo_db.generator import drop_database
    from shared.parameters import TaskParameters
    from shared.steps import StepName
    from tests.support.pipeline_steps import ddl_step
    from tests.support.quality_run import CASES, database_url, prepare
    from tests.support.step_context import RecordingContext

    for schema in SCHEMAS:
        case = next(c for c in CASES if c.name == schema)
        url = database_url(server_url, f"dp_golden_{uuid.uuid4().hex[:8]}")
        try:
            await prepare(case, url)
            with tempfile.TemporaryDirectory(prefix="dp-golden-") as tmp:
                params = TaskParameters(
                    db_connection=url, business_context=case.business_context, table_list=case.tables
                )
                ctx = RecordingContext(Path(tmp), params, url)
                await ddl_step().run(ctx.for_step(StepName.DDL_GENERATION))
                text = (Path(tmp) / "schema_catalog.json").read_text(encoding="utf-8")
            tables = SchemaCatalog.model_validate_json(text)
            (FIXTURES / f"{schema}_catalog.json").write_text(
                tables.model_dump_json(indent=1) + "\n", encoding="utf-8"
            )
        finally:
            await drop_database(url)


if __name__ == "__main__":
    what = sys.argv[1] if len(sys.argv) > 1 else "golden"
    if what == "catalogs":
        asyncio.run(write_catalogs("postgresql://postgres@127.0.0.1:5432/postgres"))
    else:
        GOLDEN.write_text(render(asyncio.run(golden())), encoding="utf-8")

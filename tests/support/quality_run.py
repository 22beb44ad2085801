"""Steps 1-3 of the default (offline) provider on the three schemas of issue #13, measured before and after
step 3 (pipeline/quality_metrics.py). Used by `make quality` (bench/quality.py) and
tests/integration/test_pair_quality_schemas.py.
"""

from __future__ import annotations

import json
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.demo_db.generator import TABLES as DEMO_TABLES
from services.demo_db.generator import create_demo_database, drop_database, ensure_database
from services.step_runner.pipeline.catalog import SchemaCatalog
from services.step_runner.pipeline.quality_metrics import QualityMetrics, measure
from services.step_runner.pipeline.task_files import CATALOG_FILE
from shared.parameters import TaskParameters
from shared.steps import StepName
from tests.support.highway_db import HIGHWAY_SQL, HIGHWAY_TABLES
from tests.support.hr_db import HR_SCHEMA
from tests.support.hr_db import TABLES as HR_TABLES
from tests.support.pipeline_steps import BUSINESS_CONTEXT, ddl_step, qa_step, validation_step
from tests.support.step_context import RecordingContext

MIN_VALID_BEFORE_REPAIR = 0.95


@dataclass(frozen=True)
class Case:
    name: str
    schema_sql: str | None  # None: the seeded demo database
    tables: list[str]
    business_context: str


CASES = [
    Case("demo", None, list(DEMO_TABLES), BUSINESS_CONTEXT),
    Case("demo-zh", None, list(DEMO_TABLES), "一家线上线下零售商店:客户、订单、支付、发货与评价"),
    Case("hr", HR_SCHEMA, HR_TABLES, "HR and logistics of a manufacturer"),
    Case("hr-zh", HR_SCHEMA, HR_TABLES, "一家制造企业的人事与物流数据"),
    Case("highway", HIGHWAY_SQL, HIGHWAY_TABLES, "高速公路服务区的经营数据:营收、车流、服务区、公司与路线"),
    Case(
        "highway-en",
        HIGHWAY_SQL,
        HIGHWAY_TABLES,
        "Highway service areas: revenue, traffic, companies, routes",
    ),
]


@dataclass(frozen=True)
class Result:
    case: str
    before: QualityMetrics
    after: QualityMetrics
    valid_before_repair: float
    step3: dict[str, Any]

    def misses(self) -> list[str]:
        out = [f"before: {m}" for m in self.before.misses()] + [f"after: {m}" for m in self.after.misses()]
        if self.valid_before_repair < MIN_VALID_BEFORE_REPAIR:
            out.append(f"valid before repair {self.valid_before_repair:.0%} < {MIN_VALID_BEFORE_REPAIR:.0%}")
        return out


def database_url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def prepare(case: Case, url: str) -> None:
    """Create the case's tables (or the seeded demo database) in the empty database at `url`."""
    if case.schema_sql is None:
        await create_demo_database(url)
        return
    await ensure_database(url)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(case.schema_sql)
    finally:
        await conn.close()


async def run_case(case: Case, url: str, task_dir: Path) -> Result:
    """Steps 1-3 of `case` on the prepared database at `url`, measured before and after step 3."""
    params = TaskParameters(db_connection=url, business_context=case.business_context, table_list=case.tables)
    ctx = RecordingContext(task_dir, params, url)
    await ddl_step().run(ctx.for_step(StepName.DDL_GENERATION))
    await qa_step().run(ctx.for_step(StepName.QA_GENERATION))
    (pair_file,) = task_dir.glob("qs_*_pair.json")
    tables = SchemaCatalog.model_validate_json((task_dir / CATALOG_FILE).read_text()).tables
    before = measure(json.loads(pair_file.read_text()), tables)
    step3 = await validation_step().run(ctx.for_step(StepName.SQL_VALIDATION))
    after = measure(json.loads(pair_file.read_text()), tables)
    return Result(case.name, before, after, float(step3.get("success_rate_before", 0.0)), step3)


async def measure_case(case: Case, server_url: str) -> Result:
    url = database_url(server_url, f"dp_quality_{uuid.uuid4().hex[:8]}")
    try:
        await prepare(case, url)
        with tempfile.TemporaryDirectory(prefix="dp-quality-") as tmp:
            return await run_case(case, url, Path(tmp))
    finally:
        await drop_database(url)

"""The quality of the pairs the default (offline) provider writes, on three schemas (issue #13):

    .venv/bin/python -m bench.quality [--server-url postgresql://postgres@127.0.0.1:5432/postgres]

For the demo database, the second, differently shaped schema (HR and logistics) and the highway
service-area schema, each in a throwaway database dropped at the end, it runs the real steps 1-3 and
prints, before step 3 (the pairs step 2 wrote) and after it (what step 3 kept, after its quality pass
where there is one): the share of pairs about bookkeeping, the share with soft-delete filters where a
table needs one, the share with joins, the share whose question spells raw identifiers, the number of
duplicates, and step 3's EXPLAIN pass rate before repair. The exit status is 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from services.step_runner.demo.seed import TABLES as DEMO_TABLES
from services.step_runner.demo.seed import create_demo_database, drop_database, ensure_database
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


def _url(server_url: str, name: str) -> str:
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def _prepare(case: Case, url: str) -> None:
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
    url = _url(server_url, f"dp_quality_{uuid.uuid4().hex[:8]}")
    try:
        await _prepare(case, url)
        with tempfile.TemporaryDirectory(prefix="dp-quality-") as tmp:
            return await run_case(case, url, Path(tmp))
    finally:
        await drop_database(url)


def _row(label: str, m: QualityMetrics, valid: str) -> str:
    return (
        f"  {label:<7}{m.pairs:>6} {m.bookkeeping:>12.0%} {m.soft_delete_filtered:>10.0%} ({m.soft_delete_needed:>3})"
        f" {m.joined:>8.0%} {m.raw_identifiers:>9.0%} {m.duplicates:>6} {valid:>8}"
    )


def report(results: list[Result]) -> str:
    lines = [
        "targets: bookkeeping <= 5%, soft-delete filtered >= 95%, joined >= 20%, raw identifiers <= 10%,"
        " 0 duplicates, valid before repair >= 95%",
        f"  {'':<7}{'pairs':>6} {'bookkeeping':>12} {'sd-filter':>10} {'(n)':>5} {'joined':>8} {'raw-ids':>9}"
        f" {'dups':>6} {'valid':>8}",
    ]
    for r in results:
        lines.append(f"{r.case}")
        lines.append(_row("before", r.before, f"{r.valid_before_repair:.0%}"))
        lines.append(_row("after", r.after, ""))
        misses = r.misses()
        lines.append("  " + ("MISSES: " + "; ".join(misses) if misses else "meets every target"))
    return "\n".join(lines)


async def main(server_url: str, only: list[str]) -> int:
    results = []
    for case in CASES:
        if only and case.name not in only:
            continue
        results.append(await measure_case(case, server_url))
    print(report(results))
    return 1 if any(r.misses() for r in results) else 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--server-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "cases", nargs="*", help="only these cases (" + ", ".join(c.name for c in CASES) + ")"
    )
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.server_url, args.cases)))

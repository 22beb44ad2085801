"""How good a set of question/SQL pairs is, as shares a reviewer can compare against targets (issue #13).

Pure: the pairs and the catalog in, the numbers out. The flags are pair_quality's, so `make quality`, the
integration tests and step 3's quality pass all count the same thing:
- bookkeeping: pairs flagged `bookkeeping_subject` (audit or technical columns as the subject);
- soft-delete filtered: among pairs that read a table with a soft-delete column, those that keep live rows
  (not flagged `missing_soft_delete_filter`);
- joined: pairs whose statement reads two or more different tables of the catalog;
- raw identifiers: pairs flagged `raw_identifier_in_question`;
- duplicates: pairs flagged `duplicate_question` (a repeat of an earlier question);
- summed rates: pairs flagged `summed_rate` (a sum of prices per unit, ratings, percentages);
- detours: pairs flagged `detour_join` (a table joined only to connect two related tables).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass

from pglast import ast
from pglast.visitors import Visitor

from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.column_roles import soft_delete_column
from services.step_runner.pipeline.pair_quality import assess_all
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.select_tree import parse

# issue #13's targets
MAX_BOOKKEEPING = 0.05
MIN_SOFT_DELETE_FILTERED = 0.95
MIN_JOINED = 0.20
MAX_RAW_IDENTIFIERS = 0.10
MAX_DUPLICATES = 0
MAX_SUMMED_RATES = 0.0
MAX_DETOURS = 0.0


@dataclass(frozen=True)
class QualityMetrics:
    pairs: int
    bookkeeping: float
    soft_delete_needed: int
    soft_delete_filtered: float
    joined: float
    raw_identifiers: float
    duplicates: int
    summed_rates: float
    detours: float

    def misses(self) -> list[str]:
        """The targets this set misses, in words (empty when it meets them all)."""
        out = []
        if self.bookkeeping > MAX_BOOKKEEPING:
            out.append(f"bookkeeping {self.bookkeeping:.0%} > {MAX_BOOKKEEPING:.0%}")
        if self.soft_delete_filtered < MIN_SOFT_DELETE_FILTERED:
            out.append(
                f"soft-delete filtered {self.soft_delete_filtered:.0%} < {MIN_SOFT_DELETE_FILTERED:.0%}"
            )
        if self.joined < MIN_JOINED:
            out.append(f"joined {self.joined:.0%} < {MIN_JOINED:.0%}")
        if self.raw_identifiers > MAX_RAW_IDENTIFIERS:
            out.append(f"raw identifiers {self.raw_identifiers:.0%} > {MAX_RAW_IDENTIFIERS:.0%}")
        if self.duplicates > MAX_DUPLICATES:
            out.append(f"{self.duplicates} duplicates")
        if self.summed_rates > MAX_SUMMED_RATES:
            out.append(f"summed rates {self.summed_rates:.0%} > {MAX_SUMMED_RATES:.0%}")
        if self.detours > MAX_DETOURS:
            out.append(f"detours {self.detours:.0%} > {MAX_DETOURS:.0%}")
        return out

    def as_dict(self) -> dict[str, float | int]:
        return asdict(self)


class _Tables(Visitor):  # type: ignore[misc]
    def __init__(self) -> None:
        super().__init__()
        self.found: list[tuple[str | None, str]] = []

    def visit_RangeVar(self, ancestors: object, node: ast.RangeVar) -> None:
        if node.relname:
            self.found.append((node.schemaname, node.relname))


def tables_read(sql: str, schema: SchemaIndex) -> list[TableInfo]:
    """The catalog tables a statement reads (each once, in order of appearance); [] when it does not parse."""
    stmt = parse(sql)
    if stmt is None:
        return []
    visitor = _Tables()
    visitor(stmt)
    out: list[TableInfo] = []
    for schema_name, name in visitor.found:
        table = schema.table(schema_name, name)
        if table is not None and all(t is not table for t in out):
            out.append(table)
    return out


def _share(part: int, whole: int, empty: float) -> float:
    return part / whole if whole else empty


def measure(pairs: Iterable[Mapping[str, str]], tables: list[TableInfo]) -> QualityMetrics:
    items = [(str(p.get("question", "")), str(p.get("sql", ""))) for p in pairs]
    schema = SchemaIndex(tables)
    flags = assess_all(items, schema)
    codes = [{f.code for f in fl} for fl in flags]
    read = [tables_read(sql, schema) for _, sql in items]
    needs_filter = [i for i, ts in enumerate(read) if any(soft_delete_column(t) for t in ts)]
    filtered = [i for i in needs_filter if "missing_soft_delete_filter" not in codes[i]]
    n = len(items)
    return QualityMetrics(
        pairs=n,
        bookkeeping=_share(sum("bookkeeping_subject" in c for c in codes), n, 0.0),
        soft_delete_needed=len(needs_filter),
        soft_delete_filtered=_share(len(filtered), len(needs_filter), 1.0),
        joined=_share(sum(len(ts) >= 2 for ts in read), n, 0.0),
        raw_identifiers=_share(sum("raw_identifier_in_question" in c for c in codes), n, 0.0),
        duplicates=sum("duplicate_question" in c for c in codes),
        summed_rates=_share(sum("summed_rate" in c for c in codes), n, 0.0),
        detours=_share(sum("detour_join" in c for c in codes), n, 0.0),
    )

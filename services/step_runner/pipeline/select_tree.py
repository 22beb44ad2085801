"""The one SELECT of a pair's statement as a pglast tree, with its table references resolved against the catalog.

What the quality pass (pair_quality.py) and its repairs (pair_repairs.py) walk: `parse`, `walk`, the table
references of every SELECT (`SelectTree`), and `live_predicate`, which recognises a live-rows condition.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql

from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.column_roles import SOFT_DELETE_FLAG_COLUMNS, SOFT_DELETE_TIME_COLUMNS
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.sql_gate import MAX_STATEMENT_CHARS, _children, _names


def parse(sql: str) -> ast.SelectStmt | None:
    """The one SELECT of `sql`, None when it does not parse as one (the gate judges those)."""
    if len(sql) > MAX_STATEMENT_CHARS or "\x00" in sql:
        return None
    try:
        raw = parse_sql(sql)
    except ParseError:
        return None
    if len(raw) != 1 or not isinstance(raw[0].stmt, ast.SelectStmt):
        return None
    stmt: ast.SelectStmt = raw[0].stmt
    return stmt


def walk(node: ast.Node, skip: Any = None) -> Iterator[ast.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if skip is not None and skip(current):
            continue
        stack.extend(_children(current))


def walk_any(value: Any) -> Iterator[ast.Node]:
    """Every node under a node or a tuple of nodes (`x IN (a, b)` holds a tuple)."""
    for item in value if isinstance(value, tuple | list) else (value,):
        if isinstance(item, ast.Node):
            yield from walk(item)


def selects(stmt: ast.SelectStmt) -> Iterator[ast.SelectStmt]:
    for node in walk(stmt):
        if isinstance(node, ast.SelectStmt):
            yield node


def column_parts(ref: ast.ColumnRef) -> tuple[str | None, str] | None:
    fields = ref.fields or ()
    if not fields or isinstance(fields[-1], ast.A_Star):
        return None
    names = _names(fields)
    if len(names) != len(fields):
        return None
    return (names[-2] if len(names) >= 2 else None), names[-1]


@dataclass
class TableRef:
    """One table reference: the name a query uses for it (alias or table name) and the catalog table."""

    alias: str
    table: TableInfo
    node: ast.RangeVar
    select: ast.SelectStmt


@dataclass
class SelectTree:
    stmt: ast.SelectStmt
    schema: SchemaIndex
    ranges: list[TableRef] = field(default_factory=list)

    def __post_init__(self) -> None:
        for sel in selects(self.stmt):
            for item in sel.fromClause or ():
                for node in walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect | ast.SubLink)):
                    if isinstance(node, ast.RangeVar):
                        table = self.schema.table(node.schemaname, node.relname)
                        if table is not None:
                            alias = node.alias.aliasname if node.alias else node.relname
                            self.ranges.append(TableRef(str(alias), table, node, sel))

    def resolve(self, qualifier: str | None, column: str) -> TableInfo | None:
        low = column.lower()
        for r in self.ranges:
            if qualifier is not None and qualifier.lower() not in {r.alias.lower(), r.table.name.lower()}:
                continue
            if any(c.name.lower() == low for c in r.table.columns):
                return r.table
        return None


def const_value(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        for attr in ("boolval", "ival", "sval"):
            if hasattr(val, attr):
                return getattr(val, attr)
    return None


def live_predicate(node: ast.Node) -> tuple[str | None, str] | None:
    """(qualifier, column) when `node` keeps only live rows of a soft-delete column, else None."""
    ref: Any = None
    if isinstance(node, ast.NullTest) and node.nulltesttype == enums.NullTestType.IS_NULL:
        ref = node.arg
        kinds = SOFT_DELETE_TIME_COLUMNS
    elif isinstance(node, ast.BooleanTest) and node.booltesttype in (
        enums.BoolTestType.IS_FALSE,
        enums.BoolTestType.IS_NOT_TRUE,
    ):
        ref, kinds = node.arg, SOFT_DELETE_FLAG_COLUMNS
    elif (
        isinstance(node, ast.BoolExpr)
        and node.boolop == enums.BoolExprType.NOT_EXPR
        and len(node.args or ()) == 1
    ):
        ref, kinds = (node.args or (None,))[0], SOFT_DELETE_FLAG_COLUMNS
    elif isinstance(node, ast.A_Expr) and node.kind == enums.A_Expr_Kind.AEXPR_OP:
        op = "".join(_names(node.name))
        for side, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
            if isinstance(side, ast.ColumnRef):
                value = const_value(other)
                live = {False, "0", "f", "false", "n", "N"}
                dead = {True, "1", "t", "true", "y", "Y"}
                if (op == "=" and value in live) or (op in {"<>", "!="} and value in dead):
                    ref = side
        kinds = SOFT_DELETE_FLAG_COLUMNS
    if not isinstance(ref, ast.ColumnRef):
        return None
    parts = column_parts(ref)
    if parts is None or parts[1].lower() not in kinds:
        return None
    return parts

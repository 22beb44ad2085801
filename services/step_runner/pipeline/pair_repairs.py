"""Mechanical repairs of flagged pairs, where one exists: LIMIT for a listing, the live-rows condition for
a missing soft-delete filter, the business columns for a single-table `SELECT *`. The rewriting only;
when they are tried and accepted is decided in sql_repair.py."""

from __future__ import annotations

from typing import Any

from pglast import ast, enums
from pglast.stream import RawStream

from services.step_runner.pipeline.column_roles import column_role, live_condition, soft_delete_column
from services.step_runner.pipeline.pair_quality import LISTING_LIMIT
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.select_tree import SelectTree, TableRef, live_predicate, parse, walk
from shared.quality_flags import QualityFlag


def _where_of(sql: str) -> Any:
    stmt = parse(f"SELECT 1 WHERE {sql}")
    return stmt.whereClause if stmt is not None else None


def _and(left: Any, right: Any) -> Any:
    return right if left is None else ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=(left, right))


def _outer_join_of(r: TableRef) -> ast.JoinExpr | None:
    """The innermost outer join whose nullable side holds the table reference, if any."""
    found = None
    for item in r.select.fromClause or ():
        for node in walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect | ast.SubLink)):
            if not isinstance(node, ast.JoinExpr):
                continue
            sides: dict[Any, tuple[Any, ...]] = {
                enums.JoinType.JOIN_LEFT: (node.rarg,),
                enums.JoinType.JOIN_RIGHT: (node.larg,),
                enums.JoinType.JOIN_FULL: (node.larg, node.rarg),
            }
            nullable = sides.get(node.jointype, ())
            if any(side is not None and any(n is r.node for n in walk(side)) for side in nullable):
                found = node  # the walk reaches inner joins after outer ones
    return found


def deterministic_fix(sql: str, code: QualityFlag, schema: SchemaIndex) -> str | None:
    """The statement with `code` fixed without an LLM, or None when no mechanical fix exists."""
    stmt = parse(sql)
    if stmt is None:
        return None
    tree = SelectTree(stmt, schema)
    if code == "listing_without_limit" and stmt.limitCount is None:
        return f"{sql.rstrip().rstrip(';').rstrip()} LIMIT {LISTING_LIMIT}"
    if code == "missing_soft_delete_filter":
        live = {
            (q.lower() if q else None, c.lower())
            for n in walk(stmt)
            if (p := live_predicate(n))
            for q, c in [p]
        }
        changed = False
        for r in tree.ranges:
            col = soft_delete_column(r.table)
            if col is None or live & {(None, col.name.lower()), (r.alias.lower(), col.name.lower())}:
                continue
            pred = _where_of(f'"{r.alias}"."{col.name}" {live_condition(col)}')
            if pred is None or r.select.op != enums.SetOperation.SETOP_NONE:
                return None
            join = _outer_join_of(r)
            if join is not None:  # the nullable side of an outer join: in ON, or WHERE would drop its NULLs
                join.quals = _and(join.quals, pred)
            else:
                r.select.whereClause = _and(r.select.whereClause, pred)
            changed = True
        return RawStream()(stmt) if changed else None
    if code == "select_star" and len(tree.ranges) == 1 and stmt.op == enums.SetOperation.SETOP_NONE:
        r = tree.ranges[0]
        cols = [c.name for c in r.table.columns if column_role(c.name, r.table) is None]
        targets = list(stmt.targetList or ())
        star = [
            t
            for t in targets
            if isinstance(t.val, ast.ColumnRef) and isinstance((t.val.fields or (None,))[-1], ast.A_Star)
        ]
        if r.select is not stmt or not cols or len(star) != 1:
            return None
        listed = parse("SELECT " + ", ".join(f'"{r.alias}"."{c}"' for c in cols) + f' FROM "{r.table.name}"')
        if listed is None:
            return None
        at = targets.index(star[0])
        stmt.targetList = tuple(targets[:at]) + tuple(listed.targetList or ()) + tuple(targets[at + 1 :])
        return RawStream()(stmt)
    return None

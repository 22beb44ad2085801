"""Whether a question/SQL pair is one a Text2SQL team would keep: flags judged on the parse tree.

Step 3 asks this module about every pair, whatever the provider, after the SQL gate; the offline
generator and `make quality` ask it too. It is pure: the pair and the catalog in, flags out.

Flags (`QualityFlag`, in shared/quality_flags.py with the default action of each):
- `bookkeeping_subject`: the statement selects, groups, orders or filters by an audit or technical column
  (who created/updated/deleted a row, change times, ETL columns; see column_roles) or reads a soft-delete
  column other than to keep live rows. Nobody asks a Text2SQL assistant who created a row.
- `missing_soft_delete_filter`: a table with a soft-delete column is read without keeping live rows
  (`t.delete_ts IS NULL`, `is_deleted = false`, `NOT is_deleted`, `del_flag = 0`, ...) anywhere in the
  statement for that table reference.
- `unjoined_multi_table`: a cartesian product: `CROSS JOIN` / a join without condition between tables, or a
  comma-separated FROM whose tables no WHERE comparison connects. Subqueries and set-returning functions in
  FROM are not judged (`FROM t, (SELECT sum(x) ...) s` is a legitimate share-of-total).
- `listing_without_limit`: the outermost query returns rows of a table (no aggregate, no GROUP BY, no
  DISTINCT, no equality on the single table's primary key) without `LIMIT` / `FETCH FIRST`.
- `select_star`: `*` or `t.*` in a select list (not inside `EXISTS (...)`, where it is idiomatic).
- `duplicate_question`: the question repeats an earlier pair's question, after normalising width, case,
  punctuation and spaces, or nearly so (character-bigram Jaccard >= 0.9 with the same numbers), see
  `find_duplicates`. Judged over the whole set, the first occurrence is kept.
- `summed_rate`: `SUM` over a column that is a per-row rate (a price per unit, a rating, a score, a
  percentage, a ratio; see column_roles.is_rate), cast or not: "the total rating of a brand's reviews"
  means nothing, its average does. A sum of an expression (`SUM(quantity * unit_price)`) is an amount.
- `detour_join`: a table joined only to connect two tables that have a relation of their own, which the
  statement does not use: "the orders of a customer" via the customer's addresses (orders.customer_id
  says it directly); see join_detours.py.
- `raw_identifier_in_question`: the question spells a table or column name verbatim (`customer_id`,
  `bss_company`), the prefix every table shares (`bss`), or, in a Chinese question, the split English words
  of an identifier of two or more words (`bss business day data`, `created by`). The language is that of
  the text outside quoted values: "How many service areas have service state '关闭'?" is English.

The parse tree it judges is built in select_tree.py, the catalog index in schema_index.py, duplicates are
found by question_duplicates.py, and pair_repairs.py gives the offline repair where one exists.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

from pglast import ast, enums

from services.step_runner.pipeline.column_roles import (
    column_role,
    is_numeric,
    is_rate,
    live_condition,
    soft_delete_column,
)
from services.step_runner.pipeline.join_detours import detours
from services.step_runner.pipeline.question_duplicates import find_duplicates
from services.step_runner.pipeline.schema_index import SchemaIndex
from services.step_runner.pipeline.select_tree import (
    SelectTree,
    column_parts,
    const_value,
    live_predicate,
    parse,
    selects,
    walk,
    walk_any,
)
from services.step_runner.pipeline.sql_gate import _names
from shared.quality_flags import QUALITY_FLAGS, QualityFlag

# rows a repaired listing returns
LISTING_LIMIT = 100
AGGREGATES = frozenset(
    """
    count sum avg min max every bool_and bool_or bit_and bit_or string_agg array_agg json_agg jsonb_agg
    json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp corr covar_pop
    covar_samp percentile_cont percentile_disc mode any_value regr_count regr_slope regr_intercept regr_r2
    """.split()
)


@dataclass(frozen=True)
class Flag:
    """One quality finding about a pair; `detail` says where, in words a repair prompt can use."""

    code: QualityFlag
    detail: str


# --- the flags --------------------------------------------------------------------------------------


def _bookkeeping(tree: SelectTree) -> list[Flag]:
    found: dict[str, str] = {}

    def skip(node: ast.Node) -> bool:
        return live_predicate(node) is not None or isinstance(node, ast.JoinExpr)

    nodes = list(walk(tree.stmt, skip=skip))
    # a join's condition is plumbing, not a subject: walk the join's sides but not its quals
    for join in [n for n in walk(tree.stmt) if isinstance(n, ast.JoinExpr)]:
        for side in (join.larg, join.rarg):
            if side is not None:
                nodes.extend(walk(side, skip=skip))
    for node in nodes:
        if not isinstance(node, ast.ColumnRef):
            continue
        parts = column_parts(node)
        if parts is None:
            continue
        table = tree.resolve(*parts)
        if table is None:
            continue
        role = column_role(parts[1], table)
        if role is not None:
            found.setdefault(f"{table.name}.{parts[1]}", role.replace("_", " "))
    if not found:
        return []
    shown = ", ".join(f"{col} ({role})" for col, role in sorted(found.items()))
    return [Flag("bookkeeping_subject", f"the statement is about bookkeeping columns: {shown}")]


def _missing_soft_delete(tree: SelectTree) -> list[Flag]:
    live = {p for n in walk(tree.stmt) if (p := live_predicate(n)) is not None}
    flags = []
    for r in tree.ranges:
        col = soft_delete_column(r.table)
        if col is None:
            continue
        keys = {
            (None, col.name.lower()),
            (r.alias.lower(), col.name.lower()),
            (r.table.name.lower(), col.name.lower()),
        }
        if keys & {(q.lower() if q else None, c.lower()) for q, c in live}:
            continue
        flags.append(
            Flag(
                "missing_soft_delete_filter",
                f"{r.table.name} is read without excluding deleted rows: add {r.alias}.{col.name} "
                f"{live_condition(col)}",
            )
        )
    return [Flag("missing_soft_delete_filter", "; ".join(f.detail for f in flags))] if flags else []


def _unit_names(item: ast.Node, tree: SelectTree) -> set[str] | None:
    """The names by which columns of a FROM item are qualified; None for subqueries and functions."""
    if isinstance(item, ast.RangeSubselect | ast.RangeFunction | ast.RangeTableFunc):
        return None
    names: set[str] = set()
    for node in walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect)):
        if isinstance(node, ast.RangeVar):
            names.add(str(node.alias.aliasname if node.alias else node.relname).lower())
            names.add(str(node.relname).lower())
    return names


def _unjoined(tree: SelectTree) -> list[Flag]:
    flags = []
    for sel in selects(tree.stmt):
        for node in walk(sel):
            if (
                isinstance(node, ast.JoinExpr)
                and node.quals is None
                and not node.usingClause
                and not node.isNatural
            ):
                sides = [
                    _unit_names(side, tree) if side is not None else None for side in (node.larg, node.rarg)
                ]
                if all(s for s in sides):
                    shown = " and ".join(sorted(next(iter(sorted(s))) for s in sides if s))
                    flags.append(
                        Flag("unjoined_multi_table", f"cartesian product: {shown} joined without condition")
                    )
        units = [u for item in sel.fromClause or () if (u := _unit_names(item, tree))]
        if len(units) < 2:
            continue
        linked = list(range(len(units)))

        def find(i: int, linked: list[int] = linked) -> int:
            while linked[i] != i:
                i = linked[i]
            return i

        def unit_of(ref: ast.ColumnRef, units: list[set[str]] = units) -> int | None:
            parts = column_parts(ref)
            if parts is None:
                return None
            qualifier, column = parts
            for i, names in enumerate(units):
                if qualifier is not None and qualifier.lower() in names:
                    return i
            if qualifier is None:
                hits = [
                    i
                    for i, names in enumerate(units)
                    for r in tree.ranges
                    if r.alias.lower() in names
                    and any(c.name.lower() == column.lower() for c in r.table.columns)
                ]
                return hits[0] if len(set(hits)) == 1 else None
            return None

        for node in walk(sel.whereClause) if sel.whereClause is not None else ():
            if isinstance(node, ast.A_Expr) and node.lexpr is not None and node.rexpr is not None:
                left = {unit_of(n) for n in walk_any(node.lexpr) if isinstance(n, ast.ColumnRef)} - {None}
                right = {unit_of(n) for n in walk_any(node.rexpr) if isinstance(n, ast.ColumnRef)} - {None}
                for a in left:
                    for b in right:
                        if a is not None and b is not None:
                            linked[find(a)] = find(b)
        if len({find(i) for i in range(len(units))}) > 1:
            shown = ", ".join(sorted(min(u) for u in units))
            flags.append(
                Flag("unjoined_multi_table", f"tables {shown} are listed in FROM but not all joined")
            )
    return flags[:1]


def _aggregates(sel: ast.SelectStmt) -> bool:
    def skip(n: ast.Node) -> bool:
        return isinstance(n, ast.SubLink | ast.RangeSubselect)

    for target in sel.targetList or ():
        for node in walk(target, skip=skip):
            if isinstance(node, ast.FuncCall) and node.over is None:
                names = _names(node.funcname)
                if names and names[-1].lower() in AGGREGATES:
                    return True
    return False


def _by_primary_key(sel: ast.SelectStmt, tree: SelectTree) -> bool:
    ranges = [r for r in tree.ranges if r.select is sel]
    if len(ranges) != 1 or sel.whereClause is None:
        return False
    table = ranges[0].table
    pk = list(table.primary_key) or [c.name for c in table.columns if c.is_primary_key]
    if len(pk) != 1:
        return False
    for node in walk(sel.whereClause):
        if isinstance(node, ast.A_Expr) and "".join(_names(node.name)) == "=":
            for side, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
                parts = column_parts(side) if isinstance(side, ast.ColumnRef) else None
                if parts and parts[1].lower() == pk[0].lower() and const_value(other) is not None:
                    return True
    return False


def _is_listing(sel: ast.SelectStmt, tree: SelectTree) -> bool:
    if sel.op != enums.SetOperation.SETOP_NONE:
        return any(_is_listing(arm, tree) for arm in (sel.larg, sel.rarg) if arm is not None)
    if not sel.fromClause or sel.groupClause or sel.havingClause or sel.distinctClause:
        return False
    return not _aggregates(sel) and not _by_primary_key(sel, tree)


def _listing(tree: SelectTree) -> list[Flag]:
    stmt = tree.stmt
    if stmt.limitCount is not None or not _is_listing(stmt, tree):
        return []
    return [Flag("listing_without_limit", f"a listing of rows without LIMIT: add LIMIT {LISTING_LIMIT}")]


def _select_star(tree: SelectTree) -> list[Flag]:
    def skip(n: ast.Node) -> bool:
        return isinstance(n, ast.SubLink) and n.subLinkType == enums.SubLinkType.EXISTS_SUBLINK

    for node in walk(tree.stmt, skip=skip):
        if isinstance(node, ast.ResTarget) and isinstance(node.val, ast.ColumnRef):
            fields = node.val.fields or ()
            if fields and isinstance(fields[-1], ast.A_Star):
                return [
                    Flag(
                        "select_star", "SELECT * returns every column: name the columns the question asks for"
                    )
                ]
    return []


def _detour(tree: SelectTree) -> list[Flag]:
    return [Flag("detour_join", detail) for detail in detours(tree, tree.schema.relations)]


def _summed_rate(tree: SelectTree) -> list[Flag]:
    found: list[str] = []
    for node in walk(tree.stmt):
        if not (
            isinstance(node, ast.FuncCall) and [n.lower() for n in _names(node.funcname)][-1:] == ["sum"]
        ):
            continue
        arg = node.args[0] if node.args and len(node.args) == 1 else None
        while isinstance(arg, ast.TypeCast):
            arg = arg.arg
        parts = column_parts(arg) if isinstance(arg, ast.ColumnRef) else None
        table = tree.resolve(*parts) if parts else None
        if parts is None or table is None:
            continue
        col = next(c for c in table.columns if c.name.lower() == parts[1].lower())
        if is_numeric(col) and is_rate(col.name):
            found.append(f"{table.name}.{col.name}")
    if not found:
        return []
    shown = ", ".join(dict.fromkeys(found))
    return [Flag("summed_rate", f"sums a per-row rate ({shown}): its average answers a business question")]


_WORD = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_CJK = re.compile(r"[\u3400-\u9fff]")
# A quoted value: '关闭', "关闭", “关闭”, ‘关闭’, 「关闭」, 『关闭』, «关闭». A straight single quote opens or
# closes one only away from Latin letters and digits, so the apostrophe of "area's" is not a quote.
_QUOTED = re.compile(
    r"(?<![A-Za-z0-9])'[^'\n]*'(?![A-Za-z0-9])|\"[^\"\n]*\"|“[^”\n]*”|‘[^’\n]*’|「[^」\n]*」|『[^』\n]*』|«[^»\n]*»"
)


def is_chinese_question(question: str) -> bool:
    """Whether the question is written in Chinese: a Chinese character outside quoted values (an English
    question may quote a Chinese value, "... service state '关闭'?")."""
    return bool(_CJK.search(_QUOTED.sub(" ", unicodedata.normalize("NFKC", question))))


def raw_identifiers(question: str, schema: SchemaIndex) -> list[str]:
    """The identifiers a question spells verbatim (see the module docstring)."""
    text = unicodedata.normalize("NFKC", question)
    found = [w for w in _WORD.findall(text) if w.lower() in schema.identifiers]
    found += [w for w in _WORD.findall(text) if w.lower() in schema.shared_prefixes]
    if is_chinese_question(text):
        runs = [" ".join(m.lower().split()) for m in re.findall(r"[A-Za-z][A-Za-z ]*[A-Za-z]", text)]
        for run in runs:
            found += [s for s in schema.split_identifiers if re.search(rf"(^| ){re.escape(s)}( |$)", run)]
    return list(dict.fromkeys(found))


def _raw_identifier(question: str, schema: SchemaIndex) -> list[Flag]:
    found = raw_identifiers(question, schema)
    if not found:
        return []
    return [Flag("raw_identifier_in_question", f"the question spells identifiers: {', '.join(found[:5])}")]


def assess(question: str, sql: str, schema: SchemaIndex) -> list[Flag]:
    """The flags of one pair, except `duplicate_question` (see `assess_all`). A statement that does not
    parse gets only the question's flags: the SQL gate reports it."""
    flags = _raw_identifier(question, schema)
    stmt = parse(sql)
    if stmt is None:
        return flags
    tree = SelectTree(stmt, schema)
    checks = (_bookkeeping, _missing_soft_delete, _unjoined, _listing, _select_star, _summed_rate, _detour)
    for check in checks:
        flags.extend(check(tree))
    return sorted(flags, key=lambda f: QUALITY_FLAGS.index(f.code))


def assess_all(pairs: list[tuple[str, str]], schema: SchemaIndex) -> list[list[Flag]]:
    """Flags of every (question, sql) pair, duplicates included (the first occurrence is not flagged)."""
    flags = [assess(q, s, schema) for q, s in pairs]
    for i, j in find_duplicates([q for q, _ in pairs]).items():
        flags[i].append(Flag("duplicate_question", f"repeats question #{j + 1}: {pairs[j][0][:80]}"))
    return flags


def drop_verdicts(
    pairs: list[tuple[str, str]], schema: SchemaIndex, actions: Mapping[QualityFlag, str]
) -> dict[int, list[QualityFlag]]:
    """index -> the flags whose action is `drop`, for the pairs that must not reach the training store.
    Duplicates are judged among the pairs no other drop flag removes (the first occurrence stays), as in
    step 3, so a pair file step 3 rewrote gives no verdict here."""
    flags = [assess(q, s, schema) for q, s in pairs]
    out = {i: [f.code for f in fl if actions.get(f.code) == "drop"] for i, fl in enumerate(flags)}
    out = {i: codes for i, codes in out.items() if codes}
    if actions.get("duplicate_question") == "drop":
        survivors = [i for i in range(len(pairs)) if i not in out]
        for i, _ in find_duplicates([pairs[k][0] for k in survivors]).items():
            out[survivors[i]] = ["duplicate_question"]
    return out

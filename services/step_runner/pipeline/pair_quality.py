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
- `raw_identifier_in_question`: the question spells a table or column name verbatim (`customer_id`,
  `bss_company`), the prefix every table shares (`bss`), or, in a Chinese question, the split English words
  of an identifier of two or more words (`bss business day data`, `created by`). The language is that of
  the text outside quoted values: "How many service areas have service state '关闭'?" is English.

`deterministic_fix` gives the offline repair where one exists: LIMIT for a listing, the live-rows condition
for a missing soft-delete filter, the business columns for a single-table `SELECT *`.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from pglast import ast, enums
from pglast.parser import ParseError, parse_sql
from pglast.stream import RawStream

from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.column_roles import (
    SOFT_DELETE_FLAG_COLUMNS,
    SOFT_DELETE_TIME_COLUMNS,
    column_role,
    live_condition,
    soft_delete_column,
)
from services.step_runner.pipeline.sql_gate import MAX_STATEMENT_CHARS, _children, _names
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
_DUP_THRESHOLD = 0.9


@dataclass(frozen=True)
class Flag:
    """One quality finding about a pair; `detail` says where, in words a repair prompt can use."""

    code: QualityFlag
    detail: str


class SchemaIndex:
    """The catalog's tables by name, and the identifiers a question must not spell."""

    def __init__(self, tables: list[TableInfo]) -> None:
        self.tables = tables
        self._by_name: dict[str, TableInfo] = {}
        for t in tables:
            self._by_name.setdefault(t.qualified_name.lower(), t)
            self._by_name.setdefault(f"{t.schema_name}.{t.name}".lower(), t)
            self._by_name.setdefault(t.name.lower(), t)
        prefixes = [t.name.split("_", 1)[0].lower() for t in tables if "_" in t.name]
        # a prefix every table carries (`bss_`, `t_`): `order` of order_items/order_status is a word
        common = {p for p in prefixes if len(tables) >= 2 and prefixes.count(p) == len(tables)}
        self.shared_prefixes = frozenset(p for p in common if len(p) <= 5)
        names = {t.name for t in tables} | {c.name for t in tables for c in t.columns}
        self.identifiers = frozenset(n.lower() for n in names if "_" in n or re.search(r"[a-z][A-Z]", n))
        self.split_identifiers = frozenset(
            " ".join(_split(n)) for n in names if len(_split(n)) >= 2 and all(w.isascii() for w in _split(n))
        )

    def table(self, schema: str | None, name: str | None) -> TableInfo | None:
        if not name:
            return None
        key = f"{schema}.{name}".lower() if schema else name.lower()
        return self._by_name.get(key)


def _split(identifier: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return [w for w in re.split(r"[_\s]+", spaced.lower()) if w]


# --- the parse tree ---------------------------------------------------------------------------------


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


def _walk(node: ast.Node, skip: Any = None) -> Iterator[ast.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        if skip is not None and skip(current):
            continue
        stack.extend(_children(current))


def _walk_any(value: Any) -> Iterator[ast.Node]:
    """Every node under a node or a tuple of nodes (`x IN (a, b)` holds a tuple)."""
    for item in value if isinstance(value, tuple | list) else (value,):
        if isinstance(item, ast.Node):
            yield from _walk(item)


def _selects(stmt: ast.SelectStmt) -> Iterator[ast.SelectStmt]:
    for node in _walk(stmt):
        if isinstance(node, ast.SelectStmt):
            yield node


def _column_parts(ref: ast.ColumnRef) -> tuple[str | None, str] | None:
    fields = ref.fields or ()
    if not fields or isinstance(fields[-1], ast.A_Star):
        return None
    names = _names(fields)
    if len(names) != len(fields):
        return None
    return (names[-2] if len(names) >= 2 else None), names[-1]


@dataclass
class _Range:
    """One table reference: the name a query uses for it (alias or table name) and the catalog table."""

    alias: str
    table: TableInfo
    node: ast.RangeVar
    select: ast.SelectStmt


@dataclass
class _Tree:
    stmt: ast.SelectStmt
    schema: SchemaIndex
    ranges: list[_Range] = field(default_factory=list)

    def __post_init__(self) -> None:
        for sel in _selects(self.stmt):
            for item in sel.fromClause or ():
                for node in _walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect | ast.SubLink)):
                    if isinstance(node, ast.RangeVar):
                        table = self.schema.table(node.schemaname, node.relname)
                        if table is not None:
                            alias = node.alias.aliasname if node.alias else node.relname
                            self.ranges.append(_Range(str(alias), table, node, sel))

    def resolve(self, qualifier: str | None, column: str) -> TableInfo | None:
        low = column.lower()
        for r in self.ranges:
            if qualifier is not None and qualifier.lower() not in {r.alias.lower(), r.table.name.lower()}:
                continue
            if any(c.name.lower() == low for c in r.table.columns):
                return r.table
        return None


def _const_value(node: Any) -> Any:
    while isinstance(node, ast.TypeCast):
        node = node.arg
    if isinstance(node, ast.A_Const) and not node.isnull:
        val = node.val
        for attr in ("boolval", "ival", "sval"):
            if hasattr(val, attr):
                return getattr(val, attr)
    return None


def _live_predicate(node: ast.Node) -> tuple[str | None, str] | None:
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
                value = _const_value(other)
                live = {False, "0", "f", "false", "n", "N"}
                dead = {True, "1", "t", "true", "y", "Y"}
                if (op == "=" and value in live) or (op in {"<>", "!="} and value in dead):
                    ref = side
        kinds = SOFT_DELETE_FLAG_COLUMNS
    if not isinstance(ref, ast.ColumnRef):
        return None
    parts = _column_parts(ref)
    if parts is None or parts[1].lower() not in kinds:
        return None
    return parts


# --- the flags --------------------------------------------------------------------------------------


def _bookkeeping(tree: _Tree) -> list[Flag]:
    found: dict[str, str] = {}

    def skip(node: ast.Node) -> bool:
        return _live_predicate(node) is not None or isinstance(node, ast.JoinExpr)

    nodes = list(_walk(tree.stmt, skip=skip))
    # a join's condition is plumbing, not a subject: walk the join's sides but not its quals
    for join in [n for n in _walk(tree.stmt) if isinstance(n, ast.JoinExpr)]:
        for side in (join.larg, join.rarg):
            if side is not None:
                nodes.extend(_walk(side, skip=skip))
    for node in nodes:
        if not isinstance(node, ast.ColumnRef):
            continue
        parts = _column_parts(node)
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


def _missing_soft_delete(tree: _Tree) -> list[Flag]:
    live = {p for n in _walk(tree.stmt) if (p := _live_predicate(n)) is not None}
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


def _unit_names(item: ast.Node, tree: _Tree) -> set[str] | None:
    """The names by which columns of a FROM item are qualified; None for subqueries and functions."""
    if isinstance(item, ast.RangeSubselect | ast.RangeFunction | ast.RangeTableFunc):
        return None
    names: set[str] = set()
    for node in _walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect)):
        if isinstance(node, ast.RangeVar):
            names.add(str(node.alias.aliasname if node.alias else node.relname).lower())
            names.add(str(node.relname).lower())
    return names


def _unjoined(tree: _Tree) -> list[Flag]:
    flags = []
    for sel in _selects(tree.stmt):
        for node in _walk(sel):
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
            parts = _column_parts(ref)
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

        for node in _walk(sel.whereClause) if sel.whereClause is not None else ():
            if isinstance(node, ast.A_Expr) and node.lexpr is not None and node.rexpr is not None:
                left = {unit_of(n) for n in _walk_any(node.lexpr) if isinstance(n, ast.ColumnRef)} - {None}
                right = {unit_of(n) for n in _walk_any(node.rexpr) if isinstance(n, ast.ColumnRef)} - {None}
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
        for node in _walk(target, skip=skip):
            if isinstance(node, ast.FuncCall) and node.over is None:
                names = _names(node.funcname)
                if names and names[-1].lower() in AGGREGATES:
                    return True
    return False


def _by_primary_key(sel: ast.SelectStmt, tree: _Tree) -> bool:
    ranges = [r for r in tree.ranges if r.select is sel]
    if len(ranges) != 1 or sel.whereClause is None:
        return False
    table = ranges[0].table
    pk = list(table.primary_key) or [c.name for c in table.columns if c.is_primary_key]
    if len(pk) != 1:
        return False
    for node in _walk(sel.whereClause):
        if isinstance(node, ast.A_Expr) and "".join(_names(node.name)) == "=":
            for side, other in ((node.lexpr, node.rexpr), (node.rexpr, node.lexpr)):
                parts = _column_parts(side) if isinstance(side, ast.ColumnRef) else None
                if parts and parts[1].lower() == pk[0].lower() and _const_value(other) is not None:
                    return True
    return False


def _is_listing(sel: ast.SelectStmt, tree: _Tree) -> bool:
    if sel.op != enums.SetOperation.SETOP_NONE:
        return any(_is_listing(arm, tree) for arm in (sel.larg, sel.rarg) if arm is not None)
    if not sel.fromClause or sel.groupClause or sel.havingClause or sel.distinctClause:
        return False
    return not _aggregates(sel) and not _by_primary_key(sel, tree)


def _listing(tree: _Tree) -> list[Flag]:
    stmt = tree.stmt
    if stmt.limitCount is not None or not _is_listing(stmt, tree):
        return []
    return [Flag("listing_without_limit", f"a listing of rows without LIMIT: add LIMIT {LISTING_LIMIT}")]


def _select_star(tree: _Tree) -> list[Flag]:
    def skip(n: ast.Node) -> bool:
        return isinstance(n, ast.SubLink) and n.subLinkType == enums.SubLinkType.EXISTS_SUBLINK

    for node in _walk(tree.stmt, skip=skip):
        if isinstance(node, ast.ResTarget) and isinstance(node.val, ast.ColumnRef):
            fields = node.val.fields or ()
            if fields and isinstance(fields[-1], ast.A_Star):
                return [
                    Flag(
                        "select_star", "SELECT * returns every column: name the columns the question asks for"
                    )
                ]
    return []


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
    tree = _Tree(stmt, schema)
    for check in (_bookkeeping, _missing_soft_delete, _unjoined, _listing, _select_star):
        flags.extend(check(tree))
    return sorted(flags, key=lambda f: QUALITY_FLAGS.index(f.code))


# --- duplicates -------------------------------------------------------------------------------------


def normalise_question(question: str) -> str:
    text = unicodedata.normalize("NFKC", question).lower()
    return "".join(ch for ch in text if ch.isalnum())


def _bigrams(text: str) -> frozenset[str]:
    return frozenset(text[i : i + 2] for i in range(len(text) - 1)) or frozenset({text})


def find_duplicates(questions: list[str]) -> dict[int, int]:
    """index -> the index of the earlier question it repeats (same normalised text, or bigram Jaccard >=
    0.9 with the same numbers in the same order)."""
    norm = [normalise_question(q) for q in questions]
    grams = [_bigrams(n) for n in norm]
    digits = [tuple(re.findall(r"\d+", n)) for n in norm]
    first: dict[str, int] = {}
    out: dict[int, int] = {}
    kept: list[int] = []
    for i, n in enumerate(norm):
        if n in first:
            out[i] = first[n]
            continue
        for j in kept:
            if digits[i] != digits[j] or min(len(norm[i]), len(norm[j])) < _DUP_THRESHOLD * max(
                len(norm[i]), len(norm[j])
            ):
                continue
            inter = len(grams[i] & grams[j])
            if inter / len(grams[i] | grams[j]) >= _DUP_THRESHOLD:
                out[i] = j
                break
        else:
            first[n] = i
            kept.append(i)
    return out


def assess_all(pairs: list[tuple[str, str]], schema: SchemaIndex) -> list[list[Flag]]:
    """Flags of every (question, sql) pair, duplicates included (the first occurrence is not flagged)."""
    flags = [assess(q, s, schema) for q, s in pairs]
    for i, j in find_duplicates([q for q, _ in pairs]).items():
        flags[i].append(Flag("duplicate_question", f"repeats question #{j + 1}: {pairs[j][0][:80]}"))
    return flags


# --- deterministic repairs --------------------------------------------------------------------------


def _where_of(sql: str) -> Any:
    stmt = parse(f"SELECT 1 WHERE {sql}")
    return stmt.whereClause if stmt is not None else None


def _and(left: Any, right: Any) -> Any:
    return right if left is None else ast.BoolExpr(boolop=enums.BoolExprType.AND_EXPR, args=(left, right))


def _outer_join_of(r: _Range) -> ast.JoinExpr | None:
    """The innermost outer join whose nullable side holds the table reference, if any."""
    found = None
    for item in r.select.fromClause or ():
        for node in _walk(item, skip=lambda n: isinstance(n, ast.RangeSubselect | ast.SubLink)):
            if not isinstance(node, ast.JoinExpr):
                continue
            sides: dict[Any, tuple[Any, ...]] = {
                enums.JoinType.JOIN_LEFT: (node.rarg,),
                enums.JoinType.JOIN_RIGHT: (node.larg,),
                enums.JoinType.JOIN_FULL: (node.larg, node.rarg),
            }
            nullable = sides.get(node.jointype, ())
            if any(side is not None and any(n is r.node for n in _walk(side)) for side in nullable):
                found = node  # the walk reaches inner joins after outer ones
    return found


def deterministic_fix(sql: str, code: QualityFlag, schema: SchemaIndex) -> str | None:
    """The statement with `code` fixed without an LLM, or None when no mechanical fix exists."""
    stmt = parse(sql)
    if stmt is None:
        return None
    tree = _Tree(stmt, schema)
    if code == "listing_without_limit" and stmt.limitCount is None:
        return f"{sql.rstrip().rstrip(';').rstrip()} LIMIT {LISTING_LIMIT}"
    if code == "missing_soft_delete_filter":
        live = {
            (q.lower() if q else None, c.lower())
            for n in _walk(stmt)
            if (p := _live_predicate(n))
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

"""The SQL gate: whether a question/SQL pair's statement may be kept, judged by PostgreSQL's own parse tree.

Steps 3 (sql_validation) and 4 (training_load) both ask this module, so nothing reaches the shared
training store that the gate did not pass, whatever `enable_sql_validation` says. A statement passes when

1. libpg_query (through `pglast`) parses it as exactly one plain `SELECT` or `WITH … SELECT`: no other
   statement anywhere in the tree (so no data-modifying CTE), no `SELECT INTO`, no locking clause, no
   `$n` parameter, no system catalog;
2. every function it calls is on an allow-list of side-effect-free built-ins (`pg_catalog.x` and quoted
   names are resolved the way PostgreSQL resolves them; any other schema is refused), rather than missing
   from a deny-list;
3. `EXPLAIN (FORMAT JSON)` plans it in a READ ONLY transaction, and the plan's estimated total cost and
   rows stay within `DP_SQL_MAX_PLAN_COST` / `DP_SQL_MAX_PLAN_ROWS`.

A statement's own error (syntax, unknown column, bad parameter, timeout, limits) is that statement's
verdict. What is not the statement's fault is not its verdict: a table locked by someone else's
transaction (a migration, a `VACUUM FULL`) is waited for, a first timeout (a host too busy to plan in
time) is tried again, and a lost business database or a lock that outlasts the gate's patience is a
retryable step failure.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import asyncpg
from pglast import ast
from pglast.parser import ParseError, parse_sql, scan
from pglast.visitors import referenced_relations

from services.step_runner.executors.base import StepError
from shared.business_db import describe_error

# Side-effect-free built-ins a Text2SQL answer may call. Anything else (pg_sleep, query_to_xml, dblink,
# nextval, set_config, lo_*, pg_read_file, user-defined functions...) is refused by omission.
ALLOWED_FUNCTIONS = frozenset(
    """
    count sum avg min max every bool_and bool_or bit_and bit_or bit_xor string_agg array_agg json_agg
    jsonb_agg json_object_agg jsonb_object_agg stddev stddev_pop stddev_samp variance var_pop var_samp
    corr covar_pop covar_samp regr_avgx regr_avgy regr_count regr_intercept regr_r2 regr_slope regr_sxx
    regr_sxy regr_syy percentile_cont percentile_disc mode any_value
    row_number rank dense_rank percent_rank cume_dist ntile lag lead first_value last_value nth_value
    abs ceil ceiling floor round trunc sign sqrt cbrt power pow exp ln log log10 mod div pi degrees radians
    sin cos tan asin acos atan atan2 sinh cosh tanh width_bucket gcd lcm scale min_scale trim_scale factorial
    random
    length char_length character_length octet_length bit_length lower upper initcap btrim ltrim rtrim lpad
    rpad substring substr left right position strpos replace concat concat_ws split_part reverse repeat
    format translate ascii chr md5 starts_with string_to_array array_to_string regexp_replace regexp_match
    regexp_matches regexp_split_to_array regexp_split_to_table regexp_like regexp_count regexp_substr
    regexp_instr overlay normalize quote_ident quote_literal quote_nullable to_hex encode decode
    to_char to_number to_date to_timestamp
    now date_trunc date_part extract age make_date make_time make_timestamp make_timestamptz make_interval
    justify_days justify_hours justify_interval date_bin clock_timestamp statement_timestamp
    transaction_timestamp timezone isfinite overlaps
    coalesce nullif greatest least num_nulls num_nonnulls
    generate_series unnest array_length array_lower array_upper array_position array_positions
    array_remove array_replace array_append array_prepend array_cat cardinality array_dims
    json_build_object jsonb_build_object json_build_array jsonb_build_array to_json to_jsonb
    json_array_length jsonb_array_length json_extract_path jsonb_extract_path json_extract_path_text
    jsonb_extract_path_text json_typeof jsonb_typeof json_each jsonb_each json_each_text jsonb_each_text
    json_array_elements jsonb_array_elements json_array_elements_text jsonb_array_elements_text
    json_object_keys jsonb_object_keys row_to_json jsonb_strip_nulls jsonb_pretty array_to_json json_object
    jsonb_object jsonb_set jsonb_insert string_to_table generate_subscripts date_add date_subtract sha256
    date text numeric int2 int4 int8 float4 float8 timestamp timestamptz time bool varchar
    """.split()
)
# Schemas whose relations are not business data.
SYSTEM_SCHEMAS = frozenset({"pg_catalog", "information_schema", "pg_toast"})
_STATEMENT_WORDS = {
    "InsertStmt": "INSERT",
    "UpdateStmt": "UPDATE",
    "DeleteStmt": "DELETE",
    "MergeStmt": "MERGE",
}
_COMMENTS = frozenset({"SQL_COMMENT", "C_COMMENT"})
# SQLSTATE classes that mean the connection or the server is gone, not that the statement is wrong.
_CONNECTION_CLASSES = ("08", "53", "57P", "58")
# Longer text is refused before parsing: libpg_query's tree is turned into Python objects recursively, and
# a few hundred thousand characters of `1+1+…` overflow the C stack (the runner would crash, not the
# statement fail). Text2SQL answers are far shorter; at this length the deepest tree parses safely.
MAX_STATEMENT_CHARS = 20_000
# Built-ins first: a business database whose search_path puts its own `lower()` ahead of pg_catalog's must
# not get it called (the planner folds immutable calls). A lock wait ends after LOCK_WAIT_MS, so it is told
# apart from a statement that is slow to plan.
LOCK_WAIT_MS = 1000
_SESSION_FOR_EXPLAIN = (
    "SELECT set_config('search_path', 'pg_catalog, ' || current_setting('search_path'), true),"
    f" set_config('lock_timeout', '{LOCK_WAIT_MS}ms', true)"
)
# How long the gate keeps trying a statement whose tables someone else holds locked (default; the gateway's
# review check, answering an HTTP request, waits less).
LOCK_PATIENCE_SECONDS = 30.0
_LOCK_NOT_AVAILABLE = "55P03"
_QUERY_CANCELED = "57014"  # statement_timeout, or a cancel from the database's administrator


class SqlRejected(ValueError):
    """The statement cannot be kept; `repairable` when an LLM may fix it (a syntax error, say), False
    when it is not a read-only query at all (an LLM must not be asked to make DELETE pass)."""

    def __init__(self, reason: str, *, repairable: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.repairable = repairable


@dataclass(frozen=True)
class PlanLimits:
    max_cost: float
    max_rows: float


@dataclass(frozen=True)
class Verdict:
    """`statement` when valid; else `error` says why, and `rejected` when it must not be repaired."""

    statement: str | None
    error: str | None = None
    rejected: bool = False

    @property
    def valid(self) -> bool:
        return self.statement is not None


def _children(node: ast.Node) -> Iterator[ast.Node]:
    slots: dict[str, Any] = getattr(type(node), "__slots__", {})
    for slot in slots:
        stack: list[Any] = [getattr(node, slot, None)]
        while stack:
            item = stack.pop()
            if isinstance(item, ast.Node):
                yield item
            elif isinstance(item, list | tuple):
                stack.extend(item)


def _walk(node: ast.Node) -> Iterator[ast.Node]:
    stack = [node]
    while stack:
        current = stack.pop()
        yield current
        stack.extend(_children(current))


def _names(items: Any) -> list[str]:
    return [str(item.sval) for item in items or () if isinstance(item, ast.String)]


def _check_function(names: list[str]) -> None:
    *schema, name = names or ["?"]
    shown = ".".join(names)
    if schema and schema != ["pg_catalog"]:
        raise SqlRejected(f"calls {shown}(): only built-in functions are accepted")
    if name not in ALLOWED_FUNCTIONS:
        raise SqlRejected(f"calls {shown}(), which is not on the allow-list of side-effect-free built-ins")


def _check_node(node: ast.Node) -> None:
    kind = type(node).__name__
    if kind.endswith("Stmt") and kind != "SelectStmt":
        word = _STATEMENT_WORDS.get(kind, kind.removesuffix("Stmt").upper())
        raise SqlRejected(f"contains {word}: only a plain SELECT or WITH … SELECT is accepted")
    if isinstance(node, ast.SelectStmt):
        if node.intoClause is not None:
            raise SqlRejected("SELECT INTO creates a table: only a plain SELECT is accepted")
        if node.lockingClause:
            raise SqlRejected("contains FOR UPDATE / FOR SHARE: a row lock is not read-only")
    elif isinstance(node, ast.FuncCall):
        _check_function(_names(node.funcname))
    elif isinstance(node, ast.A_Expr):
        *schema, _ = _names(node.name) or ["?"]
        if schema and schema != ["pg_catalog"]:
            raise SqlRejected(f"uses the operator {'.'.join(_names(node.name))}: only built-in operators")
    elif isinstance(node, ast.ParamRef):
        raise SqlRejected(
            f"uses the parameter ${node.number}: a statement must be self-contained", repairable=True
        )
    elif isinstance(node, ast.RangeVar):
        if (node.schemaname or "").lower() in SYSTEM_SCHEMAS or (
            not node.schemaname and (node.relname or "").startswith("pg_")
        ):
            shown = f"{node.schemaname}.{node.relname}" if node.schemaname else node.relname
            raise SqlRejected(f"reads the system catalog {shown}: only business tables are accepted")


def check_text(sql: str) -> str:
    """The one statement in `sql` (without comments around it or a trailing `;`) when the parse tree
    passes the gate; SqlRejected says why not."""
    if len(sql) > MAX_STATEMENT_CHARS:
        raise SqlRejected(f"is {len(sql):,} characters long: at most {MAX_STATEMENT_CHARS:,} are accepted")
    if "\x00" in sql:
        # libpg_query and the wire protocol both stop at NUL: what follows would be judged by neither
        raise SqlRejected("contains a NUL character")
    try:
        sql.encode("utf-8")
    except UnicodeEncodeError:
        raise SqlRejected("is not valid UTF-8 text (lone surrogate)") from None
    try:
        raw = parse_sql(sql)
    except ParseError as exc:
        raise SqlRejected(f"syntax error: {exc}", repairable=True) from None
    if not raw:
        raise SqlRejected("empty SQL")
    if len(raw) > 1:
        raise SqlRejected(f"{len(raw)} statements: only a single statement is accepted")
    (stmt,) = raw
    if not isinstance(stmt.stmt, ast.SelectStmt):
        kind = type(stmt.stmt).__name__
        word = _STATEMENT_WORDS.get(kind, kind.removesuffix("Stmt").upper())
        raise SqlRejected(f"{word} is not a read-only query: only SELECT and WITH … SELECT are accepted")
    for node in _walk(stmt.stmt):
        _check_node(node)
    start = stmt.stmt_location or 0
    text = sql[start : start + stmt.stmt_len] if stmt.stmt_len else sql[start:]
    tokens = [t for t in scan(text) if t.name not in _COMMENTS]
    return text[: tokens[-1].end + 1] if tokens else text.strip()


def referenced_names(sql: str) -> set[str]:
    """The relations a statement reads, bare and qualified, for picking the DDL of a repair prompt."""
    if len(sql) > MAX_STATEMENT_CHARS or "\x00" in sql:
        return set()
    try:
        relations = referenced_relations(sql)
    except ParseError:
        return set()
    names: set[str] = set()
    for relation in relations:
        names.add(relation.replace('"', ""))
        names.add(relation.rsplit(".", 1)[-1].strip('"'))
    return names


def _plan_limits_error(plan_json: Any, limits: PlanLimits) -> str | None:
    document = json.loads(plan_json) if isinstance(plan_json, str) else plan_json
    plan = document[0]["Plan"]
    cost, rows = float(plan.get("Total Cost", 0)), float(plan.get("Plan Rows", 0))
    if cost > limits.max_cost:
        return f"estimated plan cost {cost:,.0f} exceeds DP_SQL_MAX_PLAN_COST ({limits.max_cost:,.0f})"
    if rows > limits.max_rows:
        return f"estimated {rows:,.0f} result rows exceed DP_SQL_MAX_PLAN_ROWS ({limits.max_rows:,.0f})"
    return None


def _connection_lost(exc: BaseException, acquired: bool) -> bool:
    """Whether an error means the database is gone rather than that the statement is wrong. asyncpg's
    InterfaceError/DataError for a statement it cannot send (parameters, encoding) are the statement's;
    the pool replaces a connection such an error closed."""
    if not acquired or isinstance(
        exc, OSError | TimeoutError | asyncpg.exceptions.ConnectionDoesNotExistError
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        sqlstate = str(getattr(exc, "sqlstate", "") or "")
        return sqlstate.startswith(_CONNECTION_CLASSES) and sqlstate != "08P01"  # 08P01: our message
    return False


class TableLocked(StepError):
    """A table the statement reads stayed locked by another transaction for all of the gate's patience."""


class SqlGate:
    """Judges statements on a small pool of business-database connections (READ ONLY, statement_timeout
    set by the pool). `check` never raises for a statement's own fault; StepError means the database is
    gone, or kept a table locked for longer than `lock_patience` seconds."""

    def __init__(
        self, pool: asyncpg.Pool, limits: PlanLimits, lock_patience: float = LOCK_PATIENCE_SECONDS
    ) -> None:
        self._pool = pool
        self._limits = limits
        self._lock_patience = lock_patience

    async def check(self, sql: str) -> Verdict:
        try:
            statement = check_text(sql)
        except SqlRejected as exc:
            return Verdict(None, exc.reason, rejected=not exc.repairable)
        deadline = time.monotonic() + self._lock_patience
        timed_out, pause = False, 0.1
        while True:
            try:
                row = await self._explain(statement)
            except StepError:
                raise
            except Exception as exc:
                sqlstate = str(getattr(exc, "sqlstate", "") or "")
                if sqlstate == _LOCK_NOT_AVAILABLE:
                    if time.monotonic() + pause > deadline:
                        raise TableLocked(
                            f"a table stayed locked in the business database for over "
                            f"{self._lock_patience:g} s: {describe_error(exc)}",
                            retryable=True,
                        ) from None
                elif sqlstate == _QUERY_CANCELED and not timed_out:
                    timed_out = True
                else:
                    return Verdict(None, describe_error(exc))
                await asyncio.sleep(pause)
                pause = min(pause * 2, 2.0)
                continue
            error = _plan_limits_error(row, self._limits)
            return Verdict(None, error) if error else Verdict(statement)

    async def _explain(self, statement: str) -> Any:
        acquired = False
        try:
            async with self._pool.acquire() as conn:
                acquired = True
                async with conn.transaction(readonly=True):
                    await conn.execute(_SESSION_FOR_EXPLAIN)
                    return await conn.fetchval(f"EXPLAIN (FORMAT JSON) {statement}")
        except Exception as exc:
            if _connection_lost(exc, acquired):
                raise _lost(exc) from None
            raise


def _lost(exc: BaseException) -> StepError:
    return StepError(f"lost the business database: {describe_error(exc)}", retryable=True)

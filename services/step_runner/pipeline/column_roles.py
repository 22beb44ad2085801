"""The one home of what a column *is* beyond its type: bookkeeping (audit, technical) or a soft-delete marker.

The quality pass of step 3 (pair_quality), the offline generator, the rendered schema in LLM prompts and the
repair prompt all read these vocabularies, so a column the generator avoids is the same column the
quality pass flags and the same column the prompt marks `[audit]`.

- An *audit* column records who or when a row was written (`create_ts`, `created_by`, `updated_at`, ...).
  Nobody asks a Text2SQL assistant who created a row: as a question's subject it is bookkeeping.
  A *creation time* (`created_at`, `create_ts`, ...) is bookkeeping only in a table that records who wrote
  its rows (an actor column: `created_by`, `updated_by`, ...): there it is the audit trail. Elsewhere it is
  the row's event time (a customer's `created_at` is the sign-up, an order's when it was placed), so
  "new customers per month" stays a business question.
- A *technical* column is bookkeeping of the loading machinery (`etl_batch_id`, `row_version`, ...).
- A *soft-delete* column marks deleted rows that are still stored (`deleted_at`, `delete_ts`, `is_deleted`,
  `del_flag`, ...): every read of such a table keeps live rows only (`live_condition`).
- A *per-row rate* is a measure that is not additive over rows: a price per unit, a rating, a score, a
  percentage, a ratio, an average (`unit_price`, `rating`, `discount_rate`, `unit_cost`). Its sum over
  several rows answers no business question ("the total rating of a brand's reviews"); its average does.
  A name that also says it is a sum or an amount (`total_price`, `price_amount`) is additive.
"""

from __future__ import annotations

import re
from typing import Literal

from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

ColumnRole = Literal["actor", "creation_time", "change_time", "technical", "soft_delete"]

# who wrote the row
ACTOR_COLUMNS = frozenset(
    """
    created_by create_by creator create_user create_user_id created_user create_by_id
    updated_by update_by updater update_user update_user_id updated_user modifier modified_by modify_by
    modify_user last_modified_by last_updated_by deleted_by delete_by delete_user deleter
    create_emp update_emp
    """.split()
)
# when the row was inserted: bookkeeping unless the table has no other time column
CREATION_TIME_COLUMNS = frozenset(
    """
    created_at create_ts create_time created_time created_on creation_time creation_date create_date
    created_date gmt_create insert_time inserted_at insert_ts
    """.split()
)
# when the row was changed or deleted
CHANGE_TIME_COLUMNS = frozenset(
    """
    updated_at update_ts update_time updated_time updated_on modified_at modify_time modified_time
    modified_on last_modified last_modified_at last_updated last_update last_update_time gmt_modified
    update_date updated_date modify_date delete_ts deleted_at delete_time deleted_time deleted_on
    removed_at
    """.split()
)
# loading machinery. Names that are business facts somewhere (a production `batch_id`, a SaaS `tenant_id`, a
# telecom `operator_id`, a content `creator_id`, a measurement's `record_time`) are left out on purpose.
TECHNICAL_COLUMNS = frozenset(
    """
    row_version record_version lock_version optimistic_lock etl_time etl_ts etl_batch_id
    etl_date load_ts load_time loaded_at sync_time sync_ts synced_at dw_insert_time
    dw_update_time data_source_sys hash_diff row_hash
    """.split()
)
_TECHNICAL_PREFIX = re.compile(r"^(etl|dw|ods|sys)_")

# soft-delete markers by family: a time (NULL while live), a flag (false/0 while live)
SOFT_DELETE_TIME_COLUMNS = frozenset(
    {"deleted_at", "delete_ts", "delete_time", "deleted_time", "removed_at", "deleted_on", "delete_at"}
)
SOFT_DELETE_FLAG_COLUMNS = frozenset(
    {"is_deleted", "deleted", "is_removed", "del_flag", "is_del", "delete_flag", "deleted_flag", "is_delete"}
)

# per-row rates: the words of a name (split on `_`) that make a measure non-additive, unless a sum word is
# there too; 单价 (unit price), 评分 (rating), 率 (rate), 比例 (ratio), 平均 (average) in a Chinese name
_RATE_WORDS = frozenset(
    "price rate ratio pct percent percentage score rating avg average mean unit per".split()
)
_SUM_WORDS = frozenset("total sum amount subtotal revenue sales count qty quantity".split())
_RATE_CJK = re.compile("单价|评分|率|比例|平均")

_NUMERIC = re.compile(
    r"^(smallint|integer|bigint|int|int2|int4|int8|numeric|decimal|real|double precision|float4|float8|"
    r"smallserial|serial|bigserial)\b"
)
_TEXT = re.compile(r"^(text|varchar|character varying|character|char|bpchar)\b")


def _family(data_type: str) -> str:
    t = data_type.lower().strip()
    if t.startswith("timestamp") or t == "date":
        return "time"
    if t in {"boolean", "bool"}:
        return "bool"
    if _NUMERIC.match(t):
        return "numeric"
    if _TEXT.match(t):
        return "text"
    return "other"


def is_numeric(col: ColumnInfo) -> bool:
    return _family(col.data_type) == "numeric"


def live_condition(col: ColumnInfo) -> str | None:
    """The condition (without the column name) that keeps live rows, when `col` is a soft-delete marker:
    `IS NULL` for a deletion time, `= false` / `= 0` / `= '0'` for a flag; None otherwise."""
    name, family = col.name.lower(), _family(col.data_type)
    if name in SOFT_DELETE_TIME_COLUMNS and family == "time":
        return "IS NULL"
    if name in SOFT_DELETE_FLAG_COLUMNS:
        if family == "bool":
            return "= false"
        if family == "numeric":
            return "= 0"
        if family == "text":
            return "= '0'"
    return None


def soft_delete_column(table: TableInfo) -> ColumnInfo | None:
    """The table's soft-delete marker (the first one when several), or None."""
    return next((c for c in table.columns if live_condition(c) is not None), None)


def _audited(table: TableInfo) -> bool:
    return any(c.name.lower() in ACTOR_COLUMNS for c in table.columns)


def column_role(name: str, table: TableInfo | None) -> ColumnRole | None:
    """The bookkeeping role of a column, None for a business column. With `table`, a creation time is
    bookkeeping only when the table has another (business) time column; a soft-delete marker says
    "soft_delete" (it is audit too, but its use in a question is the live-rows filter)."""
    n = name.lower()
    if table is not None:
        col = next((c for c in table.columns if c.name.lower() == n), None)
        if col is not None and live_condition(col) is not None:
            return "soft_delete"
    if n in ACTOR_COLUMNS:
        return "actor"
    if n in CREATION_TIME_COLUMNS:
        if table is not None and not _audited(table):
            return None
        return "creation_time"
    if n in CHANGE_TIME_COLUMNS:
        return "change_time"
    if n in TECHNICAL_COLUMNS or _TECHNICAL_PREFIX.match(n):
        return "technical"
    return None


def is_bookkeeping(name: str, table: TableInfo | None = None) -> bool:
    """Whether a column must not be a question's subject (audit, technical or soft-delete column)."""
    return column_role(name, table) is not None


def is_rate(name: str) -> bool:
    """Whether a measure column is a per-row rate (see the module docstring): average it, never sum it."""
    words = set(re.split(r"[^a-z0-9]+", name.lower()))
    if words & _SUM_WORDS:
        return False
    return bool(words & _RATE_WORDS) or bool(_RATE_CJK.search(name))


def column_marker(col: ColumnInfo, table: TableInfo) -> str | None:
    """The marker a rendered schema puts beside a column, for LLM prompts: `[soft-delete: keep rows where
    delete_ts IS NULL]`, `[audit]`, `[technical]`, `[rate]` for a numeric per-row rate; None for any other
    business column."""
    cond = live_condition(col)
    if cond is not None:
        return f"[soft-delete: keep rows where {col.name} {cond}]"
    role = column_role(col.name, table)
    if role in {"actor", "creation_time", "change_time"}:
        return "[audit: never a question's subject]"
    if role == "technical":
        return "[technical: never a question's subject]"
    if is_numeric(col) and is_rate(col.name):
        return "[rate: average it, never sum it]"
    return None

"""What the offline generator reads out of a catalog: roles of columns, relations between tables, names.

Everything here is derived from the catalog alone (names, types, keys, enum values), so the same catalog
always gives the same profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from services.step_runner.offline.names import humanise_en, humanise_zh, shared_prefix
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo
from services.step_runner.pipeline.column_roles import (
    is_bookkeeping,
    is_rate,
    live_condition,
    soft_delete_column,
)
from services.step_runner.pipeline.relations import Relation, infer_relations

__all__ = ["Relation"]

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_CATEGORY_WORDS = re.compile(
    r"(^|_)(status|state|type|kind|category|level|tier|grade|gender|sex|channel|source|region|city|"
    r"country|province|segment|method|mode|stage|priority|role|brand|currency|platform|department)$"
)
_NOT_MEASURE = re.compile(
    r"(^|_)(id|uuid|no|code|number|year|month|day|week|hour|sort|sort_order|seq|sequence|version|type|kind|"
    r"status|state|flag|category|^order|"
    r"lat|lng|lon|latitude|longitude|zip|zipcode|postcode|phone|mobile|port|pid)$"
)
_MEASURE_WORDS = re.compile(
    r"(amount|price|total|cost|fee|revenue|sales|profit|qty|quantity|count|balance|weight|score|"
    r"rating|discount|tax|income|salary|stock|duration|distance|volume|value|paid|spend)"
)
_TOTAL_WORDS = re.compile(r"(^|_)(total|sum|revenue|sales)(_|$)|总|营收|营业额")
_MONEY_WORDS = re.compile(r"amount|pay|revenue|sales|income|金额|营收|收入|营业额")
# identifying or free-form text: never a category to group by
_NOT_CATEGORY = re.compile(
    r"(^|_)(no|code|number|uuid|sku|email|phone|mobile|position|address|lat|lng|url|title|body|description|"
    r"comment|remark|remarks|note|notes|content|text|message|summary)$"
)
_LABEL_NAMES = ("name", "title", "full_name", "display_name", "username", "user_name", "nickname")
_LABEL_SUFFIX = re.compile(r"_(name|title)$")
# a person's birth date is an attribute, not when something happened: no trend or "most recent" over it
_BIRTH = re.compile(r"birth|(^|_)dob($|_)|(^|_)born($|_)")
_GIVEN_NAMES = frozenset({"first_name", "firstname", "given_name"})
_FAMILY_NAMES = ("last_name", "lastname", "family_name", "surname")
_CODE_LABEL = re.compile(r"(^|_)(email|code|sku|no)$")
_CREATION_FIRST = re.compile(r"(created|create|order|placed|date|start|paid|time|registered|signup)")
_UPDATE_LAST = re.compile(r"(updated|modified|update|modify|last_)")
_NUMERIC_TYPES = re.compile(
    r"^(smallint|integer|bigint|int|int2|int4|int8|numeric|decimal|real|double precision|float4|float8|"
    r"money|smallserial|serial|bigserial)\b"
)
_TEXT_TYPES = re.compile(r"^(text|varchar|character varying|character|char|citext|bpchar|name)\b")


def has_cjk(text: str | None) -> bool:
    return bool(text and _CJK.search(text))


_REPEATED_OWNER = re.compile(r"(\w{1,16}?的)\1+")


def zh_text(text: str) -> str:
    """A Chinese sentence without a repeated owner: a column label that already says whose it is
    ("员工的薪资") put after the owner ("员工的") must not read "员工的员工的薪资"."""
    return _REPEATED_OWNER.sub(r"\1", text)


def type_family(data_type: str) -> str:
    t = data_type.lower().strip()
    if t.endswith("[]"):
        return "array"
    if _NUMERIC_TYPES.match(t):
        return "numeric"
    if t.startswith("timestamp") or t == "date":
        return "time"
    if t in {"boolean", "bool"}:
        return "bool"
    if _TEXT_TYPES.match(t) or t.startswith("user-defined"):
        return "text"
    if t == "uuid":
        return "uuid"
    return "other"


def words(identifier: str) -> str:
    """`orderItems` / `order_items` -> `order items`."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return re.sub(r"[_\s]+", " ", spaced).strip().lower()


def singular(phrase: str) -> str:
    head, _, last = phrase.rpartition(" ")
    w = last
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif w.endswith(("sses", "xes", "ches", "shes", "zes")) or re.search(
        r"(stat|bon|camp|b|vir|cens)uses$", w
    ):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith(("ss", "us", "is", "news", "status")):
        w = w[:-1]
    return f"{head} {w}".strip()


def plural(phrase: str) -> str:
    head, _, last = phrase.rpartition(" ")
    w = last
    if w.endswith("y") and len(w) > 1 and w[-2] not in "aeiou":
        w = w[:-1] + "ies"
    elif w.endswith(("s", "x", "ch", "sh", "z")):
        w = w + "es"
    else:
        w = w + "s"
    return f"{head} {w}".strip()


def _cjk_label(comment: str | None) -> str | None:
    if not has_cjk(comment):
        return None
    # Split on punctuation only: an untranslated name keeps all its words ("shipment item表").
    first = re.split(r"[，,。.;；:：(（]", comment or "", maxsplit=1)[0].strip()
    first = re.sub(r"(信息表|记录表|表)$", "", first)
    return first or None


@dataclass
class TableProfile:
    table: TableInfo
    fk_columns: set[str] = field(default_factory=set)

    @property
    def key(self) -> str:
        return self.table.qualified_name

    def column(self, name: str) -> ColumnInfo | None:
        return next((c for c in self.table.columns if c.name == name), None)

    @cached_property
    def pk(self) -> tuple[str, ...]:
        if self.table.primary_key:
            return tuple(self.table.primary_key)
        return tuple(c.name for c in self.table.columns if c.is_primary_key)

    @cached_property
    def soft_delete(self) -> tuple[ColumnInfo, str] | None:
        """The soft-delete column and the condition (without alias) that keeps live rows (column_roles)."""
        col = soft_delete_column(self.table)
        cond = live_condition(col) if col is not None else None
        return (col, cond) if col is not None and cond is not None else None

    def bookkeeping(self, col: ColumnInfo) -> bool:
        """An audit, technical or soft-delete column: never a question's subject."""
        return is_bookkeeping(col.name, self.table)

    def _is_id_like(self, col: ColumnInfo) -> bool:
        name = col.name.lower()
        return (
            col.is_primary_key
            or col.name in self.pk
            or col.name in self.fk_columns
            or name == "id"
            or name.endswith(("_id", "_uuid", "_key"))
        )

    @cached_property
    def time_columns(self) -> list[ColumnInfo]:
        sd = self.soft_delete[0].name if self.soft_delete else None
        cols = [
            c
            for c in self.table.columns
            if type_family(c.data_type) == "time"
            and c.name != sd
            and not self.bookkeeping(c)
            and not _BIRTH.search(c.name.lower())
        ]

        def rank(c: ColumnInfo) -> int:
            n = c.name.lower()
            if _UPDATE_LAST.search(n):
                return 2
            return 0 if _CREATION_FIRST.search(n) else 1

        return sorted(cols, key=rank)

    @cached_property
    def measures(self) -> list[ColumnInfo]:
        out = []
        for col in self.table.columns:
            name = col.name.lower()
            if type_family(col.data_type) != "numeric" or self._is_id_like(col) or _NOT_MEASURE.search(name):
                continue
            if self.bookkeeping(col):
                continue
            if col.enum_values and not _MEASURE_WORDS.search(name):
                continue
            out.append(col)

        # the totals a business reads first (pay_sum "支付总金额" before wx "微信支付金额"), then catalog order
        def rank(c: ColumnInfo) -> tuple[bool, bool]:
            text = f"{c.name.lower()} {c.comment or ''}"
            return (not _TOTAL_WORDS.search(text), not _MONEY_WORDS.search(text))

        return sorted(out, key=rank)

    @cached_property
    def categories(self) -> list[ColumnInfo]:
        sd = self.soft_delete[0].name if self.soft_delete else None
        measures = {c.name for c in self.measures}
        out = []
        for col in self.table.columns:
            if col.name == sd or col.name in measures or self._is_id_like(col) or self.bookkeeping(col):
                continue
            family = type_family(col.data_type)
            if family in {"time", "array"} or _NOT_CATEGORY.search(col.name.lower()):
                continue
            if col.enum_values is not None and len(col.enum_values) == 1:
                continue  # one value says nothing about the rows
            if col.enum_values is not None and 2 <= len(col.enum_values) <= 30:
                out.append(col)  # also a column of a PostgreSQL enum type (family "other")
            elif family == "other":
                continue
            elif family == "bool":
                out.append(col)
            elif family == "text" and col.enum_values is None and _CATEGORY_WORDS.search(col.name.lower()):
                out.append(col)
        return out

    @cached_property
    def label(self) -> ColumnInfo | None:
        """The column a person would use to name a row (name, title, code...)."""
        texts = [
            c for c in self.table.columns if type_family(c.data_type) == "text" and not self.bookkeeping(c)
        ]
        for wanted in _LABEL_NAMES:
            for c in texts:
                if c.name.lower() == wanted:
                    return c
        for pattern in (_LABEL_SUFFIX, _CODE_LABEL):
            for c in texts:
                if pattern.search(c.name.lower()) and c not in self.categories:
                    return c
        return None

    @property
    def identity(self) -> list[str]:
        """Columns that identify a row in a listing: the label (plus key), else the key, else the first column.
        A first name comes with the family name beside it: a person is not listed as "Ann"."""
        cols = list(self.pk)
        if self.label is not None and self.label.name not in cols:
            cols.append(self.label.name)
            if self.label.name.lower() in _GIVEN_NAMES:
                names = {c.name.lower(): c.name for c in self.table.columns}
                cols += [names[n] for n in _FAMILY_NAMES if n in names][:1]
        return cols or [self.table.columns[0].name]


class SchemaModel:
    """Profiles of every table and the relations between them."""

    def __init__(self, tables: list[TableInfo]) -> None:
        self.profiles: dict[str, TableProfile] = {}
        for t in tables:
            self.profiles.setdefault(t.qualified_name, TableProfile(t))
        # the prefix every table shares (`bss_`), dropped from the names questions use
        self.prefix = shared_prefix([p.table.name for p in self.profiles.values()])
        # declared foreign keys and the ones `<thing>_id` names imply (pipeline/relations.py)
        self.relations: list[Relation] = [
            r
            for r in infer_relations([p.table for p in self.profiles.values()])
            if r.child in self.profiles and r.parent in self.profiles
        ]
        for rel in self.relations:
            self.profiles[rel.child].fk_columns.update(rel.child_columns)

    def is_link(self, key: str) -> bool:
        """A bridge table (route <-> service area): two relations or more and nothing else to ask about."""
        p = self.profiles[key]
        if len(self.parents_of(key)) < 2:
            return False
        business = [c for c in p.table.columns if not p.bookkeeping(c) and not p._is_id_like(c)]
        return not business

    def parents_of(self, key: str) -> list[Relation]:
        return [r for r in self.relations if r.child == key]

    def children_of(self, key: str) -> list[Relation]:
        return [r for r in self.relations if r.parent == key]

    def neighbours(self, key: str) -> list[str]:
        out = [r.parent for r in self.parents_of(key)] + [r.child for r in self.children_of(key)]
        return [k for k in dict.fromkeys(out) if k != key]

    def components(self) -> list[list[str]]:
        seen: set[str] = set()
        comps = []
        for key in self.profiles:
            if key in seen:
                continue
            stack, comp = [key], []
            while stack:
                k = stack.pop()
                if k in seen:
                    continue
                seen.add(k)
                comp.append(k)
                stack.extend(self.neighbours(k))
            comps.append(sorted(comp, key=list(self.profiles).index))
        return comps


@dataclass(frozen=True)
class Names:
    """How questions and descriptions name a table's rows, in the answer's language."""

    one: str
    many: str


def _short_english(comment: str | None) -> str | None:
    """An English comment short enough to be a name ("Unit price"), else None."""
    text = (comment or "").strip().rstrip(".")
    if not text or not text.isascii() or len(text.split()) > 3 or re.search(r"[,;:()]| of the ", text):
        return None
    return text.lower()


def entity_names(table: TableInfo, chinese: bool, prefix: str | None = None) -> Names:
    """A table's rows by name: its comment first, else its humanised identifier (offline/names.py)."""
    if chinese:
        label = _cjk_label(table.comment) or humanise_zh(table.name, prefix)
        return Names(label, label)
    base = _short_english(table.comment) or humanise_en(table.name, prefix) or words(table.name)
    one = singular(base)
    return Names(one, plural(one))


def total_of(label: str, chinese: bool) -> str:
    """ "total amount" and "subtotal" stay as they are; "amount" becomes "total amount"."""
    if chinese:
        return label if label.endswith(("合计", "总额", "总计", "总数", "总金额")) else f"{label}合计"
    return label if label.startswith(("total", "subtotal")) else f"total {label}"


def summary_of(col: ColumnInfo, label: str, chinese: bool) -> str:
    """How a measure is summarised in words: its total, or its average when it is a per-row rate
    ("average unit price": pipeline/column_roles.is_rate)."""
    if is_rate(col.name):
        return f"平均{label}" if chinese else f"average {label}"
    return total_of(label, chinese)


def is_money(col: ColumnInfo) -> bool:
    """A measure of money (amount, pay_sum "支付总金额", revenue ...), for themes named after revenue."""
    return bool(_MONEY_WORDS.search(f"{col.name.lower()} {col.comment or ''}"))


def column_label(col: ColumnInfo, chinese: bool) -> str:
    """A column by name: its comment first, else its humanised identifier (offline/names.py)."""
    if chinese:
        return _cjk_label(col.comment) or humanise_zh(col.name)
    return _short_english(col.comment) or humanise_en(col.name) or words(col.name)

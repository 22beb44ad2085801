"""What the offline generator reads out of a catalog: roles of columns, relations between tables, names.

Everything here is derived from the catalog alone (names, types, keys, enum values), so the same catalog
always gives the same profile.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")
_SOFT_DELETE_TIME = {"deleted_at", "deleted_time", "delete_time", "removed_at", "deleted_on"}
_SOFT_DELETE_FLAG = {"is_deleted", "deleted", "is_removed", "del_flag", "is_del", "delete_flag"}
_CATEGORY_WORDS = re.compile(
    r"(^|_)(status|state|type|kind|category|level|tier|grade|gender|sex|channel|source|region|city|"
    r"country|province|segment|method|mode|stage|priority|role|brand|currency|platform|department)$"
)
_NOT_MEASURE = re.compile(
    r"(^|_)(id|uuid|no|code|number|year|month|day|week|hour|sort|sort_order|seq|sequence|version|"
    r"lat|lng|lon|latitude|longitude|zip|zipcode|postcode|phone|mobile|port|pid)$"
)
_MEASURE_WORDS = re.compile(
    r"(amount|price|total|cost|fee|revenue|sales|profit|qty|quantity|count|balance|weight|score|"
    r"rating|discount|tax|income|salary|stock|duration|distance|volume|value|paid|spend)"
)
_LABEL_NAMES = ("name", "title", "full_name", "display_name", "username", "user_name", "nickname")
_LABEL_SUFFIX = re.compile(r"_(name|title)$")
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


_ZH = {
    "order": "订单",
    "orders": "订单",
    "item": "明细",
    "items": "明细",
    "customer": "客户",
    "customers": "客户",
    "product": "商品",
    "products": "商品",
    "user": "用户",
    "users": "用户",
    "account": "账户",
    "payment": "支付",
    "invoice": "发票",
    "shop": "店铺",
    "store": "门店",
    "employee": "员工",
    "department": "部门",
    "supplier": "供应商",
    "category": "类别",
    "amount": "金额",
    "total": "总",
    "price": "价格",
    "unit": "单",
    "quantity": "数量",
    "qty": "数量",
    "status": "状态",
    "type": "类型",
    "name": "名称",
    "city": "城市",
    "region": "地区",
    "country": "国家",
    "segment": "客户分群",
    "channel": "渠道",
    "date": "日期",
    "created": "创建",
    "create": "创建",
    "updated": "更新",
    "at": "时间",
    "time": "时间",
    "level": "等级",
    "group": "分组",
    "email": "邮箱",
    "phone": "电话",
    "cost": "成本",
    "discount": "折扣",
    "revenue": "收入",
    "sales": "销售额",
    "stock": "库存",
    "score": "评分",
    "rating": "评分",
    "gender": "性别",
    "age": "年龄",
    "service": "服务",
    "area": "区",
    "branch": "分支",
    "highway": "高速公路",
    "car": "车辆",
    "vehicle": "车辆",
    "trip": "行程",
    "fee": "费用",
    "paid": "支付",
}


_ZH_PHRASES = {
    "unit price": "单价",
    "order date": "下单日期",
    "created at": "创建时间",
    "updated at": "更新时间",
    "deleted at": "删除时间",
    "total amount": "总金额",
    "order items": "订单明细",
    "order item": "订单明细",
}


def _zh_words(identifier: str) -> str:
    """A Chinese name for an identifier when every word of it is in the small glossary, else the words."""
    phrase = words(identifier)
    if phrase in _ZH_PHRASES:
        return _ZH_PHRASES[phrase]
    parts = phrase.split()
    if parts and all(p in _ZH for p in parts):
        return "".join(_ZH[p] for p in parts)
    return words(identifier)


def _cjk_label(comment: str | None) -> str | None:
    if not has_cjk(comment):
        return None
    # Split on punctuation only: an untranslated name keeps all its words ("shipment item表").
    first = re.split(r"[，,。.;；:：(（]", comment or "", maxsplit=1)[0].strip()
    first = re.sub(r"(信息表|记录表|明细表|数据表|表)$", "", first)
    return first or None


@dataclass(frozen=True)
class Relation:
    """child.child_columns -> parent.parent_columns, declared in the catalog or inferred from names."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    inferred: bool = False


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
        """The soft-delete column and the condition (without alias) that keeps live rows."""
        for col in self.table.columns:
            name, family = col.name.lower(), type_family(col.data_type)
            if name in _SOFT_DELETE_TIME and family == "time":
                return col, "IS NULL"
            if name in _SOFT_DELETE_FLAG and family == "bool":
                return col, "= false"
            if name in _SOFT_DELETE_FLAG and family == "numeric":
                return col, "= 0"
        return None

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
        cols = [c for c in self.table.columns if type_family(c.data_type) == "time" and c.name != sd]

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
            if col.enum_values and not _MEASURE_WORDS.search(name):
                continue
            out.append(col)
        return out

    @cached_property
    def categories(self) -> list[ColumnInfo]:
        sd = self.soft_delete[0].name if self.soft_delete else None
        measures = {c.name for c in self.measures}
        out = []
        for col in self.table.columns:
            if col.name == sd or col.name in measures or self._is_id_like(col):
                continue
            family = type_family(col.data_type)
            if family in {"time", "array"}:
                continue
            if col.enum_values is not None and 1 <= len(col.enum_values) <= 30:
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
        texts = [c for c in self.table.columns if type_family(c.data_type) == "text"]
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
        """Columns that identify a row in a listing: the label (plus key), else the key, else the first column."""
        cols = list(self.pk)
        if self.label is not None and self.label.name not in cols:
            cols.append(self.label.name)
        return cols or [self.table.columns[0].name]


class SchemaModel:
    """Profiles of every table and the relations between them."""

    def __init__(self, tables: list[TableInfo]) -> None:
        self.profiles: dict[str, TableProfile] = {}
        for t in tables:
            self.profiles.setdefault(t.qualified_name, TableProfile(t))
        self.relations: list[Relation] = self._explicit()
        for rel in self.relations:
            self.profiles[rel.child].fk_columns.update(rel.child_columns)
        self.relations += self._inferred()

    def _by_schema_name(self, schema: str, name: str) -> TableProfile | None:
        for p in self.profiles.values():
            if p.table.schema_name == schema and p.table.name == name:
                return p
        return None

    def _explicit(self) -> list[Relation]:
        rels = []
        for p in self.profiles.values():
            for fk in p.table.foreign_keys:
                parent = self._by_schema_name(fk.ref_schema, fk.ref_table)
                if parent is None or not fk.columns or len(fk.columns) != len(fk.ref_columns):
                    continue
                if all(p.column(c) for c in fk.columns) and all(parent.column(c) for c in fk.ref_columns):
                    rels.append(Relation(p.key, tuple(fk.columns), parent.key, tuple(fk.ref_columns)))
        return rels

    def _inferred(self) -> list[Relation]:
        """customer_id -> customers.id when no foreign key says so (many business databases declare none)."""
        rels = []
        for p in self.profiles.values():
            for col in p.table.columns:
                name = col.name.lower()
                if not name.endswith("_id") or col.name in p.fk_columns or col.name in p.pk:
                    continue
                stem = name[:-3]
                for parent in self._candidates(stem, p.table.schema_name):
                    if parent.key == p.key:
                        continue
                    ref = parent.pk[0] if len(parent.pk) == 1 else ("id" if parent.column("id") else None)
                    ref_col = parent.column(ref) if ref else None
                    if ref_col is None or type_family(ref_col.data_type) != type_family(col.data_type):
                        continue
                    rels.append(Relation(p.key, (col.name,), parent.key, (ref_col.name,), inferred=True))
                    p.fk_columns.add(col.name)
                    break
        return rels

    def _candidates(self, stem: str, schema: str) -> list[TableProfile]:
        names = [stem, stem + "s", stem + "es", plural(stem).replace(" ", "_")]
        if stem.endswith("y"):
            names.append(stem[:-1] + "ies")
        found = []
        for n in dict.fromkeys(names):
            for p in self.profiles.values():
                if p.table.name.lower() == n and p not in found:
                    found.append(p)
        found.sort(key=lambda p: p.table.schema_name != schema)
        return found

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


def entity_names(table: TableInfo, chinese: bool) -> Names:
    if chinese:
        label = _cjk_label(table.comment) or _zh_words(table.name)
        return Names(label, label)
    base = words(table.name)
    one = singular(base)
    return Names(one, plural(one))


def total_of(label: str, chinese: bool) -> str:
    """ "total amount" stays as it is; "price" becomes "total price"."""
    if chinese:
        return label if label.endswith(("合计", "总额", "总计")) else f"{label}合计"
    return label if label.startswith("total") else f"total {label}"


def column_label(col: ColumnInfo, chinese: bool) -> str:
    if chinese:
        return _cjk_label(col.comment) or _zh_words(col.name)
    return words(col.name)

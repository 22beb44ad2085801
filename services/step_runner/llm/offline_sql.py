"""Question/SQL candidates built from templates over the catalog's actual columns (offline provider).

Each template only fires when the columns it needs exist (a measure, a category, a time column, a
relation), so every statement references real columns. Rows hidden by a soft-delete column are filtered
out in every query that reads the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.step_runner.llm.offline_schema import (
    Relation,
    SchemaModel,
    TableProfile,
    column_label,
    entity_names,
    total_of,
    type_family,
    words,
    zh_text,
)
from services.step_runner.llm.sqltext import RESERVED, quote_ident, quote_literal, table_ref
from services.step_runner.pipeline.catalog import ColumnInfo

_TOP = 10


@dataclass(frozen=True)
class Candidate:
    question: str
    sql: str
    kind: str  # count, distribution, filter, amount, stats, ranking, trend, recent, join, coverage
    tables: tuple[str, ...]


def _alias_name(text: str) -> str:
    alias = re.sub(r"[^a-z0-9]+", "_", text.lower()).strip("_") or "value"
    if alias[0].isdigit():
        alias = "v_" + alias
    return quote_ident(alias)


_IRREGULAR = {"paid", "sent", "sold", "built", "made", "shipped", "cancelled", "canceled"}
_VERBS = {
    "create",
    "update",
    "delete",
    "register",
    "publish",
    "ship",
    "cancel",
    "complete",
    "approve",
    "close",
    "open",
    "submit",
    "deliver",
    "confirm",
    "refund",
    "finish",
    "start",
    "expire",
    "verify",
    "pay",
}


def _participle(col: ColumnInfo) -> str | None:
    """`created_at` -> "created", `paid_at` -> "paid"; None when the name is not an event time."""
    match = re.fullmatch(r"([a-z]+)_(at|time|on)", col.name.lower())
    word = match.group(1) if match else ""
    if word in _IRREGULAR or (word.endswith("ed") and len(word) > 4):
        return word
    if word == "pay":
        return "paid"
    if word in _VERBS:
        return word + ("d" if word.endswith("e") else ("ped" if word == "ship" else "ed"))
    return None


class QueryWriter:
    def __init__(self, model: SchemaModel, chinese: bool) -> None:
        self.model = model
        self.zh = chinese

    # -- pieces ---------------------------------------------------------------------------------
    def _t(self, en: str, zh: str, **kw: Any) -> str:
        return zh_text(zh.format(**kw)) if self.zh else en.format(**kw)

    def _names(self, p: TableProfile) -> tuple[str, str]:
        n = entity_names(p.table, self.zh, self.model.prefix)
        return n.one, n.many

    def _label(self, col: ColumnInfo, owner: TableProfile | None = None) -> str:
        """A column's label; with its table, without the table's name a described column starts with
        ("每日车流量的客流量" -> "客流量"), since the question names the table itself."""
        label = column_label(col, self.zh)
        if owner is not None and self.zh:
            label = label.removeprefix(f"{self._names(owner)[0]}的") or label
        return label

    def _owned(self, label: str, owner: str) -> str:
        """A column's label with its table's name ("服务区的类型"), unless it already says it ("服务区类型")."""
        if self.zh:
            return label if label.startswith(owner) else f"{owner}的{label}"
        return label if label.lower().startswith(owner.lower() + " ") else f"{owner} {label}"

    @staticmethod
    def _col(alias: str | None, name: str) -> str:
        return f"{alias}.{quote_ident(name)}" if alias else quote_ident(name)

    @staticmethod
    def _live(p: TableProfile, alias: str | None = None) -> list[str]:
        if p.soft_delete is None:
            return []
        col, cond = p.soft_delete
        return [f"{QueryWriter._col(alias, col.name)} {cond}"]

    @staticmethod
    def _sql(
        select: list[str],
        source: str,
        where: list[str] | None = None,
        group: list[str] | None = None,
        order: str | None = None,
        limit: int | None = None,
    ) -> str:
        lines = ["SELECT " + ", ".join(select), "FROM " + source]
        if where:
            lines.append("WHERE " + "\n  AND ".join(where))
        if group:
            lines.append("GROUP BY " + ", ".join(group))
        if order:
            lines.append("ORDER BY " + order)
        if limit:
            lines.append(f"LIMIT {limit}")
        return "\n".join(lines) + ";"

    @staticmethod
    def _literal(col: ColumnInfo, value: Any) -> str | None:
        family = type_family(col.data_type)
        if value is None:
            return None
        if family == "bool":
            return "true" if str(value).lower() in {"true", "t", "1", "yes"} else "false"
        if family == "numeric":
            text = str(value)
            return text if re.fullmatch(r"-?\d+(\.\d+)?", text) else None
        return quote_literal(str(value))

    def _aliases(self, *profiles: TableProfile) -> list[str]:
        taken: list[str] = []
        for p in profiles:
            base = "".join(w[0] for w in words(p.table.name).split() if w and w[0].isalpha()) or "t"
            alias, n = base, 1
            while alias in taken or alias in RESERVED:
                n += 1
                alias = f"{base}{n}"
            taken.append(alias)
        return taken

    # -- one table ------------------------------------------------------------------------------
    def for_table(self, key: str) -> list[Candidate]:
        p = self.model.profiles[key]
        one, many = self._names(p)
        src, live, tables = table_ref(p.table), self._live(p), (key,)
        out: list[Candidate] = []

        def add(kind: str, question: str, sql: str) -> None:
            out.append(Candidate(question, sql, kind, tables))

        count_alias = _alias_name(f"{p.table.name}_count")
        add(
            "count",
            self._t("How many {many} are there?", "一共有多少个{one}?", one=one, many=many),
            self._sql(["COUNT(*) AS " + count_alias], src, live),
        )
        for cat in p.categories[:3]:
            c, lab = quote_ident(cat.name), self._label(cat, p)
            if type_family(cat.data_type) == "bool":
                q = self._t(
                    "How many {many} are {lab} and how many are not?",
                    "{lab}与否的{one}各有多少个?",
                    one=one,
                    many=many,
                    lab=lab,
                )
            else:
                q = self._t(
                    "How many {many} are there for each {lab}?",
                    "按{lab}统计,各有多少个{one}?",
                    one=one,
                    many=many,
                    lab=lab,
                )
            add(
                "distribution",
                q,
                self._sql([c, "COUNT(*) AS " + count_alias], src, live, [c], f"{count_alias} DESC"),
            )
            values = [v for v in (cat.enum_values or []) if self._literal(cat, v) is not None]
            for value in values[:2]:
                lit = self._literal(cat, value)
                add(
                    "filter",
                    self._t(
                        "How many {many} have {lab} {v}?",
                        "{lab}为{v}的{one}有多少个?",
                        one=one,
                        many=many,
                        lab=lab,
                        v=lit,
                    ),
                    self._sql(["COUNT(*) AS " + count_alias], src, [*live, f"{c} = {lit}"]),
                )
        for m in p.measures[:2]:
            mc, mlab = quote_ident(m.name), self._label(m, p)
            total, avg = _alias_name(f"total_{m.name}"), _alias_name(f"avg_{m.name}")
            add(
                "stats",
                self._t(
                    "What are the minimum, maximum and average {m} of {many}?",
                    "{one}的{m}最小值、最大值和平均值分别是多少?",
                    one=one,
                    many=many,
                    m=mlab,
                ),
                self._sql(
                    [
                        f"MIN({mc}) AS {_alias_name('min_' + m.name)}",
                        f"MAX({mc}) AS {_alias_name('max_' + m.name)}",
                        f"ROUND(AVG({mc}::numeric), 2) AS {avg}",
                    ],
                    src,
                    live,
                ),
            )
            ident = [quote_ident(c) for c in p.identity if c != m.name]
            add(
                "ranking",
                self._t(
                    "Which {n} {many} have the highest {m}?",
                    "{m}最高的前{n}个{one}是哪些?",
                    n=_TOP,
                    one=one,
                    many=many,
                    m=mlab,
                ),
                self._sql([*ident, mc], src, [*live, f"{mc} IS NOT NULL"], None, f"{mc} DESC", _TOP),
            )
            for cat in p.categories[:2]:
                c, lab = quote_ident(cat.name), self._label(cat, p)
                add(
                    "amount",
                    self._t(
                        "What is the {m} of {many} for each {lab}?",
                        "按{lab}统计{one}的{m}是多少?",
                        one=one,
                        many=many,
                        m=total_of(mlab, self.zh),
                        lab=lab,
                    ),
                    self._sql([c, f"SUM({mc}) AS {total}"], src, live, [c], f"{total} DESC NULLS LAST"),
                )
                add(
                    "amount",
                    self._t(
                        "What is the average {m} of {many} for each {lab}?",
                        "按{lab}统计{one}的平均{m}是多少?",
                        one=one,
                        many=many,
                        m=mlab,
                        lab=lab,
                    ),
                    self._sql(
                        [c, f"ROUND(AVG({mc}::numeric), 2) AS {avg}"],
                        src,
                        live,
                        [c],
                        f"{avg} DESC NULLS LAST",
                    ),
                )
        for d in p.time_columns[:2]:
            dc, dlab, verb = quote_ident(d.name), self._label(d, p), _participle(d)
            by_when = f"{verb}" if verb else f"by {dlab}"
            month = "date_trunc('month', " + dc + ") AS month"
            add(
                "trend",
                self._t(
                    "How many {many} were {verb} each month?"
                    if verb
                    else "How many {many} are there per month of {d}?",
                    "按{d}的月份统计,每月有多少个{one}?",
                    one=one,
                    many=many,
                    d=dlab,
                    verb=verb,
                ),
                self._sql(
                    [month, "COUNT(*) AS " + count_alias], src, [*live, f"{dc} IS NOT NULL"], ["1"], "1"
                ),
            )
            add(
                "trend",
                self._t(
                    "How many {many} {when} in the last 30 days?",
                    "最近30天内({d})有多少个{one}?",
                    one=one,
                    many=many,
                    d=dlab,
                    when=f"were {verb}" if verb else f"have their {dlab}",
                ),
                self._sql(
                    ["COUNT(*) AS " + count_alias], src, [*live, f"{dc} >= CURRENT_DATE - INTERVAL '30 days'"]
                ),
            )
            ident = [quote_ident(c) for c in p.identity if c != d.name]
            add(
                "recent",
                self._t(
                    "What are the {n} most recent {many} by {d}?",
                    "按{d}最近的{n}个{one}是哪些?",
                    n=_TOP,
                    one=one,
                    many=many,
                    d=dlab,
                ),
                self._sql([*ident, dc], src, live, None, f"{dc} DESC NULLS LAST", _TOP),
            )
            for m in p.measures[:1]:
                mc, mlab, total = quote_ident(m.name), self._label(m, p), _alias_name(f"total_{m.name}")
                add(
                    "trend",
                    self._t(
                        "What is the monthly {m} of {many} {by_when} over the last 12 months?",
                        "最近12个月按{d}统计,每月{one}的{m}是多少?",
                        one=one,
                        many=many,
                        m=total_of(mlab, self.zh),
                        d=dlab,
                        by_when=by_when,
                    ),
                    self._sql(
                        [month, f"SUM({mc}) AS {total}"],
                        src,
                        [*live, f"{dc} >= date_trunc('month', CURRENT_DATE) - INTERVAL '11 months'"],
                        ["1"],
                        "1",
                    ),
                )
        return out

    # -- along relations ------------------------------------------------------------------------
    @staticmethod
    def _on(rel: Relation, child_alias: str, parent_alias: str) -> str:
        pairs = zip(rel.child_columns, rel.parent_columns, strict=True)
        return " AND ".join(
            f"{child_alias}.{quote_ident(c)} = {parent_alias}.{quote_ident(pc)}" for c, pc in pairs
        )

    def for_relation(self, rel: Relation) -> list[Candidate]:
        child, parent = self.model.profiles[rel.child], self.model.profiles[rel.parent]
        if child.key == parent.key:
            return []
        c_one, c_many = self._names(child)
        p_one, p_many = self._names(parent)
        ca, pa = self._aliases(child, parent)
        join = (
            f"{table_ref(parent.table)} {pa}\nJOIN {table_ref(child.table)} {ca} ON {self._on(rel, ca, pa)}"
        )
        live = self._live(parent, pa) + self._live(child, ca)
        ident = [f"{pa}.{quote_ident(c)}" for c in parent.identity]
        tables = (parent.key, child.key)
        n_alias = _alias_name(f"{child.table.name}_count")
        out = [
            Candidate(
                self._t(
                    "Which {n} {pm} have the most {cm}?",
                    "拥有{co}最多的前{n}个{po}是哪些?",
                    n=_TOP,
                    pm=p_many,
                    cm=c_many,
                    co=c_one,
                    po=p_one,
                ),
                self._sql([*ident, f"COUNT(*) AS {n_alias}"], join, live, ident, f"{n_alias} DESC", _TOP),
                "join",
                tables,
            ),
        ]
        for m in child.measures[:1]:
            mc, total = f"{ca}.{quote_ident(m.name)}", _alias_name(f"total_{m.name}")
            mlab = total_of(self._label(m, child), self.zh)
            out.append(
                Candidate(
                    self._t(
                        "Which {n} {pm} have the highest {m} of their {cm}?",
                        "{co}的{m}最高的前{n}个{po}是哪些?",
                        n=_TOP,
                        pm=p_many,
                        cm=c_many,
                        co=c_one,
                        po=p_one,
                        m=mlab,
                    ),
                    self._sql(
                        [*ident, f"SUM({mc}) AS {total}"], join, live, ident, f"{total} DESC NULLS LAST", _TOP
                    ),
                    "join",
                    tables,
                )
            )
            for cat in parent.categories[:1]:
                pc, lab = f"{pa}.{quote_ident(cat.name)}", self._label(cat, parent)
                out.append(
                    Candidate(
                        self._t(
                            "What is the {m} of {cm} for each {olab}?",
                            "按{olab}统计{co}的{m}是多少?",
                            cm=c_many,
                            co=c_one,
                            m=mlab,
                            olab=self._owned(lab, p_one),
                        ),
                        self._sql(
                            [pc, f"SUM({mc}) AS {total}"], join, live, [pc], f"{total} DESC NULLS LAST"
                        ),
                        "join",
                        tables,
                    )
                )
        for cat in parent.categories[:1]:
            pc, lab = f"{pa}.{quote_ident(cat.name)}", self._label(cat, parent)
            out.append(
                Candidate(
                    self._t(
                        "How many {cm} are there for each {olab}?",
                        "按{olab}统计有多少个{co}?",
                        cm=c_many,
                        co=c_one,
                        olab=self._owned(lab, p_one),
                    ),
                    self._sql([pc, f"COUNT(*) AS {n_alias}"], join, live, [pc], f"{n_alias} DESC"),
                    "join",
                    tables,
                )
            )
        inner = [f"{self._on(rel, ca, pa)}", *self._live(child, ca)]
        p_count = _alias_name(f"{parent.table.name}_count")
        out.append(
            Candidate(
                self._t(
                    "How many {pm} have no {cm}?",
                    "有多少个{po}没有任何{co}?",
                    pm=p_many,
                    cm=c_many,
                    po=p_one,
                    co=c_one,
                ),
                self._sql(
                    [f"COUNT(*) AS {p_count}"],
                    f"{table_ref(parent.table)} {pa}",
                    [
                        *self._live(parent, pa),
                        f"NOT EXISTS (SELECT 1 FROM {table_ref(child.table)} {ca} WHERE "
                        + " AND ".join(inner)
                        + ")",
                    ],
                ),
                "coverage",
                tables,
            )
        )
        return out

    def for_bridge(self, to_a: Relation, to_b: Relation, under_b: Relation | None) -> list[Candidate]:
        """A <- link -> B, e.g. the service areas of each route; with `under_b` (C -> B, C with a measure),
        the total of C's measure per A across its B (each route's revenue across its service areas)."""
        link = self.model.profiles[to_a.child]
        a, b = self.model.profiles[to_a.parent], self.model.profiles[to_b.parent]
        if len({a.key, b.key, link.key}) < 3:
            return []
        aa, la, ba = self._aliases(a, link, b)
        source = (
            f"{table_ref(a.table)} {aa}\nJOIN {table_ref(link.table)} {la} ON {self._on(to_a, la, aa)}"
            f"\nJOIN {table_ref(b.table)} {ba} ON {self._on(to_b, la, ba)}"
        )
        live = self._live(a, aa) + self._live(link, la) + self._live(b, ba)
        ident = [f"{aa}.{quote_ident(col)}" for col in a.identity]
        a_one, a_many = self._names(a)
        b_one, b_many = self._names(b)
        b_key = ", ".join(f"{ba}.{quote_ident(col)}" for col in b.pk) or f"{ba}.*"
        n_alias = _alias_name(f"{b.table.name}_count")
        out = [
            Candidate(
                self._t(
                    "Which {n} {am} have the most {bm}?",
                    "{bo}最多的前{n}个{ao}是哪些?",
                    n=_TOP,
                    am=a_many,
                    bm=b_many,
                    ao=a_one,
                    bo=b_one,
                ),
                self._sql(
                    [*ident, f"COUNT(DISTINCT ({b_key})) AS {n_alias}"],
                    source,
                    live,
                    ident,
                    f"{n_alias} DESC",
                    _TOP,
                ),
                "join",
                (a.key, link.key, b.key),
            )
        ]
        if under_b is not None:
            c = self.model.profiles[under_b.child]
            if c.measures and c.key not in {a.key, b.key, link.key}:
                ca = self._aliases(a, link, b, c)[3]
                m = c.measures[0]
                total = _alias_name(f"total_{m.name}")
                out.append(
                    Candidate(
                        self._t(
                            "Which {n} {am} have the highest {m} across their {bm}?",
                            "按{bo}汇总,{m}最高的前{n}个{ao}是哪些?",
                            n=_TOP,
                            am=a_many,
                            bm=b_many,
                            ao=a_one,
                            bo=b_one,
                            m=total_of(self._label(m), self.zh),
                        ),
                        self._sql(
                            [*ident, f"SUM({ca}.{quote_ident(m.name)}) AS {total}"],
                            f"{source}\nJOIN {table_ref(c.table)} {ca} ON {self._on(under_b, ca, ba)}",
                            live + self._live(c, ca),
                            ident,
                            f"{total} DESC NULLS LAST",
                            _TOP,
                        ),
                        "join",
                        (a.key, link.key, b.key, c.key),
                    )
                )
        return out

    def for_path(self, first: Relation, second: Relation) -> list[Candidate]:
        """grandchild -> child -> parent, e.g. the total of order_items amounts per customer."""
        a, b, c = (self.model.profiles[k] for k in (first.child, first.parent, second.parent))
        if len({a.key, b.key, c.key}) < 3 or not a.measures:
            return []
        aa, ba, pa = self._aliases(a, b, c)
        source = (
            f"{table_ref(c.table)} {pa}\nJOIN {table_ref(b.table)} {ba} ON {self._on(second, ba, pa)}"
            f"\nJOIN {table_ref(a.table)} {aa} ON {self._on(first, aa, ba)}"
        )
        live = self._live(c, pa) + self._live(b, ba) + self._live(a, aa)
        ident = [f"{pa}.{quote_ident(col)}" for col in c.identity]
        m = a.measures[0]
        total = _alias_name(f"total_{m.name}")
        _, a_many = self._names(a)
        b_one, b_many = self._names(b)
        c_one, c_many = self._names(c)
        return [
            Candidate(
                self._t(
                    "Which {n} {cm} have the highest {m} of {am} across their {bm}?",
                    "按{bo}汇总,{m}最高的前{n}个{co}是哪些?",
                    n=_TOP,
                    cm=c_many,
                    am=a_many,
                    bm=b_many,
                    bo=b_one,
                    co=c_one,
                    m=total_of(self._label(m), self.zh),
                ),
                self._sql(
                    [*ident, f"SUM({aa}.{quote_ident(m.name)}) AS {total}"],
                    source,
                    live,
                    ident,
                    f"{total} DESC NULLS LAST",
                    _TOP,
                ),
                "join",
                (c.key, b.key, a.key),
            )
        ]

"""The offline generator's question/SQL templates, as data; offline/query_writer.py turns them into
candidates.

Each template belongs to a *scope*: what the writer has bound when it is used (a table; one of its
categories, enum values, measures or time columns; a relation, a bridge table, a two-hop path). The
writer emits a scope's templates in the order written here, for each binding, so adding a question is
adding a record. `en` and `zh` are format strings over the scope's words; the SQL fields are format
strings over its SQL pieces, where an item `*name` splices a list (the live-rows conditions, identity
columns). `when` names a flag of the binding that must be true. What every scope binds is listed in
query_writer.py.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Template:
    scope: str
    kind: str  # count, distribution, filter, amount, stats, ranking, trend, recent, join, coverage
    en: str
    zh: str
    select: tuple[str, ...]
    where: tuple[str, ...] = ("*live",)
    group: tuple[str, ...] = ()
    order: str | None = None
    top: bool = False  # LIMIT TOP_N
    source: str = "{source}"
    when: str | None = None


COUNT = "COUNT(*) AS {count_alias}"

TEMPLATES: tuple[Template, ...] = (
    # -- one table ----------------------------------------------------------------------------------
    Template("table", "count", "How many {many} are there?", "一共有多少个{one}?", (COUNT,)),
    Template(
        "category",
        "distribution",
        "How many {many} are {lab} and how many are not?",
        "{lab}与否的{one}各有多少个?",
        ("{c}", COUNT),
        group=("{c}",),
        order="{count_alias} DESC",
        when="is_bool",
    ),
    Template(
        "category",
        "distribution",
        "How many {many} are there for each {lab}?",
        "按{lab}统计,各有多少个{one}?",
        ("{c}", COUNT),
        group=("{c}",),
        order="{count_alias} DESC",
        when="not_bool",
    ),
    Template(
        "category_value",
        "filter",
        "How many {many} have {lab} {v}?",
        "{lab}为{v}的{one}有多少个?",
        (COUNT,),
        where=("*live", "{c} = {v}"),
    ),
    Template(
        "measure",
        "stats",
        "What are the minimum, maximum and average {m} of {many}?",
        "{one}的{m}最小值、最大值和平均值分别是多少?",
        ("MIN({mc}) AS {min_alias}", "MAX({mc}) AS {max_alias}", "ROUND(AVG({mc}::numeric), 2) AS {avg}"),
    ),
    Template(
        "measure",
        "ranking",
        "Which {n} {many} have the highest {m}?",
        "{m}最高的前{n}个{one}是哪些?",
        ("*ident", "{mc}"),
        where=("*live", "{mc} IS NOT NULL"),
        order="{mc} DESC",
        top=True,
    ),
    Template(
        "measure_category",
        "amount",
        "What is the {m_total} of {many} for each {lab}?",
        "按{lab}统计{one}的{m_total}是多少?",
        ("{c}", "SUM({mc}) AS {total}"),
        group=("{c}",),
        order="{total} DESC NULLS LAST",
    ),
    Template(
        "measure_category",
        "amount",
        "What is the average {m} of {many} for each {lab}?",
        "按{lab}统计{one}的平均{m}是多少?",
        ("{c}", "ROUND(AVG({mc}::numeric), 2) AS {avg}"),
        group=("{c}",),
        order="{avg} DESC NULLS LAST",
    ),
    Template(
        "time",
        "trend",
        "How many {many} were {verb} each month?",
        "按{d}的月份统计,每月有多少个{one}?",
        ("date_trunc('month', {dc}) AS month", COUNT),
        where=("*live", "{dc} IS NOT NULL"),
        group=("1",),
        order="1",
        when="has_verb",
    ),
    Template(
        "time",
        "trend",
        "How many {many} are there per month of {d}?",
        "按{d}的月份统计,每月有多少个{one}?",
        ("date_trunc('month', {dc}) AS month", COUNT),
        where=("*live", "{dc} IS NOT NULL"),
        group=("1",),
        order="1",
        when="no_verb",
    ),
    Template(
        "time",
        "trend",
        "How many {many} {when} in the last 30 days?",
        "最近30天内({d})有多少个{one}?",
        (COUNT,),
        where=("*live", "{dc} >= CURRENT_DATE - INTERVAL '30 days'"),
    ),
    Template(
        "time",
        "recent",
        "What are the {n} most recent {many} by {d}?",
        "按{d}最近的{n}个{one}是哪些?",
        ("*ident", "{dc}"),
        order="{dc} DESC NULLS LAST",
        top=True,
    ),
    Template(
        "time_measure",
        "trend",
        "What is the monthly {m_total} of {many} {by_when} over the last 12 months?",
        "最近12个月按{d}统计,每月{one}的{m_total}是多少?",
        ("date_trunc('month', {dc}) AS month", "SUM({mc}) AS {total}"),
        where=("*live", "{dc} >= date_trunc('month', CURRENT_DATE) - INTERVAL '11 months'"),
        group=("1",),
        order="1",
    ),
    # -- a parent and its children ------------------------------------------------------------------
    Template(
        "relation",
        "join",
        "Which {n} {pm} have the most {cm}?",
        "拥有{co}最多的前{n}个{po}是哪些?",
        ("*ident", "COUNT(*) AS {n_alias}"),
        group=("*ident",),
        order="{n_alias} DESC",
        top=True,
    ),
    Template(
        "relation_measure",
        "join",
        "Which {n} {pm} have the highest {m_total} of their {cm}?",
        "{co}的{m_total}最高的前{n}个{po}是哪些?",
        ("*ident", "SUM({mc}) AS {total}"),
        group=("*ident",),
        order="{total} DESC NULLS LAST",
        top=True,
    ),
    Template(
        "relation_measure_category",
        "join",
        "What is the {m_total} of {cm} for each {olab}?",
        "按{olab}统计{co}的{m_total}是多少?",
        ("{pc}", "SUM({mc}) AS {total}"),
        group=("{pc}",),
        order="{total} DESC NULLS LAST",
    ),
    Template(
        "relation_category",
        "join",
        "How many {cm} are there for each {olab}?",
        "按{olab}统计有多少个{co}?",
        ("{pc}", "COUNT(*) AS {n_alias}"),
        group=("{pc}",),
        order="{n_alias} DESC",
    ),
    Template(
        "relation_coverage",
        "coverage",
        "How many {pm} have no {cm}?",
        "有多少个{po}没有任何{co}?",
        ("COUNT(*) AS {p_count}",),
        where=("*parent_live", "NOT EXISTS (SELECT 1 FROM {child_src} {ca} WHERE {inner})"),
        source="{parent_src} {pa}",
    ),
    # -- A <- link -> B, and C under B ---------------------------------------------------------------
    Template(
        "bridge",
        "join",
        "Which {n} {am} have the most {bm}?",
        "{bo}最多的前{n}个{ao}是哪些?",
        ("*ident", "COUNT(DISTINCT ({b_key})) AS {n_alias}"),
        group=("*ident",),
        order="{n_alias} DESC",
        top=True,
    ),
    Template(
        "bridge_under",
        "join",
        "Which {n} {am} have the highest {m_total} across their {bm}?",
        "按{bo}汇总,{m_total}最高的前{n}个{ao}是哪些?",
        ("*ident", "SUM({mc}) AS {total}"),
        group=("*ident",),
        order="{total} DESC NULLS LAST",
        top=True,
    ),
    # -- grandchild -> child -> parent ---------------------------------------------------------------
    Template(
        "path",
        "join",
        "Which {n} {cm} have the highest {m_total} of {am} across their {bm}?",
        "按{bo}汇总,{m_total}最高的前{n}个{co}是哪些?",
        ("*ident", "SUM({mc}) AS {total}"),
        group=("*ident",),
        order="{total} DESC NULLS LAST",
        top=True,
    ),
)

SCOPES = (
    "table",
    "category",
    "category_value",
    "measure",
    "measure_category",
    "time",
    "time_measure",
    "relation",
    "relation_measure",
    "relation_measure_category",
    "relation_category",
    "relation_coverage",
    "bridge",
    "bridge_under",
    "path",
)
BY_SCOPE: dict[str, tuple[Template, ...]] = {s: tuple(t for t in TEMPLATES if t.scope == s) for s in SCOPES}
if unknown := {t.scope for t in TEMPLATES} - set(SCOPES):
    raise ValueError(f"templates with unknown scopes: {sorted(unknown)}")

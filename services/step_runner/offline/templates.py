"""The offline generator's question/SQL templates, as data; offline/query_writer.py turns them into
candidates.

Each template belongs to a *scope*: what the writer has bound when it is used (a table; one of its
categories, enum values, measures or time columns; a relation, a bridge table, a two-hop path). The
writer emits a scope's templates in the order written here, for each binding, so adding a question is
adding a record. `en` and `zh` are format strings over the scope's words; the SQL fields are format
strings over its SQL pieces, where an item `*name` splices a list (the live-rows conditions, identity
columns). `when` names the flags of the binding that must be true. What every scope binds is listed in
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
    when: tuple[str, ...] = ()


COUNT = "COUNT(*) AS {count_alias}"
AVG = "ROUND(AVG({measure_col}::numeric), 2) AS {avg_alias}"

TEMPLATES: tuple[Template, ...] = (
    # -- one table ----------------------------------------------------------------------------------
    Template("table", "count", "How many {many} are there?", "一共有多少个{one}?", (COUNT,)),
    Template(
        "category",
        "distribution",
        "How many {many} {bool_yes} and how many {bool_no}?",
        "{bool_by}统计,各有多少个{one}?",
        ("{category_col}", COUNT),
        group=("{category_col}",),
        order="{count_alias} DESC",
        when=("is_bool",),
    ),
    Template(
        "category",
        "distribution",
        "How many {many} are there for each {category}?",
        "按{category}统计,各有多少个{one}?",
        ("{category_col}", COUNT),
        group=("{category_col}",),
        order="{count_alias} DESC",
        when=("not_bool",),
    ),
    Template(
        "category_value",
        "filter",
        "How many {many} have {category} {value}?",
        "{category}为{value}的{one}有多少个?",
        (COUNT,),
        where=("*live", "{category_col} = {value}"),
    ),
    Template(
        "measure",
        "stats",
        "What are the minimum, maximum and average {measure} of {many}?",
        "{one}的{measure}最小值、最大值和平均值分别是多少?",
        (
            "MIN({measure_col}) AS {min_alias}",
            "MAX({measure_col}) AS {max_alias}",
            AVG,
        ),
    ),
    Template(
        "measure",
        "ranking",
        "Which {n} {many} have the highest {measure}?",
        "{measure}最高的前{n}个{one}是哪些?",
        ("*ident", "{measure_col}"),
        where=("*live", "{measure_col} IS NOT NULL"),
        order="{measure_col} DESC",
        top=True,
    ),
    Template(
        "measure_category",
        "amount",
        "What is the {measure_total} of {many} for each {category}?",
        "按{category}统计{one}的{measure_total}是多少?",
        ("{category_col}", "SUM({measure_col}) AS {total_alias}"),
        group=("{category_col}",),
        order="{total_alias} DESC NULLS LAST",
        when=("additive", "not_bool"),
    ),
    Template(
        "measure_category",
        "amount",
        "What is the {measure_total} of {many} that {bool_yes}, and of those that {bool_no}?",
        "{bool_by}统计{one}的{measure_total}是多少?",
        ("{category_col}", "SUM({measure_col}) AS {total_alias}"),
        group=("{category_col}",),
        order="{total_alias} DESC NULLS LAST",
        when=("additive", "is_bool"),
    ),
    Template(
        "measure_category",
        "amount",
        "What is the average {measure} of {many} for each {category}?",
        "按{category}统计{one}的平均{measure}是多少?",
        ("{category_col}", AVG),
        group=("{category_col}",),
        order="{avg_alias} DESC NULLS LAST",
        when=("not_bool",),
    ),
    Template(
        "measure_category",
        "amount",
        "What is the average {measure} of {many} that {bool_yes}, and of those that {bool_no}?",
        "{bool_by}统计{one}的平均{measure}是多少?",
        ("{category_col}", AVG),
        group=("{category_col}",),
        order="{avg_alias} DESC NULLS LAST",
        when=("is_bool",),
    ),
    Template(
        "time",
        "trend",
        "How many {many} were {verb} each month?",
        "按{time}的月份统计,每月有多少个{one}?",
        ("date_trunc('month', {time_col}) AS month", COUNT),
        where=("*live", "{time_col} IS NOT NULL"),
        group=("1",),
        order="1",
        when=("has_verb",),
    ),
    Template(
        "time",
        "trend",
        "How many {many} are there per month of {time}?",
        "按{time}的月份统计,每月有多少个{one}?",
        ("date_trunc('month', {time_col}) AS month", COUNT),
        where=("*live", "{time_col} IS NOT NULL"),
        group=("1",),
        order="1",
        when=("no_verb",),
    ),
    Template(
        "time",
        "trend",
        "How many {many} {happened} in the last 30 days?",
        "最近30天内({time})有多少个{one}?",
        (COUNT,),
        where=("*live", "{time_col} >= CURRENT_DATE - INTERVAL '30 days'"),
    ),
    Template(
        "time",
        "recent",
        "What are the {n} most recently {verb} {many}?",
        "按{time}最近的{n}个{one}是哪些?",
        ("*ident", "{time_col}"),
        order="{time_col} DESC NULLS LAST",
        top=True,
        when=("has_verb",),
    ),
    Template(
        "time",
        "recent",
        "What are the {n} most recent {many} by {time}?",
        "按{time}最近的{n}个{one}是哪些?",
        ("*ident", "{time_col}"),
        order="{time_col} DESC NULLS LAST",
        top=True,
        when=("no_verb",),
    ),
    Template(
        "time_measure",
        "trend",
        "What is the monthly {measure_total} of {many} {per_time} over the last 12 months?",
        "最近12个月按{time}统计,每月{one}的{measure_total}是多少?",
        ("date_trunc('month', {time_col}) AS month", "SUM({measure_col}) AS {total_alias}"),
        where=("*live", "{time_col} >= date_trunc('month', CURRENT_DATE) - INTERVAL '11 months'"),
        group=("1",),
        order="1",
        when=("additive",),
    ),
    Template(
        "time_measure",
        "trend",
        "What is the monthly average {measure} of {many} {per_time} over the last 12 months?",
        "最近12个月按{time}统计,每月{one}的平均{measure}是多少?",
        ("date_trunc('month', {time_col}) AS month", AVG),
        where=("*live", "{time_col} >= date_trunc('month', CURRENT_DATE) - INTERVAL '11 months'"),
        group=("1",),
        order="1",
        when=("rate",),
    ),
    # -- a parent and its children ------------------------------------------------------------------
    Template(
        "relation",
        "join",
        "Which {n} {parents} have the most {children}?",
        "拥有{child}最多的前{n}个{parent}是哪些?",
        ("*ident", "COUNT(*) AS {count_alias}"),
        group=("*ident",),
        order="{count_alias} DESC",
        top=True,
    ),
    Template(
        "relation_measure",
        "join",
        "Which {n} {parents} have the highest {measure_total} of their {children}?",
        "{child}的{measure_total}最高的前{n}个{parent}是哪些?",
        ("*ident", "SUM({measure_col}) AS {total_alias}"),
        group=("*ident",),
        order="{total_alias} DESC NULLS LAST",
        top=True,
        when=("additive",),
    ),
    Template(
        "relation_measure",
        "join",
        "Which {n} {parents} have the highest average {measure} of their {children}?",
        "{child}的平均{measure}最高的前{n}个{parent}是哪些?",
        ("*ident", AVG),
        group=("*ident",),
        order="{avg_alias} DESC NULLS LAST",
        top=True,
        when=("rate",),
    ),
    Template(
        "relation_measure_category",
        "join",
        "What is the {measure_total} of {children} for each {category}?",
        "按{category}统计{child}的{measure_total}是多少?",
        ("{category_col}", "SUM({measure_col}) AS {total_alias}"),
        group=("{category_col}",),
        order="{total_alias} DESC NULLS LAST",
        when=("additive",),
    ),
    Template(
        "relation_measure_category",
        "join",
        "What is the average {measure} of {children} for each {category}?",
        "按{category}统计{child}的平均{measure}是多少?",
        ("{category_col}", AVG),
        group=("{category_col}",),
        order="{avg_alias} DESC NULLS LAST",
        when=("rate",),
    ),
    Template(
        "relation_category",
        "join",
        "How many {children} are there for each {category}?",
        "按{category}统计有多少个{child}?",
        ("{category_col}", "COUNT(*) AS {count_alias}"),
        group=("{category_col}",),
        order="{count_alias} DESC",
    ),
    Template(
        "relation_coverage",
        "coverage",
        "How many {parents} have no {children}?",
        "有多少个{parent}没有任何{child}?",
        ("COUNT(*) AS {parent_count_alias}",),
        where=("*parent_live", "NOT EXISTS (SELECT 1 FROM {child_src} {child_alias} WHERE {inner})"),
        source="{parent_src} {parent_alias}",
    ),
    # -- A <- link -> B, and C under B ---------------------------------------------------------------
    Template(
        "bridge",
        "join",
        "Which {n} {a_many} have the most {b_many}?",
        "{b_one}最多的前{n}个{a_one}是哪些?",
        ("*ident", "COUNT(DISTINCT ({b_key})) AS {count_alias}"),
        group=("*ident",),
        order="{count_alias} DESC",
        top=True,
    ),
    Template(
        "bridge_under",
        "join",
        "Which {n} {a_many} have the highest {measure_total} across their {b_many}?",
        "按{b_one}汇总,{measure_total}最高的前{n}个{a_one}是哪些?",
        ("*ident", "SUM({measure_col}) AS {total_alias}"),
        group=("*ident",),
        order="{total_alias} DESC NULLS LAST",
        top=True,
        when=("additive",),
    ),
    Template(
        "bridge_under",
        "join",
        "Which {n} {a_many} have the highest average {measure} across their {b_many}?",
        "按{b_one}汇总,平均{measure}最高的前{n}个{a_one}是哪些?",
        ("*ident", AVG),
        group=("*ident",),
        order="{avg_alias} DESC NULLS LAST",
        top=True,
        when=("rate",),
    ),
    # -- grandchild -> child -> parent ---------------------------------------------------------------
    Template(
        "path",
        "join",
        "Which {n} {c_many} have the highest {measure_total} of {a_many} across their {b_many}?",
        "按{b_one}汇总,{measure_total}最高的前{n}个{c_one}是哪些?",
        ("*ident", "SUM({measure_col}) AS {total_alias}"),
        group=("*ident",),
        order="{total_alias} DESC NULLS LAST",
        top=True,
        when=("additive",),
    ),
    Template(
        "path",
        "join",
        "Which {n} {c_many} have the highest average {measure} of {a_many} across their {b_many}?",
        "按{b_one}汇总,平均{measure}最高的前{n}个{c_one}是哪些?",
        ("*ident", AVG),
        group=("*ident",),
        order="{avg_alias} DESC NULLS LAST",
        top=True,
        when=("rate",),
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

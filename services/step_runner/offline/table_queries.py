"""Offline question/SQL templates over one table: counts, distributions, filters, amounts, rankings, trends."""

from __future__ import annotations

from services.step_runner.llm.sqltext import quote_ident, table_ref
from services.step_runner.offline.query_pieces import TOP_N, Candidate, QueryPieces, alias_name, participle
from services.step_runner.offline.schema import (
    total_of,
    type_family,
)


class TableQueries(QueryPieces):
    # -- one table ------------------------------------------------------------------------------
    def for_table(self, key: str) -> list[Candidate]:
        p = self.model.profiles[key]
        one, many = self._names(p)
        src, live, tables = table_ref(p.table), self._live(p), (key,)
        out: list[Candidate] = []

        def add(kind: str, question: str, sql: str) -> None:
            out.append(Candidate(question, sql, kind, tables))

        count_alias = alias_name(f"{p.table.name}_count")
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
            total, avg = alias_name(f"total_{m.name}"), alias_name(f"avg_{m.name}")
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
                        f"MIN({mc}) AS {alias_name('min_' + m.name)}",
                        f"MAX({mc}) AS {alias_name('max_' + m.name)}",
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
                    n=TOP_N,
                    one=one,
                    many=many,
                    m=mlab,
                ),
                self._sql([*ident, mc], src, [*live, f"{mc} IS NOT NULL"], None, f"{mc} DESC", TOP_N),
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
            dc, dlab, verb = quote_ident(d.name), self._label(d, p), participle(d)
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
                    n=TOP_N,
                    one=one,
                    many=many,
                    d=dlab,
                ),
                self._sql([*ident, dc], src, live, None, f"{dc} DESC NULLS LAST", TOP_N),
            )
            for m in p.measures[:1]:
                mc, mlab, total = quote_ident(m.name), self._label(m, p), alias_name(f"total_{m.name}")
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

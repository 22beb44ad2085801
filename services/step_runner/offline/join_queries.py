"""Offline question/SQL templates along relations: a parent's children, bridges and two-hop paths."""

from __future__ import annotations

from services.step_runner.llm.sqltext import quote_ident, table_ref
from services.step_runner.offline.query_pieces import TOP_N, Candidate, QueryPieces, alias_name
from services.step_runner.offline.schema import (
    Relation,
    total_of,
)


class JoinQueries(QueryPieces):
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
        n_alias = alias_name(f"{child.table.name}_count")
        out = [
            Candidate(
                self._t(
                    "Which {n} {pm} have the most {cm}?",
                    "拥有{co}最多的前{n}个{po}是哪些?",
                    n=TOP_N,
                    pm=p_many,
                    cm=c_many,
                    co=c_one,
                    po=p_one,
                ),
                self._sql([*ident, f"COUNT(*) AS {n_alias}"], join, live, ident, f"{n_alias} DESC", TOP_N),
                "join",
                tables,
            ),
        ]
        for m in child.measures[:1]:
            mc, total = f"{ca}.{quote_ident(m.name)}", alias_name(f"total_{m.name}")
            mlab = total_of(self._label(m, child), self.zh)
            out.append(
                Candidate(
                    self._t(
                        "Which {n} {pm} have the highest {m} of their {cm}?",
                        "{co}的{m}最高的前{n}个{po}是哪些?",
                        n=TOP_N,
                        pm=p_many,
                        cm=c_many,
                        co=c_one,
                        po=p_one,
                        m=mlab,
                    ),
                    self._sql(
                        [*ident, f"SUM({mc}) AS {total}"],
                        join,
                        live,
                        ident,
                        f"{total} DESC NULLS LAST",
                        TOP_N,
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
        p_count = alias_name(f"{parent.table.name}_count")
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
        n_alias = alias_name(f"{b.table.name}_count")
        out = [
            Candidate(
                self._t(
                    "Which {n} {am} have the most {bm}?",
                    "{bo}最多的前{n}个{ao}是哪些?",
                    n=TOP_N,
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
                    TOP_N,
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
                total = alias_name(f"total_{m.name}")
                out.append(
                    Candidate(
                        self._t(
                            "Which {n} {am} have the highest {m} across their {bm}?",
                            "按{bo}汇总,{m}最高的前{n}个{ao}是哪些?",
                            n=TOP_N,
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
                            TOP_N,
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
        total = alias_name(f"total_{m.name}")
        _, a_many = self._names(a)
        b_one, b_many = self._names(b)
        c_one, c_many = self._names(c)
        return [
            Candidate(
                self._t(
                    "Which {n} {cm} have the highest {m} of {am} across their {bm}?",
                    "按{bo}汇总,{m}最高的前{n}个{co}是哪些?",
                    n=TOP_N,
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
                    TOP_N,
                ),
                "join",
                (c.key, b.key, a.key),
            )
        ]

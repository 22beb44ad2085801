"""Question/SQL candidates from the templates (offline/templates.py) over the catalog's actual columns.

A template only fires when its scope can be bound (a measure, a category, a time column, a relation), so
every statement references real columns. Rows hidden by a soft-delete column are filtered out in every
query that reads the table. What each scope binds:

- table: one, many (the table's rows by name), n, source, live, count_alias; category (+ category,
  category_col, is_bool, not_bool, bool_yes, bool_no, bool_by); category_value (+ value); measure (+ the
  measure's bindings, min_alias, max_alias, ident); measure_category (+ category, category_col); time
  (+ time, time_col, verb, has_verb, no_verb, happened, per_time, ident); time_measure (+ the measure's
  bindings).
- relation: parent, parents, child, children, n, parent_alias, child_alias, source, live, ident,
  count_alias, parent_count_alias, parent_src, parent_live, child_src, inner; relation_measure
  (+ the measure's bindings); relation_measure_category and relation_category (+ category, category_col:
  the parent's); relation_coverage.
- bridge (A <- link -> B): a_one, a_many, b_one, b_many, n, source, live, ident, b_key, count_alias;
  bridge_under (+ the measure's bindings, with source and live extended to C).
- path (A -> B -> C): a_many, b_one, b_many, c_one, c_many, n, source, live, ident, and the measure's.

A measure's bindings (`_aggregate`): measure, measure_total, measure_col, total_alias, avg_alias, and
additive / rate: a per-row rate (a price per unit, a rating) is averaged where an additive measure is
summed, so no pair asks for "the total rating".
"""

from __future__ import annotations

import re
from typing import Any

from services.step_runner.llm.sqltext import quote_ident, table_ref
from services.step_runner.offline.query_pieces import TOP_N, Candidate, QueryPieces, alias_name, participle
from services.step_runner.offline.schema import Relation, TableProfile, total_of, type_family
from services.step_runner.offline.templates import BY_SCOPE, Template
from services.step_runner.pipeline.catalog import ColumnInfo
from services.step_runner.pipeline.column_roles import is_rate

Bindings = dict[str, Any]


def _items(parts: tuple[str, ...], b: Bindings) -> list[str]:
    out: list[str] = []
    for part in parts:
        if part.startswith("*") and part[1:].isidentifier():
            out += b[part[1:]]
        else:
            out.append(part.format(**b))
    return out


class QueryWriter(QueryPieces):
    """Every template: `for_table`, `for_relation`, `for_bridge`, `for_path`."""

    def _emit(self, scope: str, b: Bindings, tables: tuple[str, ...]) -> list[Candidate]:
        return [self._render(t, b, tables) for t in BY_SCOPE[scope] if all(b[flag] for flag in t.when)]

    def _render(self, t: Template, b: Bindings, tables: tuple[str, ...]) -> Candidate:
        sql = self._sql(
            _items(t.select, b),
            t.source.format(**b),
            _items(t.where, b),
            _items(t.group, b),
            t.order.format(**b) if t.order else None,
            TOP_N if t.top else None,
        )
        return Candidate(self._t(t.en, t.zh, **b), sql, t.kind, tables)

    @staticmethod
    def _on(rel: Relation, child_alias: str, parent_alias: str) -> str:
        pairs = zip(rel.child_columns, rel.parent_columns, strict=True)
        return " AND ".join(
            f"{child_alias}.{quote_ident(c)} = {parent_alias}.{quote_ident(pc)}" for c, pc in pairs
        )

    def _aggregate(self, m: ColumnInfo, label: str, column: str) -> Bindings:
        """A measure as the aggregating templates use it: summed when additive, averaged when it is a
        per-row rate (a price per unit, a rating: pipeline/column_roles.is_rate), whose total means nothing."""
        rate = is_rate(m.name)
        said_total = bool({"total", "subtotal"} & set(re.split(r"[^a-z0-9]+", m.name.lower())))
        return {
            "measure": label,
            "measure_total": total_of(label, self.zh),
            "measure_col": column,
            "total_alias": alias_name(f"{'sum' if said_total else 'total'}_{m.name}"),
            "avg_alias": alias_name(f"avg_{m.name}"),
            "additive": not rate,
            "rate": rate,
        }

    # -- one table ------------------------------------------------------------------------------
    def _measure(self, m: ColumnInfo, p: TableProfile) -> Bindings:
        return self._aggregate(m, self._label(m, p), quote_ident(m.name))

    def _category(self, cat: ColumnInfo, p: TableProfile) -> Bindings:
        is_bool = type_family(cat.data_type) == "bool"
        label = self._label(cat, p)
        # a flag's label as a predicate: "is online" -> "are online" / "are not", "has discount" -> "have
        # discount" / "do not"
        verb, _, rest = label.partition(" ")
        yes, no = {"is": ("are", "are not"), "has": ("have", "do not")}.get(verb, ("are", "are not"))
        # and in Chinese: "按是否已验证购买" (a comment that asks 是否, without the table's name before it),
        # else "按有效与否"
        asks = label.removeprefix(self._names(p)[0]) if "是否" in label else ""
        bool_by = f"按{asks}" if asks.startswith("是否") else f"按{label}与否"
        return {
            "category_col": quote_ident(cat.name),
            "category": label,
            "is_bool": is_bool,
            "not_bool": not is_bool,
            "bool_yes": f"{yes} {rest if verb in ('is', 'has') and rest else label}",
            "bool_no": no,
            "bool_by": bool_by,
        }

    def for_table(self, key: str) -> list[Candidate]:
        p = self.model.profiles[key]
        one, many = self._names(p)
        tables = (key,)
        b: Bindings = {
            "one": one,
            "many": many,
            "n": TOP_N,
            "source": table_ref(p.table),
            "live": self._live(p),
            "count_alias": alias_name(f"{p.table.name}_count"),
        }
        out = self._emit("table", b, tables)
        for cat in p.categories[:3]:
            bc = b | self._category(cat, p)
            out += self._emit("category", bc, tables)
            values = [v for v in (cat.enum_values or []) if self._literal(cat, v) is not None]
            for value in values[:2]:
                out += self._emit("category_value", bc | {"value": self._literal(cat, value)}, tables)
        for m in p.measures[:2]:
            bm = b | self._measure(m, p)
            bm |= {
                "min_alias": alias_name("min_" + m.name),
                "max_alias": alias_name("max_" + m.name),
                "ident": [quote_ident(c) for c in p.identity if c != m.name],
            }
            out += self._emit("measure", bm, tables)
            for cat in p.categories[:2]:
                out += self._emit("measure_category", bm | self._category(cat, p), tables)
        for d in p.time_columns[:2]:
            dlab, verb = self._label(d, p), participle(d)
            bd = b | {
                "time": dlab,
                "time_col": quote_ident(d.name),
                "verb": verb,
                "has_verb": bool(verb),
                "no_verb": not verb,
                "happened": f"were {verb}" if verb else f"have their {dlab}",
                "per_time": f"{verb}" if verb else f"by {dlab}",
                "ident": [quote_ident(c) for c in p.identity if c != d.name],
            }
            out += self._emit("time", bd, tables)
            for m in p.measures[:1]:
                out += self._emit("time_measure", bd | self._measure(m, p), tables)
        return out

    # -- along relations ------------------------------------------------------------------------
    def for_relation(self, rel: Relation) -> list[Candidate]:
        child, parent = self.model.profiles[rel.child], self.model.profiles[rel.parent]
        if child.key == parent.key:
            return []
        (child_one, child_many), (parent_one, parent_many) = self._names(child), self._names(parent)
        ca, pa = self._aliases(child, parent)
        parent_src, child_src = table_ref(parent.table), table_ref(child.table)
        b: Bindings = {
            "parents": parent_many,
            "parent": parent_one,
            "children": child_many,
            "child": child_one,
            "n": TOP_N,
            "parent_alias": pa,
            "child_alias": ca,
            "source": f"{parent_src} {pa}\nJOIN {child_src} {ca} ON {self._on(rel, ca, pa)}",
            "live": self._live(parent, pa) + self._live(child, ca),
            "ident": [f"{pa}.{quote_ident(c)}" for c in parent.identity],
            "count_alias": alias_name(f"{child.table.name}_count"),
            "parent_count_alias": alias_name(f"{parent.table.name}_count"),
            "parent_src": parent_src,
            "parent_live": self._live(parent, pa),
            "child_src": child_src,
            "inner": " AND ".join([self._on(rel, ca, pa), *self._live(child, ca)]),
        }
        tables = (parent.key, child.key)
        out = self._emit("relation", b, tables)
        categories = [
            {
                "category_col": f"{pa}.{quote_ident(cat.name)}",
                "category": self._owned(self._label(cat, parent), parent_one),
            }
            for cat in parent.categories[:1]
        ]
        for m in child.measures[:1]:
            bm = b | self._aggregate(m, self._label(m, child), f"{ca}.{quote_ident(m.name)}")
            out += self._emit("relation_measure", bm, tables)
            for cat in categories:
                out += self._emit("relation_measure_category", bm | cat, tables)
        for cat in categories:
            out += self._emit("relation_category", b | cat, tables)
        return out + self._emit("relation_coverage", b, tables)

    def for_bridge(self, to_a: Relation, to_b: Relation, under_b: Relation | None) -> list[Candidate]:
        """A <- link -> B, e.g. the service areas of each route; with `under_b` (C -> B, C with a measure),
        the total of C's measure per A across its B (each route's revenue across its service areas)."""
        link = self.model.profiles[to_a.child]
        a, b_ = self.model.profiles[to_a.parent], self.model.profiles[to_b.parent]
        if len({a.key, b_.key, link.key}) < 3:
            return []
        aa, la, ba = self._aliases(a, link, b_)
        (a_one, a_many), (b_one, b_many) = self._names(a), self._names(b_)
        source = (
            f"{table_ref(a.table)} {aa}\nJOIN {table_ref(link.table)} {la} ON {self._on(to_a, la, aa)}"
            f"\nJOIN {table_ref(b_.table)} {ba} ON {self._on(to_b, la, ba)}"
        )
        b: Bindings = {
            "a_many": a_many,
            "a_one": a_one,
            "b_many": b_many,
            "b_one": b_one,
            "n": TOP_N,
            "source": source,
            "live": self._live(a, aa) + self._live(link, la) + self._live(b_, ba),
            "ident": [f"{aa}.{quote_ident(col)}" for col in a.identity],
            "b_key": ", ".join(f"{ba}.{quote_ident(col)}" for col in b_.pk) or f"{ba}.*",
            "count_alias": alias_name(f"{b_.table.name}_count"),
        }
        out = self._emit("bridge", b, (a.key, link.key, b_.key))
        if under_b is not None:
            c = self.model.profiles[under_b.child]
            if c.measures and c.key not in {a.key, b_.key, link.key}:
                ca = self._aliases(a, link, b_, c)[3]
                m = c.measures[0]
                bu = (
                    b
                    | self._aggregate(m, self._label(m), f"{ca}.{quote_ident(m.name)}")
                    | {
                        "source": f"{source}\nJOIN {table_ref(c.table)} {ca} ON {self._on(under_b, ca, ba)}",
                        "live": b["live"] + self._live(c, ca),
                    }
                )
                out += self._emit("bridge_under", bu, (a.key, link.key, b_.key, c.key))
        return out

    def for_path(self, first: Relation, second: Relation) -> list[Candidate]:
        """grandchild -> child -> parent, e.g. the total of order_items amounts per customer."""
        a, b_, c = (self.model.profiles[k] for k in (first.child, first.parent, second.parent))
        if len({a.key, b_.key, c.key}) < 3 or not a.measures:
            return []
        aa, ba, pa = self._aliases(a, b_, c)
        m = a.measures[0]
        (_, a_many), (b_one, b_many), (c_one, c_many) = self._names(a), self._names(b_), self._names(c)
        b: Bindings = {
            "a_many": a_many,
            "b_many": b_many,
            "b_one": b_one,
            "c_many": c_many,
            "c_one": c_one,
            "n": TOP_N,
            "source": (
                f"{table_ref(c.table)} {pa}\nJOIN {table_ref(b_.table)} {ba} ON {self._on(second, ba, pa)}"
                f"\nJOIN {table_ref(a.table)} {aa} ON {self._on(first, aa, ba)}"
            ),
            "live": self._live(c, pa) + self._live(b_, ba) + self._live(a, aa),
            "ident": [f"{pa}.{quote_ident(col)}" for col in c.identity],
        } | self._aggregate(m, self._label(m), f"{aa}.{quote_ident(m.name)}")
        return self._emit("path", b, (c.key, b_.key, a.key))

"""Relations between the tables of a catalog: declared foreign keys, and the ones their names imply.

Many business databases declare no foreign key at all, yet `service_area_id` plainly points at the table
of service areas. `infer_relations(tables)` is the one place that says so. It is pure (the catalog in, the
relations out, in a stable order) and is read by:
- the rendered schema of LLM prompts (each relation shown as a join: `JOIN bss_service_area ON ...`),
- the quality pass of step 3 (whether two tables in one statement are joined along a known relation),
- the offline generator (which joins to write; engineer Q: call `infer_relations(catalog.tables)` and use
  `Relation.join_condition(child_alias, parent_alias)` rather than a second inference).

A column `<thing>_id` (not the table's own single-column primary key) of table C points at table P when
1. P is named `<thing>` or its plural (`things`, `thinges`, `thingies`), or `<prefix>_<thing>` / its
   plural for any prefix (`bss_service_area` for `service_area_id`; a P sharing C's prefix wins);
2. P's key column is its single-column primary key, else a column `id`, else a column named like the
   child column (`service_area_id` in both tables);
3. both columns have the same type family (integer with bigint, varchar with text, uuid with uuid).
A declared foreign key always wins; a table never points at itself by inference. Among candidates, the
same schema wins over another one, an exact name over a prefixed one, then names sort alphabetically.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

_NUMERIC = re.compile(
    r"^(smallint|integer|bigint|int|int2|int4|int8|numeric|decimal|smallserial|serial|bigserial)\b"
)
_TEXT = re.compile(r"^(text|varchar|character varying|character|char|bpchar|citext)\b")


@dataclass(frozen=True)
class Relation:
    """child.child_columns -> parent.parent_columns (tables by qualified name), declared or inferred."""

    child: str
    child_columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    inferred: bool = False

    def join_condition(self, child_alias: str, parent_alias: str) -> str:
        """`c.service_area_id = p.id` (AND-ed for a composite key)."""
        return " AND ".join(
            f"{child_alias}.{c} = {parent_alias}.{p}"
            for c, p in zip(self.child_columns, self.parent_columns, strict=True)
        )

    def describe(self) -> str:
        """The line a rendered schema shows: `orders.customer_id -> customers.id (inferred from the name)`."""
        cols = ", ".join(self.child_columns)
        refs = ", ".join(self.parent_columns)
        how = " (inferred from the name; no foreign key declared)" if self.inferred else ""
        return f"JOIN {self.parent} ON {self.child}.{cols} = {self.parent}.{refs}{how}"


def type_family(data_type: str) -> str:
    t = data_type.lower().strip()
    if _NUMERIC.match(t):
        return "integer"
    if _TEXT.match(t):
        return "text"
    return t


def _plurals(stem: str) -> list[str]:
    out = [stem, stem + "s", stem + "es"]
    if stem.endswith("y"):
        out.append(stem[:-1] + "ies")
    return out


def _prefix(name: str) -> str:
    return name.split("_", 1)[0] if "_" in name else ""


def _column(table: TableInfo, name: str) -> ColumnInfo | None:
    return next((c for c in table.columns if c.name == name), None)


def _pk(table: TableInfo) -> list[str]:
    return list(table.primary_key) or [c.name for c in table.columns if c.is_primary_key]


def _key_column(parent: TableInfo, child_column: str) -> ColumnInfo | None:
    pk = _pk(parent)
    if len(pk) == 1:
        return _column(parent, pk[0])
    return _column(parent, "id") or _column(parent, child_column)


def _declared(tables: list[TableInfo]) -> list[Relation]:
    rels = []
    for t in tables:
        for fk in t.foreign_keys:
            parent = next(
                (p for p in tables if p.schema_name == fk.ref_schema and p.name == fk.ref_table), None
            )
            if parent is None or not fk.columns or len(fk.columns) != len(fk.ref_columns):
                continue
            if all(_column(t, c) for c in fk.columns) and all(_column(parent, c) for c in fk.ref_columns):
                rels.append(
                    Relation(
                        t.qualified_name, tuple(fk.columns), parent.qualified_name, tuple(fk.ref_columns)
                    )
                )
    return rels


def _candidates(stem: str, child: TableInfo, tables: list[TableInfo]) -> list[TableInfo]:
    names = _plurals(stem)
    ranked: list[tuple[tuple[int, int, int, str], TableInfo]] = []
    for t in tables:
        if t is child:
            continue
        low = t.name.lower()
        if low in names:
            exact = 0
        elif any(low.endswith("_" + n) for n in names):
            exact = 1 if _prefix(low) == _prefix(child.name.lower()) else 2
        else:
            continue
        ranked.append(((int(t.schema_name != child.schema_name), exact, len(low), low), t))
    return [t for _, t in sorted(ranked, key=lambda item: item[0])]


def infer_relations(tables: list[TableInfo]) -> list[Relation]:
    """Declared foreign keys first (catalog order), then the relations the column names imply (see the
    module docstring for the rules)."""
    rels = _declared(tables)
    linked = {(r.child, c) for r in rels for c in r.child_columns}
    for t in tables:
        own_pk = _pk(t)
        for col in t.columns:
            name = col.name.lower()
            if not name.endswith("_id") or len(name) <= 3 or (t.qualified_name, col.name) in linked:
                continue
            if own_pk == [col.name]:
                continue
            for parent in _candidates(name[:-3], t, tables):
                ref = _key_column(parent, col.name)
                if ref is None or type_family(ref.data_type) != type_family(col.data_type):
                    continue
                rels.append(Relation(t.qualified_name, (col.name,), parent.qualified_name, (ref.name,), True))
                linked.add((t.qualified_name, col.name))
                break
    return rels


def related_pairs(relations: list[Relation]) -> set[frozenset[str]]:
    """The unordered pairs of tables (qualified names) a relation links, for "are these two joinable"."""
    return {frozenset((r.child, r.parent)) for r in relations if r.child != r.parent}

"""The catalog's tables by name, and the identifiers a question must not spell (the quality pass's index)."""

from __future__ import annotations

import re
from functools import cached_property

from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.relations import Relation, infer_relations


class SchemaIndex:
    """The catalog's tables by name, and the identifiers a question must not spell."""

    def __init__(self, tables: list[TableInfo]) -> None:
        self.tables = tables
        self._by_name: dict[str, TableInfo] = {}
        for t in tables:
            self._by_name.setdefault(t.qualified_name.lower(), t)
            self._by_name.setdefault(f"{t.schema_name}.{t.name}".lower(), t)
            self._by_name.setdefault(t.name.lower(), t)
        prefixes = [t.name.split("_", 1)[0].lower() for t in tables if "_" in t.name]
        # a prefix every table carries (`bss_`, `t_`): `order` of order_items/order_status is a word
        common = {p for p in prefixes if len(tables) >= 2 and prefixes.count(p) == len(tables)}
        self.shared_prefixes = frozenset(p for p in common if len(p) <= 5)
        names = {t.name for t in tables} | {c.name for t in tables for c in t.columns}
        self.identifiers = frozenset(n.lower() for n in names if "_" in n or re.search(r"[a-z][A-Z]", n))
        self.split_identifiers = frozenset(
            " ".join(_split(n)) for n in names if len(_split(n)) >= 2 and all(w.isascii() for w in _split(n))
        )

    @cached_property
    def relations(self) -> list[Relation]:
        """The relations between the tables, declared and inferred (pipeline/relations.py)."""
        return infer_relations(self.tables)

    def table(self, schema: str | None, name: str | None) -> TableInfo | None:
        if not name:
            return None
        key = f"{schema}.{name}".lower() if schema else name.lower()
        return self._by_name.get(key)


def _split(identifier: str) -> list[str]:
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", identifier)
    return [w for w in re.split(r"[_\s]+", spaced.lower()) if w]

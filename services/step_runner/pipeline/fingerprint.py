"""A table's fingerprint: what its DDL and documentation are made from, hashed, so an incremental run can
tell an unchanged table from a changed one without comparing files.

The fingerprint covers the table's kind, comment, columns (name, type, nullability, default, identity,
generated expression, domain, comment, enum values), primary key, unique constraints and foreign keys. It
leaves out what changes with the data alone (row counts, sample rows), so new rows do not make a table
"changed". It is taken from the catalogs before the LLM fills any description.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from services.step_runner.pipeline.introspect import IntrospectedTable

FINGERPRINT_VERSION = 1


def canonical_table(table: IntrospectedTable) -> dict[str, Any]:
    """The facts a fingerprint hashes, as plain JSON (order of columns kept: it is part of the DDL)."""
    info = table.info
    columns = []
    for column in info.columns:
        detail = table.columns.get(column.name)
        columns.append(
            {
                "name": column.name,
                "type": column.data_type,
                "ddl_type": detail.ddl_type if detail else None,
                "nullable": column.nullable,
                "default": column.default,
                "identity": detail.identity if detail else None,
                "generated": detail.generated if detail else None,
                "domain": detail.domain if detail else None,
                "comment": column.comment,
                "enum_values": column.enum_values,
            }
        )
    return {
        "version": FINGERPRINT_VERSION,
        "table": table.ref.qualified,
        "kind": table.kind,
        "comment": info.comment,
        "columns": columns,
        "primary_key": info.primary_key,
        "unique": sorted(table.unique_constraints),
        "foreign_keys": sorted(
            (fk.model_dump(mode="json") for fk in info.foreign_keys),
            key=lambda fk: json.dumps(fk, sort_keys=True),
        ),
        "enum_types": sorted([e.schema, e.name, e.labels] for e in table.enum_types),
    }


def table_fingerprint(table: IntrospectedTable) -> str:
    text = json.dumps(canonical_table(table), sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class SchemaDiff:
    """Tables (schema.name) of a new schema compared with an earlier one, each list sorted."""

    unchanged: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)

    @property
    def touched(self) -> set[str]:
        """The tables whose documents must be made again: changed or new."""
        return {*self.changed, *self.new}

    def counts(self) -> dict[str, int]:
        return {k: len(v) for k, v in self.as_dict().items()}

    def as_dict(self) -> dict[str, list[str]]:
        return {
            "unchanged": self.unchanged,
            "changed": self.changed,
            "new": self.new,
            "dropped": self.dropped,
        }


def diff_fingerprints(before: dict[str, str], after: dict[str, str]) -> SchemaDiff:
    """`before`/`after`: {schema.table: fingerprint}. A table listed before and not after is dropped."""
    return SchemaDiff(
        unchanged=sorted(t for t in after if t in before and before[t] == after[t]),
        changed=sorted(t for t in after if t in before and before[t] != after[t]),
        new=sorted(t for t in after if t not in before),
        dropped=sorted(t for t in before if t not in after),
    )

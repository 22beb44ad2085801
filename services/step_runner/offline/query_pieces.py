"""The pieces every offline question/SQL template is built from: the Candidate it yields, bilingual text,
labels, aliases, quoted columns, literals, the live-rows condition and the SELECT layout (QueryPieces)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from services.step_runner.llm.sqltext import RESERVED, quote_ident, quote_literal
from services.step_runner.offline.schema import (
    SchemaModel,
    TableProfile,
    column_label,
    entity_names,
    type_family,
    words,
    zh_text,
)
from services.step_runner.pipeline.catalog import ColumnInfo

TOP_N = 10


@dataclass(frozen=True)
class Candidate:
    question: str
    sql: str
    kind: str  # count, distribution, filter, amount, stats, ranking, trend, recent, join, coverage
    tables: tuple[str, ...]


def alias_name(text: str) -> str:
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


def participle(col: ColumnInfo) -> str | None:
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


class QueryPieces:
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
        return [f"{QueryPieces._col(alias, col.name)} {cond}"]

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

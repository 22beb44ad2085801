"""The offline TextToSQLModel: deterministic, schema-grounded answers with no network.

It is the default provider, so a pipeline runs end to end without an LLM account, and tests get the
same output for the same catalog every time. Questions come out in Chinese when the business context
is written in Chinese, in English otherwise.
"""

from __future__ import annotations

import hashlib
import math

from services.step_runner.llm.base import QuestionSQL, TableDescription, Theme
from services.step_runner.llm.sqltext import normalize_statement, sql_fingerprint
from services.step_runner.offline.describe import describe
from services.step_runner.offline.query_pieces import Candidate
from services.step_runner.offline.query_writer import QueryWriter
from services.step_runner.offline.repair import repair
from services.step_runner.offline.schema import SchemaModel, entity_names, has_cjk
from services.step_runner.offline.themes import importance, propose
from services.step_runner.pipeline.catalog import TableInfo
from services.step_runner.pipeline.question_duplicates import find_duplicates
from shared import llm_usage

# the share of a theme's pairs that read two tables or more, when the theme's tables are related
JOIN_SHARE = 0.3
# Words in a theme that say which kinds of question it is about (English and Chinese).
_FOCUS = {
    "trend": ("trend", "month", "over time", "recent", "daily", "趋势", "每月", "变化", "近期"),
    "ranking": ("top", "rank", "highest", "best", "排名", "最高", "靠前"),
    "distribution": ("breakdown", "distribution", "by ", "segment", "分布", "按"),
    "amount": ("amount", "total", "revenue", "sales", "sum", "金额", "合计", "总和", "销售"),
    "join": ("their", "relation", " and ", "per ", "关联", "综合"),
    "coverage": ("none", "without", "没有", "关联"),
    "count": ("overview", "count", "how many", "概况", "数量"),
    "filter": ("status", "overview", "状态", "概况"),
    "stats": ("average", "spread", "平均"),
    "recent": ("recent", "latest", "最近"),
}


def _metered() -> None:
    """An offline call costs no tokens, but counts as a call (and obeys a spent budget) like any other."""
    llm_usage.before_call()
    llm_usage.record_call("offline", 0, 0, 0.0)


class OfflineTextToSQLModel:
    """TextToSQLModel that answers from the catalog alone."""

    name = "offline"

    def __init__(self) -> None:
        # Questions and statements already given in this run (one step 2): a later theme never repeats
        # them, nor nearly repeats a question (pair_quality's duplicate rule). Themes are asked in order.
        self._given_questions: list[str] = []
        self._given_sql: set[str] = set()

    async def describe_table(self, table: TableInfo, business_context: str) -> TableDescription:
        _metered()
        return describe(table, SchemaModel([table]), has_cjk(business_context))

    async def propose_themes(self, tables: list[TableInfo], business_context: str, count: int) -> list[Theme]:
        _metered()
        return propose(SchemaModel(tables), count, has_cjk(business_context))

    async def generate_pairs(
        self, theme: Theme, tables: list[TableInfo], business_context: str, count: int
    ) -> list[QuestionSQL]:
        _metered()
        pairs = generate(
            theme, tables, has_cjk(business_context), count, self._given_questions, self._given_sql
        )
        self._given_questions += [p.question for p in pairs]
        self._given_sql.update(sql_fingerprint(p.sql) for p in pairs)
        return pairs

    async def repair_sql(
        self, sql: str, error: str, ddl: str, tables: list[TableInfo], question: str = ""
    ) -> str | None:
        _metered()
        return repair(sql, error, tables)  # fixes names and casts only, so the meaning stays

    async def summarize_scope(self, tables: list[TableInfo], business_context: str) -> str:
        _metered()
        return summarize(tables, business_context)

    async def aclose(self) -> None:
        return None


def _related(theme: Theme, model: SchemaModel) -> list[str]:
    wanted = [t.lower() for t in theme.related_tables]
    keys = [k for w in wanted for k, p in model.profiles.items() if w in {k.lower(), p.table.name.lower()}]
    return list(dict.fromkeys(keys)) or list(model.profiles)


def _candidates(model: SchemaModel, keys: list[str], chinese: bool) -> list[Candidate]:
    writer = QueryWriter(model, chinese)
    inside = set(keys)
    out: list[Candidate] = []
    for key in keys:
        if not model.is_link(key):
            out += writer.for_table(key)
    rels = [r for r in model.relations if r.child in inside and r.parent in inside]
    for rel in rels:
        if not model.is_link(rel.child):
            out += writer.for_relation(rel)
    for link in (k for k in keys if model.is_link(k)):
        ends = [r for r in model.parents_of(link) if r.parent in inside]
        for to_a in ends:
            for to_b in ends:
                if to_a.parent == to_b.parent:
                    continue
                unders = [r for r in model.children_of(to_b.parent) if not model.is_link(r.child)]
                for under in [None, *unders]:
                    out += [
                        c for c in writer.for_bridge(to_a, to_b, under) if under is None or len(c.tables) > 3
                    ]
    # A grandchild with its own key to the grandparent makes the path a detour with another meaning (orders
    # shipped to a customer's addresses are not the customer's orders): the direct relation asks it.
    direct = {(r.child, r.parent) for r in model.relations}
    for first in rels:
        for second in rels:
            if (
                first.parent == second.child
                and first.child != second.parent
                and (first.child, second.parent) not in direct
            ):
                out += writer.for_path(first, second)
    return out


def _score(candidate: Candidate, theme: Theme, hub: str) -> float:
    text = " ".join([theme.name, theme.description, *theme.metrics]).lower()
    score = sum(2.0 for word in _FOCUS.get(candidate.kind, ()) if word in text)
    if candidate.tables[0] == hub or hub in candidate.tables:
        score += 1.5
    if len(candidate.tables) > 1 and all(t in theme.related_tables for t in candidate.tables):
        score += 1.0
    return score


def _tiebreak(theme: Theme, candidate: Candidate) -> str:
    return hashlib.sha256(f"{theme.name}\n{candidate.sql}".encode()).hexdigest()


def _repeats(question: str, earlier: list[str]) -> bool:
    """Whether `question` repeats (or nearly repeats) one of `earlier`, by the quality pass's rule."""
    return len(earlier) in find_duplicates([*earlier, question])


def generate(
    theme: Theme,
    tables: list[TableInfo],
    chinese: bool,
    count: int,
    given_questions: list[str] | None = None,
    given_sql: set[str] | None = None,
) -> list[QuestionSQL]:
    """Up to `count` pairs for `theme`, none repeating `given_questions` / `given_sql` (earlier themes')."""
    model = SchemaModel(tables)
    keys = _related(theme, model)
    hub = keys[0]
    # The theme's own tables first; when they cannot carry `count` questions, their neighbours too.
    widened = list(dict.fromkeys([*keys, *(n for k in keys for n in model.neighbours(k))]))
    out: list[QuestionSQL] = []
    asked: list[str] = list(given_questions or [])
    seen_sql: set[str] = set(given_sql or ())

    def take(cand: Candidate) -> bool:
        sql = normalize_statement(cand.sql)
        if sql is None:
            return False
        s_key = sql_fingerprint(sql)
        if s_key in seen_sql or _repeats(cand.question, asked):
            return False
        asked.append(cand.question)
        seen_sql.add(s_key)
        out.append(QuestionSQL(question=cand.question, sql=sql))
        return True

    scopes = [
        sorted(
            _candidates(model, scope, chinese), key=lambda c: (-_score(c, theme, hub), _tiebreak(theme, c))
        )
        for scope in (keys, widened)
    ]
    # Business questions span tables: a share of every theme's pairs joins, when the schema allows it.
    quota, joined = math.ceil(count * JOIN_SHARE), 0
    for cand in (c for ranked in scopes for c in ranked if len(c.tables) > 1):
        if joined >= quota or len(out) >= count:
            break
        joined += take(cand)
    for ranked in scopes:
        for cand in ranked:
            if len(out) >= count:
                return out
            take(cand)
    return out


def summarize(tables: list[TableInfo], business_context: str) -> str:
    chinese = has_cjk(business_context)
    model = SchemaModel(tables)
    themes = propose(model, 5, chinese)
    ranked = sorted(model.profiles.values(), key=lambda p: -importance(model, p))
    sep = "、" if chinese else ", "
    entities = sep.join(entity_names(p.table, chinese, model.prefix).one for p in ranked[:8])
    metrics = sep.join(dict.fromkeys(m for t in themes for m in t.metrics[:2]))
    lines = []
    if chinese:
        lines += [
            "=== 数据库业务范围 ===",
            f"当前数据库存储的是{business_context.strip()}的相关数据,"
            f"共 {len(tables)} 张表,主要涉及{entities}等业务实体。",
            "",
            "=== 核心业务主题 ===",
        ]
        lines += [f"- {t.name}:{t.description}(相关表:{sep.join(t.related_tables)})" for t in themes]
        lines += ["", "=== 关键业务指标 ===", metrics or "记录数量", "", "=== 数据表 ==="]
    else:
        lines += [
            "=== Business scope of the database ===",
            f"This database holds the data of: {business_context.strip()}. "
            f"It has {len(tables)} tables, mainly about {entities}.",
            "",
            "=== Main business themes ===",
        ]
        lines += [f"- {t.name}: {t.description} (tables: {sep.join(t.related_tables)})" for t in themes]
        lines += ["", "=== Key metrics ===", metrics or "row counts", "", "=== Tables ==="]
    for p in model.profiles.values():
        comment = p.table.comment or describe(p.table, model, chinese).table_comment
        lines.append(f"- {p.key}: {comment}")
    return "\n".join(lines) + "\n"

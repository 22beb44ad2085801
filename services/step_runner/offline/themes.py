"""Business themes read off the table graph (offline provider).

Tables joined by foreign keys (declared or inferred from `<x>_id` names) form connected components;
the best-connected table of a component with measures and time columns is its hub. Candidate themes
(a hub's analysis, trends, breakdowns, rankings, relations, overviews) are scored and picked greedily so
that the chosen ones spread over different tables and kinds.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.step_runner.llm.base import Theme
from services.step_runner.offline.schema import (
    SchemaModel,
    TableProfile,
    column_label,
    entity_names,
    is_money,
    summary_of,
    zh_text,
)

_KIND_WEIGHT = {
    "analysis": 6.0,
    "trend": 5.0,
    "ranking": 4.5,
    "breakdown": 4.0,
    "relation": 3.5,
    "overview": 1.0,
}


@dataclass(frozen=True)
class _Option:
    kind: str
    primary: str
    theme: Theme
    score: float


def importance(model: SchemaModel, p: TableProfile) -> float:
    return (
        2.0 * len(model.neighbours(p.key))
        + min(len(p.measures), 3)
        + min(len(p.time_columns), 1) * 1.5
        + min(len(p.categories), 2) * 0.5
    )


def propose(model: SchemaModel, count: int, chinese: bool) -> list[Theme]:
    options = _options(model, chinese)
    chosen: list[_Option] = []
    names: set[str] = set()
    while options and len(chosen) < count:

        def adjusted(o: _Option) -> tuple[float, str]:
            # A hub table outscores the rest by far; these penalties make the themes cover the schema.
            same_table = sum(1 for c in chosen if c.primary == o.primary)
            covered = sum(1 for c in chosen if o.primary in c.theme.related_tables)
            same_kind = sum(1 for c in chosen if c.kind == o.kind)
            return (o.score - 10.0 * same_table - 1.5 * covered - 2.0 * same_kind, o.theme.name)

        best = max(options, key=lambda o: (adjusted(o)[0], _reverse(adjusted(o)[1])))
        options.remove(best)
        if best.theme.name.lower() not in names:
            names.add(best.theme.name.lower())
            chosen.append(best)
    return [c.theme for c in chosen]


def _reverse(text: str) -> tuple[int, ...]:
    """Sort key that makes max() prefer the alphabetically first name among equal scores."""
    return tuple(-ord(ch) for ch in text)


def _option(
    model: SchemaModel,
    p: TableProfile,
    chinese: bool,
    kind: str,
    title: str,
    description: str,
    related: list[str],
    metrics: list[str],
) -> _Option:
    tables = list(dict.fromkeys([p.key, *related]))
    entities = [entity_names(model.profiles[k].table, chinese, model.prefix).one for k in tables]
    theme = Theme(
        name=title,
        description=description,
        related_tables=tables,
        entities=list(dict.fromkeys(entities)),
        metrics=list(dict.fromkeys(metrics)),
    )
    return _Option(kind, p.key, theme, _KIND_WEIGHT[kind] + importance(model, p))


def _options(model: SchemaModel, chinese: bool) -> list[_Option]:
    out: list[_Option] = []

    def t(en: str, zh: str, **kw: str) -> str:
        return zh_text(zh.format(**kw)) if chinese else en.format(**kw)

    for p in model.profiles.values():
        if model.is_link(p.key):
            continue  # a bridge table is no business subject; its ends' themes use it
        n = entity_names(p.table, chinese, model.prefix)
        one, many = n.one, n.many
        parents = [r.parent for r in model.parents_of(p.key)]
        neigh = model.neighbours(p.key)
        measures = [column_label(m, chinese) for m in p.measures[:3]]
        # a described column reads "服务区映射的来源系统类型": the owner is already in the theme's name
        cats = [column_label(c, chinese).removeprefix(f"{one}的") for c in p.categories[:3]]
        times = [column_label(d, chinese) for d in p.time_columns[:1]]
        count_metric = t("{one} count", "{one}数量", one=one)
        total_metrics = [summary_of(c, m, chinese) for c, m in zip(p.measures, measures, strict=False)]
        neigh_ones = [entity_names(model.profiles[k].table, chinese, model.prefix).one for k in neigh]
        # Themes are named after the business: whose revenue, whose ranking (the parent a row belongs to).
        parent_one = (
            entity_names(model.profiles[parents[0]].table, chinese, model.prefix).one if parents else one
        )
        money = any(is_money(m) for m in p.measures)
        children_money = any(
            is_money(m) for r in model.children_of(p.key) for m in model.profiles[r.child].measures
        )

        def add(kind: str, title: str, description: str, related: list[str], metrics: list[str]) -> None:
            out.append(_option(model, p, chinese, kind, title, description, related, metrics))  # noqa: B023

        if neigh:
            add(
                "analysis",
                t("{One} revenue analysis", "{one}营收分析", One=one.capitalize(), one=one)
                if children_money
                else t("{Many} analysis", "{one}综合分析", Many=many.capitalize(), one=one),
                t(
                    "Volumes, amounts and distribution of {many} together with the related {others}.",
                    "结合{others}分析{one}的规模、金额与分布。",
                    many=many,
                    one=one,
                    others=", ".join(neigh_ones) if not chinese else "、".join(neigh_ones),
                ),
                neigh,
                [count_metric, *total_metrics],
            )
        if times:
            add(
                "trend",
                t("{P} revenue trends", "{p}营收趋势分析", P=parent_one.capitalize(), p=parent_one)
                if money and parents
                else t("{One} trends over time", "{one}趋势分析", One=one.capitalize(), one=one),
                t(
                    "How the number of {many}{amounts} changes month by month and over recent days, by {d}.",
                    "按{d}观察{one}数量{amounts_zh}按月和近期的变化趋势。",
                    many=many,
                    one=one,
                    d=times[0],
                    amounts=(" and their " + ", ".join(measures)) if measures else "",
                    amounts_zh=("及" + "、".join(measures)) if measures else "",
                ),
                parents,
                [
                    t("monthly {one} count", "每月{one}数量", one=one),
                    *[t("monthly {m}", "每月{m}", m=m) for m in total_metrics[:1]],
                ],
            )
        if measures:
            add(
                "ranking",
                t("{P} ranking by {m}", "{p}{m}排名", P=parent_one.capitalize(), p=parent_one, m=measures[0]),
                t(
                    "Which {many} rank highest by {ms}, and the spread of those values.",
                    "按{ms}对{one}排名,并查看其最小、最大和平均值。",
                    many=many,
                    one=one,
                    ms=", ".join(measures) if not chinese else "、".join(measures),
                ),
                parents,
                [t("highest {m}", "最高{m}", m=m) for m in measures[:2]]
                + [t("average {m}", "平均{m}", m=measures[0])],
            )
        if cats:
            add(
                "breakdown",
                t("{One} breakdown by {c}", "{one}{c}分布", One=one.capitalize(), one=one, c=cats[0]),
                t(
                    "How {many} are distributed across {cs}{amounts}.",
                    "{one}在{cs}上的分布{amounts_zh}。",
                    many=many,
                    one=one,
                    cs=", ".join(cats) if not chinese else "、".join(cats),
                    amounts=(", with " + ", ".join(total_metrics)) if total_metrics else "",
                    amounts_zh=("及" + "、".join(total_metrics)) if total_metrics else "",
                ),
                [],
                [t("{one} count by {c}", "各{c}的{one}数量", one=one, c=c) for c in cats[:2]],
            )
        for rel in model.children_of(p.key):
            child = model.profiles[rel.child]
            if child.key == p.key:
                continue
            c_names = entity_names(child.table, chinese, model.prefix)
            score_kind = "relation"
            add(
                score_kind,
                t(
                    "{Many} and their {cmany}",
                    "{one}与{cone}关联分析",
                    Many=many.capitalize(),
                    one=one,
                    cmany=c_names.many,
                    cone=c_names.one,
                ),
                t(
                    "Which {many} have the most {cmany}, which have none, and what their {cmany} add up to.",
                    "哪些{one}拥有最多的{cone}、哪些没有{cone},以及{cone}的汇总情况。",
                    many=many,
                    one=one,
                    cmany=c_names.many,
                    cone=c_names.one,
                ),
                [child.key],
                [t("{cone} count per {one}", "每个{one}的{cone}数量", one=one, cone=c_names.one)],
            )
        add(
            "overview",
            t("{Many} overview", "{one}概况", Many=many.capitalize(), one=one),
            t(
                "Basic facts about {many}: how many there are and their key attributes.",
                "{one}的基本情况:数量与主要属性。",
                many=many,
                one=one,
            ),
            [],
            [count_metric],
        )
    return out

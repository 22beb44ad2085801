"""The offline generator's choices on a schema like issue #13's (audit columns everywhere, soft-deleted rows,
no foreign keys, a shared prefix): no audit subject, live rows only, joins along inferred relations,
business names, no repeats, the same output every time."""

from __future__ import annotations

import re

import pytest

from services.step_runner.offline.provider import OfflineTextToSQLModel, _candidates
from services.step_runner.offline.schema import SchemaModel
from services.step_runner.pipeline.catalog import ColumnInfo, ForeignKey, TableInfo
from services.step_runner.pipeline.pair_quality import assess
from services.step_runner.pipeline.quality_metrics import measure, tables_read
from services.step_runner.pipeline.schema_index import SchemaIndex


def _audit() -> list[ColumnInfo]:
    ts = "timestamp without time zone"
    return [
        ColumnInfo(name="create_ts", data_type=ts),
        # step 1 records the few values of a column as enum values: the old generator grouped by them
        ColumnInfo(name="created_by", data_type="varchar(50)", enum_values=["admin", "etl"]),
        ColumnInfo(name="update_ts", data_type=ts),
        ColumnInfo(name="updated_by", data_type="varchar(50)", enum_values=["admin", "etl"]),
        ColumnInfo(name="delete_ts", data_type=ts),
        ColumnInfo(name="deleted_by", data_type="varchar(50)", enum_values=["admin"]),
    ]


def _table(name: str, columns: list[ColumnInfo], comment: str | None = None, pk: bool = True) -> TableInfo:
    key = [ColumnInfo(name="id", data_type="varchar(32)", is_primary_key=True)] if pk else []
    return TableInfo(
        name=name, comment=comment, columns=key + columns + _audit(), primary_key=["id"] if pk else []
    )


def _c(name: str, data_type: str, **kw: object) -> ColumnInfo:
    return ColumnInfo(name=name, data_type=data_type, **kw)  # type: ignore[arg-type]


def highway() -> list[TableInfo]:
    return [
        _table("bss_company", [_c("company_name", "varchar(255)")]),
        _table("bss_section_route", [_c("section_name", "varchar(255)"), _c("route_name", "varchar(255)")]),
        _table(
            "bss_service_area",
            [
                _c("service_area_name", "varchar(255)", comment="服务区名称"),
                _c("company_id", "varchar(32)"),
                _c("service_state", "varchar(50)", comment="服务区状态", enum_values=["开放", "关闭"]),
            ],
            comment="服务区",
        ),
        _table(
            "bss_section_route_area_link",
            [_c("section_route_id", "varchar(32)"), _c("service_area_id", "varchar(32)")],
            pk=False,
        ),
        _table(
            "bss_business_day_data",
            [
                _c("oper_date", "date", comment="统计日期"),
                _c("branch_name", "varchar(255)", comment="档口名称", enum_values=["餐饮", "便利店"]),
                _c("wx", "numeric(19,4)", comment="微信支付金额"),
                _c("pay_sum", "numeric(19,4)", comment="支付总金额"),
                _c("order_sum", "integer", comment="订单总数"),
                _c("service_area_id", "varchar(32)"),
            ],
            comment="服务区档口每日营业数据",
        ),
        _table(
            "bss_car_day_count",
            [
                _c("count_date", "date"),
                _c("customer_count", "bigint"),
                _c("car_type", "varchar(100)", enum_values=["客车", "货车"]),
                _c("service_area_id", "varchar(32)"),
            ],
        ),
    ]


async def _generate(context: str) -> tuple[list[str], list[tuple[str, str]]]:
    model = OfflineTextToSQLModel()
    tables = highway()
    themes = await model.propose_themes(tables, context, 5)
    pairs = []
    for theme in themes:
        pairs += [(p.question, p.sql) for p in await model.generate_pairs(theme, tables, context, 10)]
    return [t.name for t in themes], pairs


@pytest.mark.parametrize("context", ["高速公路服务区经营数据", "Highway service areas"])
async def test_no_bookkeeping_live_rows_only_and_joins(context: str) -> None:
    _, pairs = await _generate(context)
    assert len(pairs) >= 30
    schema = SchemaIndex(highway())
    for question, sql in pairs:
        codes = {f.code for f in assess(question, sql, schema)}
        assert "bookkeeping_subject" not in codes, (question, sql)
        assert "missing_soft_delete_filter" not in codes, (question, sql)
        for audit in ("created_by", "updated_by", "deleted_by", "create_ts", "update_ts"):
            assert audit not in sql, (question, sql)
        # every table read keeps its live rows
        assert sql.count("delete_ts IS NULL") >= len(tables_read(sql, schema)), sql
    metrics = measure([{"question": q, "sql": s} for q, s in pairs], highway())
    assert metrics.joined >= 0.2 and metrics.duplicates == 0, metrics
    joined = [tables_read(s, schema) for _, s in pairs]
    assert any({"bss_service_area", "bss_business_day_data"} <= {t.name for t in ts} for ts in joined)
    # the bridge table is a way between routes and service areas, not a subject of its own
    assert any("bss_section_route_area_link" in s and "bss_section_route " in s for _, s in pairs)


async def test_chinese_questions_and_themes_speak_business() -> None:
    themes, pairs = await _generate("高速公路服务区经营数据")
    text = " ".join(themes + [q for q, _ in pairs])
    assert not re.search(r"bss|created by|deleted by|创建时间|business day data", text, re.I), text
    assert "服务区营收分析" in themes, themes
    assert any("支付总金额" in q for q, _ in pairs), pairs  # the total first among the measures


async def test_same_catalog_same_pairs() -> None:
    assert await _generate("高速公路服务区经营数据") == await _generate("高速公路服务区经营数据")


def test_quality_metrics_count_what_the_flags_say() -> None:
    pairs = [
        {
            "question": "各服务区的支付总金额?",
            "sql": (
                "SELECT a.service_area_name, SUM(d.pay_sum) FROM bss_service_area a JOIN bss_business_day_data d"
                " ON d.service_area_id = a.id WHERE a.delete_ts IS NULL AND d.delete_ts IS NULL"
                " GROUP BY a.service_area_name"
            ),
        },
        {
            "question": "谁创建的公司最多?",
            "sql": (
                "SELECT created_by, COUNT(*) FROM bss_company WHERE delete_ts IS NULL GROUP BY created_by"
            ),
        },
        {"question": "一共有多少个公司?", "sql": "SELECT COUNT(*) FROM bss_company"},
        {"question": "一共有多少个公司?", "sql": "SELECT COUNT(*) FROM bss_company WHERE delete_ts IS NULL"},
    ]
    m = measure(pairs, highway())
    assert (m.pairs, m.soft_delete_needed, m.duplicates) == (4, 4, 1)
    assert m.bookkeeping == 0.25 and m.joined == 0.25 and m.soft_delete_filtered == 0.75
    assert m.raw_identifiers == 0.0
    assert m.misses() == ["bookkeeping 25% > 5%", "soft-delete filtered 75% < 95%", "1 duplicates"]


def test_no_path_through_a_table_when_the_rows_have_their_own_key_to_the_end() -> None:
    # orders -> addresses -> customers is a detour (orders shipped to a customer's addresses) when orders
    # has its own customer_id; order_items -> orders -> customers is not
    money = "numeric(12,2)"
    tables = [
        _table("customers", [_c("full_name", "varchar(100)")]),
        _table("addresses", [_c("customer_id", "varchar(32)"), _c("city", "varchar(50)")]),
        _table(
            "orders",
            [_c("customer_id", "varchar(32)"), _c("shipping_address_id", "varchar(32)"), _c("amount", money)],
        ),
        _table("order_items", [_c("order_id", "varchar(32)"), _c("quantity", "integer")]),
    ]
    to_address = ForeignKey(
        columns=["shipping_address_id"], ref_schema="public", ref_table="addresses", ref_columns=["id"]
    )
    tables[2] = tables[2].model_copy(update={"foreign_keys": [to_address]})
    model = SchemaModel(tables)
    paths = {
        tuple(model.profiles[k].table.name for k in c.tables)
        for c in _candidates(model, list(model.profiles), chinese=False)
        if c.tables and len(c.tables) == 3 and c.kind == "join" and "across their" in c.question
    }
    assert ("customers", "orders", "order_items") in paths, paths
    assert ("customers", "addresses", "orders") not in paths, paths

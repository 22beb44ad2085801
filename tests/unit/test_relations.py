"""Relation inference (issue #13, item 3): declared foreign keys and `<thing>_id` -> the table of <thing>."""

from __future__ import annotations

import pytest

from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo
from services.step_runner.pipeline.column_roles import (
    column_marker,
    column_role,
    is_rate,
    soft_delete_column,
)
from services.step_runner.pipeline.relations import infer_relations
from tests.support.highway_catalog import highway_tables
from tests.support.shop_catalog import shop_tables


def _t(name: str, *cols: tuple[str, str], pk: str = "id") -> TableInfo:
    return TableInfo(
        name=name, columns=[ColumnInfo(name=n, data_type=t) for n, t in cols], primary_key=[pk] if pk else []
    )


def edges(tables: list[TableInfo]) -> set[tuple[str, str, str, str, bool]]:
    return {
        (r.child, r.child_columns[0], r.parent, r.parent_columns[0], r.inferred)
        for r in infer_relations(tables)
    }


def test_prefixed_tables_without_foreign_keys() -> None:
    assert edges(highway_tables()) == {
        ("bss_service_area", "company_id", "bss_company", "id", True),
        ("bss_service_area", "section_route_id", "bss_section_route", "id", True),
        ("bss_business_day_data", "service_area_id", "bss_service_area", "id", True),
        ("bss_car_day_count", "service_area_id", "bss_service_area", "id", True),
    }


def test_declared_keys_win_and_plurals_are_found() -> None:
    found = edges(shop_tables())
    assert ("orders", "customer_id", "customers", "id", False) in found
    assert ("order_items", "product_id", "products", "id", True) in found


def test_types_must_match_and_no_self_reference() -> None:
    tables = [
        _t("company", ("id", "integer"), ("parent_company_id", "integer")),
        _t("staff", ("id", "integer"), ("company_id", "uuid"), ("category_id", "integer")),
        _t("categories", ("id", "bigint")),
        _t("person", ("person_id", "integer"), pk="person_id"),
    ]
    assert edges(tables) == {("staff", "category_id", "categories", "id", True)}


def test_key_column_named_like_the_child_column() -> None:
    tables = [
        _t("area", ("area_id", "varchar(20)"), pk=""),
        _t("sales", ("id", "integer"), ("area_id", "text")),
    ]
    assert edges(tables) == {("sales", "area_id", "area", "area_id", True)}


def test_same_prefix_wins() -> None:
    tables = [
        _t("crm_company", ("id", "integer")),
        _t("bss_company", ("id", "integer")),
        _t("bss_area", ("id", "integer"), ("company_id", "integer")),
    ]
    assert edges(tables) == {("bss_area", "company_id", "bss_company", "id", True)}


def test_column_roles() -> None:
    company = highway_tables()[0]
    customers = shop_tables()[0]
    assert column_role("created_by", company) == "actor"
    assert column_role("create_ts", company) == "creation_time"  # beside created_by: the audit trail
    assert column_role("created_at", customers) is None  # the customer's sign-up time
    assert column_role("delete_ts", company) == "soft_delete"
    assert column_role("company_name", company) is None
    sd = soft_delete_column(company)
    assert sd is not None and sd.name == "delete_ts"
    assert column_marker(sd, company) == "[soft-delete: keep rows where delete_ts IS NULL]"
    by = next(c for c in company.columns if c.name == "updated_by")
    assert column_marker(by, company) == "[audit: never a question's subject]"


def test_creation_time_is_bookkeeping_only_beside_an_actor_column() -> None:
    customers = _t("customers", ("id", "integer"), ("birth_date", "date"), ("created_at", "timestamptz"))
    assert column_role("created_at", customers) is None  # the sign-up: "new customers per month"
    audited = _t(
        "bss_x", ("id", "integer"), ("oper_date", "date"), ("create_ts", "timestamp"), ("created_by", "text")
    )
    assert column_role("create_ts", audited) == "creation_time"
    assert (
        column_role("updated_at", customers) == "change_time"
        and column_role("etl_batch_id", None) == "technical"
    )


@pytest.mark.parametrize(
    "name",
    ["price", "unit_price", "unit_cost", "rating", "score", "discount_rate", "tax_pct", "avg_wait", "单价"],
)
def test_per_row_rates(name: str) -> None:
    assert is_rate(name)


@pytest.mark.parametrize(
    "name",
    [
        "total_price",
        "price_amount",
        "amount",
        "quantity",
        "units",
        "unit_count",
        "salary",
        "pay_sum",
        "revenue",
    ],
)
def test_additive_measures_are_no_rates(name: str) -> None:
    assert not is_rate(name)

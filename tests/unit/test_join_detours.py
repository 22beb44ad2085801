"""`detour_join`: a table joined only to connect two tables with a relation of their own is flagged; a
table the question uses (a column selected, grouped or filtered on), a path with no shortcut and a statement
that joins the two directly are not."""

from __future__ import annotations

import json

import pytest

from services.step_runner.pipeline.catalog import ColumnInfo, ForeignKey, TableInfo
from services.step_runner.pipeline.pair_quality import assess
from services.step_runner.pipeline.quality_metrics import measure
from services.step_runner.pipeline.schema_index import SchemaIndex
from tests.support.offline_golden import GOLDEN, catalog


def _table(name: str, *columns: str, fks: tuple[ForeignKey, ...] = ()) -> TableInfo:
    cols = [ColumnInfo(name="id", data_type="integer", is_primary_key=True)]
    for spec in columns:
        col, data_type = spec.split(" ", 1)
        cols.append(ColumnInfo(name=col, data_type=data_type))
    return TableInfo(name=name, columns=cols, primary_key=["id"], foreign_keys=list(fks))


def _fk(column: str, table: str) -> ForeignKey:
    return ForeignKey(columns=[column], ref_schema="public", ref_table=table, ref_columns=["id"])


TABLES = [
    _table("customers", "full_name text", "deleted_at timestamp"),
    _table("addresses", "customer_id integer", "city text", fks=(_fk("customer_id", "customers"),)),
    _table(
        "orders",
        "customer_id integer",
        "shipping_address_id integer",
        "total_amount numeric(12,2)",
        fks=(_fk("customer_id", "customers"), _fk("shipping_address_id", "addresses")),
    ),
    _table("order_items", "order_id integer", "quantity integer", fks=(_fk("order_id", "orders"),)),
]
SCHEMA = SchemaIndex(TABLES)
VIA_ADDRESSES = (
    "SELECT c.id, c.full_name, SUM(o.total_amount) AS total FROM customers c "
    "JOIN addresses a ON a.customer_id = c.id JOIN orders o ON o.shipping_address_id = a.id "
    "WHERE c.deleted_at IS NULL GROUP BY c.id, c.full_name ORDER BY total DESC LIMIT 10"
)


def _detours(sql: str) -> list[str]:
    return [f.detail for f in assess("q", sql, SCHEMA) if f.code == "detour_join"]


@pytest.mark.parametrize(
    "sql",
    [
        VIA_ADDRESSES,
        # the same with the conditions in WHERE, reversed, unaliased
        "SELECT customers.full_name, SUM(orders.total_amount) FROM customers, addresses, orders "
        "WHERE addresses.id = orders.shipping_address_id AND customers.id = addresses.customer_id "
        "GROUP BY customers.full_name",
    ],
)
def test_a_table_that_only_connects_two_related_tables_is_a_detour(sql: str) -> None:
    (detail,) = _detours(sql)
    assert "joins addresses only to connect" in detail and "orders.customer_id" in detail, detail


@pytest.mark.parametrize(
    "sql",
    [
        # the question is about the addresses: their city is grouped on, selected or filtered on
        "SELECT a.city, SUM(o.total_amount) FROM customers c JOIN addresses a ON a.customer_id = c.id "
        "JOIN orders o ON o.shipping_address_id = a.id GROUP BY a.city",
        "SELECT c.full_name, SUM(o.total_amount) FROM customers c JOIN addresses a ON a.customer_id = c.id "
        "JOIN orders o ON o.shipping_address_id = a.id WHERE a.city = 'Lyon' GROUP BY 1",
        # an unqualified column only the middle table has
        "SELECT c.full_name, SUM(o.total_amount) FROM customers c JOIN addresses a ON a.customer_id = c.id "
        "JOIN orders o ON o.shipping_address_id = a.id WHERE city = 'Lyon' GROUP BY 1",
        # order_items -> orders -> customers: order_items has no key to customers
        "SELECT c.full_name, SUM(i.quantity) FROM customers c JOIN orders o ON o.customer_id = c.id "
        "JOIN order_items i ON i.order_id = o.id GROUP BY 1",
        # the direct relation is used as well
        "SELECT c.full_name, COUNT(*) FROM customers c JOIN addresses a ON a.customer_id = c.id "
        "JOIN orders o ON o.shipping_address_id = a.id AND o.customer_id = c.id GROUP BY 1",
        # the direct join alone
        "SELECT c.full_name, SUM(o.total_amount) FROM customers c JOIN orders o ON o.customer_id = c.id "
        "GROUP BY 1",
    ],
)
def test_no_detour_when_the_middle_table_is_part_of_the_question(sql: str) -> None:
    assert _detours(sql) == []


def test_make_quality_counts_detours() -> None:
    pairs = [{"question": "Which customers spend the most?", "sql": VIA_ADDRESSES}]
    metrics = measure(pairs, TABLES)
    assert metrics.detours == 1.0
    assert any(miss.startswith("detours") for miss in metrics.misses())


GENERATED = json.loads(GOLDEN.read_text(encoding="utf-8"))  # held equal to the generator's output


@pytest.mark.parametrize("case", sorted(GENERATED))
def test_the_offline_generator_writes_no_detour(case: str) -> None:
    # every candidate the offline generator writes for the demo, HR and highway catalogs (the golden file)
    schema = SchemaIndex(catalog(case.split("/")[0]))
    detoured = [
        c["question"]
        for c in GENERATED[case]["candidates"]
        if any(f.code == "detour_join" for f in assess(c["question"], c["sql"], schema))
    ]
    assert detoured == []

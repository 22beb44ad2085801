"""A small shop schema as step 1 would describe it, and the DDL that creates it for real.

Used by the offline generator's unit tests and by the qa_generation integration test (which runs every
generated statement through EXPLAIN against these tables).
"""

from __future__ import annotations

from services.step_runner.pipeline.catalog import ColumnInfo, ForeignKey, SchemaCatalog, TableInfo


def _c(name: str, data_type: str, **kw: object) -> ColumnInfo:
    return ColumnInfo(name=name, data_type=data_type, **kw)  # type: ignore[arg-type]


def shop_tables() -> list[TableInfo]:
    customers = TableInfo(
        name="customers",
        columns=[
            _c("id", "integer", nullable=False, is_primary_key=True),
            _c("name", "varchar(100)", sample_values=["Ann Lee", "Bo Chen"]),
            _c("email", "varchar(200)"),
            _c("segment", "varchar(20)", enum_values=["retail", "wholesale", "vip"]),
            _c("city", "text", sample_values=["Paris", "Lyon"]),
            _c("created_at", "timestamp without time zone"),
            _c("is_deleted", "boolean", default="false"),
        ],
        primary_key=["id"],
        estimated_rows=120,
    )
    products = TableInfo(
        name="products",
        comment="Products the shop sells",
        columns=[
            _c("id", "integer", nullable=False, is_primary_key=True),
            _c("sku", "varchar(32)"),
            _c("name", "text"),
            _c("category", "varchar(30)", enum_values=["books", "toys", "kids' games"]),
            _c("group", "varchar(8)", enum_values=["a", "b"]),
            _c("price", "numeric(10,2)", sample_values=[9.5, 20]),
            _c("created_at", "timestamp with time zone"),
        ],
        primary_key=["id"],
    )
    orders = TableInfo(
        name="orders",
        columns=[
            _c("id", "bigint", nullable=False, is_primary_key=True),
            _c("customer_id", "integer", nullable=False),
            _c("status", "varchar(16)", enum_values=["new", "paid", "shipped", "cancelled"]),
            _c("Channel", "varchar(10)", enum_values=["web", "store"]),
            _c("total_amount", "numeric(12,2)"),
            _c("order_date", "date"),
            _c("created_at", "timestamp without time zone", comment="When the order was placed"),
            _c("deleted_at", "timestamp without time zone"),
        ],
        primary_key=["id"],
        foreign_keys=[
            ForeignKey(
                columns=["customer_id"], ref_schema="public", ref_table="customers", ref_columns=["id"]
            )
        ],
    )
    order_items = TableInfo(
        name="order_items",
        columns=[
            _c("id", "bigint", nullable=False, is_primary_key=True),
            _c("order_id", "bigint", nullable=False),
            _c("product_id", "integer", nullable=False),  # no declared key: inferred from the name
            _c("quantity", "integer"),
            _c("unit_price", "numeric(10,2)"),
        ],
        primary_key=["id"],
        foreign_keys=[
            ForeignKey(columns=["order_id"], ref_schema="public", ref_table="orders", ref_columns=["id"])
        ],
    )
    return [customers, products, orders, order_items]


def shop_catalog(business_context: str = "An online shop: customers, orders and products") -> SchemaCatalog:
    return SchemaCatalog(db_name="shop", business_context=business_context, tables=shop_tables())


SHOP_DDL = """
CREATE TABLE customers (
    id integer PRIMARY KEY, name varchar(100), email varchar(200), segment varchar(20), city text,
    created_at timestamp without time zone, is_deleted boolean DEFAULT false
);
CREATE TABLE products (
    id integer PRIMARY KEY, sku varchar(32), name text, category varchar(30), "group" varchar(8),
    price numeric(10,2), created_at timestamp with time zone
);
CREATE TABLE orders (
    id bigint PRIMARY KEY, customer_id integer NOT NULL REFERENCES customers(id), status varchar(16),
    "Channel" varchar(10), total_amount numeric(12,2), order_date date,
    created_at timestamp without time zone, deleted_at timestamp without time zone
);
CREATE TABLE order_items (
    id bigint PRIMARY KEY, order_id bigint NOT NULL REFERENCES orders(id), product_id integer NOT NULL,
    quantity integer, unit_price numeric(10,2)
);
"""

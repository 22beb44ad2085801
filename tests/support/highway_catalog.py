"""A highway service-area business as issue #13 describes it: every table carries
create_ts/created_by/update_ts/updated_by/delete_ts/deleted_by, tables share the prefix `bss_`, and no
foreign key is declared (`service_area_id`, `company_id`, `section_route_id` link them by name only).

`highway_tables()` is the catalog step 1 would write; `HIGHWAY_DDL` creates the same tables for real.
"""

from __future__ import annotations

from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo

_AUDIT = [
    ("create_ts", "timestamp without time zone"),
    ("created_by", "varchar(50)"),
    ("update_ts", "timestamp without time zone"),
    ("updated_by", "varchar(50)"),
    ("delete_ts", "timestamp without time zone"),
    ("deleted_by", "varchar(50)"),
]


def _table(name: str, comment: str, columns: list[tuple[str, str]]) -> TableInfo:
    cols = [ColumnInfo(name="id", data_type="uuid", nullable=False, is_primary_key=True)]
    cols += [ColumnInfo(name=n, data_type=t) for n, t in columns + _AUDIT]
    return TableInfo(name=name, comment=comment, columns=cols, primary_key=["id"], estimated_rows=1000)


def highway_tables() -> list[TableInfo]:
    return [
        _table("bss_company", "公司", [("company_name", "varchar(100)"), ("company_no", "varchar(20)")]),
        _table(
            "bss_section_route",
            "路段路线",
            [("section_name", "varchar(100)"), ("route_name", "varchar(100)"), ("code", "varchar(20)")],
        ),
        _table(
            "bss_service_area",
            "服务区",
            [
                ("service_area_name", "varchar(100)"),
                ("service_area_no", "varchar(20)"),
                ("company_id", "uuid"),
                ("section_route_id", "uuid"),
                ("service_state", "varchar(20)"),
            ],
        ),
        _table(
            "bss_business_day_data",
            "服务区每日营收",
            [
                ("oper_date", "date"),
                ("service_no", "varchar(20)"),
                ("service_name", "varchar(100)"),
                ("branch_name", "varchar(100)"),
                ("wx", "numeric(19,4)"),
                ("zfb", "numeric(19,4)"),
                ("rmb", "numeric(19,4)"),
                ("pay_sum", "numeric(19,4)"),
                ("order_sum", "integer"),
                ("service_area_id", "uuid"),
            ],
        ),
        _table(
            "bss_car_day_count",
            "服务区每日车流",
            [
                ("count_date", "date"),
                ("customer_count", "bigint"),
                ("car_type", "varchar(100)"),
                ("service_area_id", "uuid"),
            ],
        ),
    ]


def _ddl(table: TableInfo) -> str:
    cols = ",\n    ".join(
        f"{c.name} {c.data_type}{' PRIMARY KEY' if c.is_primary_key else ''}" for c in table.columns
    )
    return f"CREATE TABLE {table.name} (\n    {cols}\n);"


HIGHWAY_DDL = "\n".join(_ddl(t) for t in highway_tables())

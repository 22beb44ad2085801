import datetime as dt

from services.demo_db.generator import generate_rows
from services.step_runner.llm.base import TableDescription
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo
from services.step_runner.pipeline.descriptions import fill_descriptions, needs_description
from services.step_runner.pipeline.doc_chunks import chunk_markdown
from services.step_runner.pipeline.identifiers import ident, relation


def test_only_missing_descriptions_are_filled_by_column_name() -> None:
    table = TableInfo(
        name="orders",
        comment=None,
        columns=[
            ColumnInfo(name="id", data_type="integer", comment="Kept as it is"),
            ColumnInfo(name="Status", data_type="text"),
            ColumnInfo(name="total", data_type="numeric", comment="  "),
        ],
    )
    assert needs_description(table)
    described = TableDescription(
        table_comment="All orders",
        column_comments={"total": "Order total", "id": "Overwritten?", "status": "State", "ghost": "x"},
    )
    filled, count = fill_descriptions(table, described)
    assert count == 3
    assert filled.comment == "All orders"
    assert [c.comment for c in filled.columns] == ["Kept as it is", "State", "Order total"]
    assert not needs_description(filled)


def test_chunks_are_sections_with_the_title_and_bounded() -> None:
    doc = "# orders\n\nAll orders\n\n## Columns\n\n" + "\n".join(f"- **c{i}** text" for i in range(300))
    doc += "\n\n## Allowed values\n\n- **status**: a, b"
    chunks = chunk_markdown(doc, max_chars=500)
    assert chunks[0] == "# orders\n\nAll orders"
    assert all(len(c) <= 500 for c in chunks)
    assert all(c.startswith("# orders\n") for c in chunks)
    assert sum(c.count("- **c") for c in chunks) == 300
    assert chunks[-1] == "# orders\n## Allowed values\n\n- **status**: a, b"


def test_identifiers_are_quoted_only_when_needed() -> None:
    assert ident("orders") == "orders"
    assert ident("order") == '"order"' and ident("user") == '"user"'
    assert ident("Orders") == '"Orders"' and ident('a"b') == '"a""b"'
    assert relation("public", "orders") == "orders" and relation("Sales", "x") == '"Sales".x'


def test_demo_rows_are_deterministic_for_a_day() -> None:
    day = dt.date(2024, 6, 1)
    first, second = generate_rows(day), generate_rows(day)
    assert first == second
    assert len(first["orders"]) == 4000
    assert all(day - dt.timedelta(days=550) <= o[12].date() <= day for o in first["orders"])

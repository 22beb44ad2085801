import pytest

from services.step_runner.pipeline.table_list import (
    TableListError,
    TableRef,
    parse_table_list,
    parse_table_names,
    render_table_list,
)


def test_lines_commas_comments_and_duplicates() -> None:
    text = """
    # the shop
    orders, customers  -- main tables
    public.orders
    Sales.Invoices   # folded to lower case
    "Sales"."Invoices"
    customers
    """
    assert parse_table_list(text) == [
        TableRef("public", "orders"),
        TableRef("public", "customers"),
        TableRef("sales", "invoices"),
        TableRef("Sales", "Invoices"),
    ]


def test_file_stems_and_display() -> None:
    assert TableRef("public", "orders").file_stem == "orders"
    assert TableRef("sales", "invoices").file_stem == "sales__invoices"
    assert TableRef("sales", "invoices").display == "sales.invoices"


@pytest.mark.parametrize(
    "entry",
    [
        "orders; DROP TABLE customers",
        "orders--",  # fine as a comment, so test the quoted forms below instead
        'x"; DROP TABLE y; --',
        "a.b.c",
        "../etc/passwd",
        '"we\'ird"',
        "1orders",
        "orders customers",
        '"a""b"',
    ],
)
def test_injections_are_rejected(entry: str) -> None:
    if entry == "orders--":
        assert parse_table_list(entry) == [TableRef("public", "orders")]
        return
    with pytest.raises(TableListError) as info:
        parse_table_names([entry])
    assert "not a table name" in str(info.value)


def test_every_bad_entry_is_named() -> None:
    with pytest.raises(TableListError) as info:
        parse_table_list("orders\nbad name\nx;y\n")
    assert "'bad name'" in str(info.value) and "'x;y'" in str(info.value)


def test_empty_list_is_an_error() -> None:
    with pytest.raises(TableListError, match="no table"):
        parse_table_list("# nothing\n -- here\n")


def test_rendered_list_parses_back() -> None:
    refs = [TableRef("public", "orders"), TableRef("Sales", "Invoices"), TableRef("public", "select")]
    assert parse_table_list(render_table_list(refs)) == [*refs[:2], TableRef("public", "select")]

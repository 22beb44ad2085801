import pytest

from services.step_runner.pipeline.sql_statements import (
    UnsafeSql,
    referenced_names,
    single_read_only_statement,
    split_statements,
)


def test_split_respects_strings_comments_and_dollar_quotes() -> None:
    sql = """
    SELECT ';' AS a, "semi;colon" FROM t; -- trailing; comment
    /* block ; /* nested ; */ still */ SELECT $tag$ ; $tag$, E'it\\'s;', $$;$$;
    ;  -- empty statement
    """
    assert split_statements(sql) == [
        "SELECT ';' AS a, \"semi;colon\" FROM t",
        "SELECT $tag$ ; $tag$, E'it\\'s;', $$;$$",
    ]


def test_comment_only_text_has_no_statements() -> None:
    assert split_statements("-- nothing\n/* at all */") == []


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT 1",
        "select * from orders;",
        "  WITH x AS (SELECT 1) SELECT * FROM x  ;  ",
        "(SELECT 1) UNION (SELECT 2)",
        "SELECT 'DELETE FROM t; DROP TABLE x' AS text",
        'SELECT "update", t.delete FROM t',
    ],
)
def test_read_only_queries_pass(sql: str) -> None:
    assert single_read_only_statement(sql) == sql.strip().rstrip(";").strip()


def test_comments_around_the_statement_are_dropped() -> None:
    assert (
        single_read_only_statement("-- why\nSELECT 1 /* in */ + 1 -- ; DROP TABLE t")
        == "SELECT 1 /* in */ + 1"
    )


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("", "empty"),
        ("SELECT 1; SELECT 2", "2 statements"),
        ("SELECT 1; DROP TABLE orders", "2 statements"),
        ("DELETE FROM orders", "DELETE is not a read-only query"),
        ("EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN is not a read-only query"),
        ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "contains DELETE"),
        ("SELECT * INTO copy_of_orders FROM orders", "contains INTO"),
        ("SELECT * FROM orders FOR UPDATE", "contains UPDATE"),
        ("SELECT nextval('orders_id_seq')", "nextval"),
        ("SELECT pg_sleep(10)", "pg_sleep"),
        ("SELECT 'unterminated", "unterminated"),
        ("SELECT $x$ never closed", "unterminated dollar"),
        ("SELECT 1 /* open", "unterminated /*"),
        ("DO $$ BEGIN DELETE FROM t; END $$", "DO is not"),
    ],
)
def test_everything_else_is_rejected_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(UnsafeSql) as info:
        single_read_only_statement(sql)
    assert reason in str(info.value)


def test_referenced_names_fold_unquoted_identifiers() -> None:
    names = referenced_names('SELECT o.id FROM Orders o JOIN "Sales"."Invoices" i ON true')
    assert {"orders", "Sales", "Invoices", "id"} <= names

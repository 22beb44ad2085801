"""The parse-tree SQL gate (services/step_runner/pipeline/sql_gate.py) without a database: what it keeps,
what it refuses and why. The bypasses of issue #7 finding 7 passed the old text filter."""

from __future__ import annotations

import pytest

from services.step_runner.pipeline.sql_gate import (
    PlanLimits,
    SqlRejected,
    _plan_limits_error,
    check_text,
    referenced_names,
)

VALID = [
    "SELECT 1",
    "select * from orders;",
    "  WITH x AS (SELECT 1) SELECT * FROM x  ;  ",
    "(SELECT 1) UNION (SELECT 2)",
    "SELECT 'DELETE FROM t; DROP TABLE x' AS text",
    'SELECT "update", t.delete FROM t',
    "SELECT o.for_share, s.share FROM orders o JOIN shares s ON s.id = o.id",
    "SELECT count(*) FILTER (WHERE kind = 'share') FROM t",
    "SELECT date_trunc('month', ordered_at), sum(total_amount) FROM orders GROUP BY 1",
    "SELECT product_id, avg(rating) FROM reviews GROUP BY 1 ORDER BY 2 DESC LIMIT 10",
    "SELECT c.city, count(DISTINCT o.order_id) AS orders, round(avg(o.total_amount)::numeric, 2) "
    "FROM customers c JOIN orders o ON o.customer_id = c.customer_id "
    "WHERE o.ordered_at >= CURRENT_DATE - INTERVAL '90 days' AND c.deleted_at IS NULL "
    "GROUP BY c.city HAVING count(*) > 5 ORDER BY orders DESC LIMIT 20",
    "SELECT extract(year FROM ordered_at) AS y, EXTRACT(MONTH FROM ordered_at) AS m FROM orders",
    "SELECT substring(name FROM 1 FOR 3), trim(both ' ' FROM name), position('a' IN name) FROM t",
    "SELECT ordered_at AT TIME ZONE 'UTC', coalesce(a, 0), nullif(b, 0), greatest(a, b) FROM t",
    "SELECT CASE WHEN total > 100 THEN 'big' ELSE 'small' END, total::text, CAST(total AS integer) FROM t",
    "SELECT rank() OVER (PARTITION BY store_id ORDER BY revenue DESC), lag(revenue) OVER w FROM s "
    "WINDOW w AS (ORDER BY day)",
    "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY total) FROM orders",
    "SELECT string_agg(name, ', ' ORDER BY name), array_agg(id), jsonb_build_object('a', 1) FROM t",
    "SELECT pg_catalog.count(*) FROM t",
    'SELECT "count"(*) FROM t',
    "WITH RECURSIVE tree AS (SELECT id, parent_id FROM categories WHERE parent_id IS NULL "
    "UNION ALL SELECT c.id, c.parent_id FROM categories c JOIN tree ON c.parent_id = tree.id) "
    "SELECT * FROM tree",
    "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM payments p WHERE p.order_id = o.order_id)",
    "SELECT d::date FROM generate_series(CURRENT_DATE - 6, CURRENT_DATE, INTERVAL '1 day') AS d",
    'SELECT * FROM "Sales"."Invoices" WHERE note LIKE \'%x%\' FETCH FIRST 5 ROWS ONLY',
    "VALUES (1, 'a'), (2, 'b')",
    "SELECT 1 WHERE now() > make_date(2024, 1, 1)",
    "SELECT date(ordered_at), text(total) FROM orders WHERE ordered_at >= date_trunc('year', now())",
    "SELECT 1 OPERATOR(pg_catalog.+) 2",
    "SELECT a FROM t WHERE a ILIKE '%x%' AND b IS DISTINCT FROM c AND d BETWEEN 1 AND 2",
]


@pytest.mark.parametrize("sql", VALID)
def test_plain_read_only_queries_pass(sql: str) -> None:
    assert check_text(sql) == sql.strip().rstrip(";").strip()


def test_comments_around_the_statement_are_dropped() -> None:
    assert check_text("-- why\nSELECT 1 /* in */ + 1 -- ; DROP TABLE t") == "SELECT 1 /* in */ + 1"
    assert check_text("/* é */ SELECT 'ü' ; -- trailing") == "SELECT 'ü'"


REFUSED = [
    # issue #7 finding 7: each of these passed the old text filter
    ('SELECT "pg_sleep"(600)', "calls pg_sleep()"),
    ('SELECT pg_catalog."pg_sleep"(600)', "calls pg_catalog.pg_sleep()"),
    ("SELECT \"pg_sleep_for\"('10 minutes')", "calls pg_sleep_for()"),
    ("SELECT query_to_xml('DELETE FROM orders RETURNING 1', true, false, '')", "calls query_to_xml()"),
    ("SELECT * FROM query_to_xml('DELETE FROM t', true, false, '') AS x", "query_to_xml"),
    ("SELECT PG_SLEEP(1)", "calls pg_sleep()"),
    ('SELECT U&"\\0070g_sleep"(1)', "calls pg_sleep()"),
    ("SELECT 1 FROM t WHERE EXISTS (SELECT pg_sleep(1))", "pg_sleep"),
    ("SELECT count(*) FROM t ORDER BY pg_sleep(1)", "pg_sleep"),
    ("SELECT dblink('host=x', 'DELETE FROM t')", "dblink"),
    ("SELECT set_config('search_path', 'x', false)", "set_config"),
    ("SELECT nextval('orders_id_seq')", "nextval"),
    ("SELECT pg_read_file('/etc/passwd')", "pg_read_file"),
    ("SELECT lo_import('/etc/passwd')", "lo_import"),
    ("SELECT public.my_function(1)", "only built-in functions"),
    ('SELECT "Count"(*) FROM t', "calls Count()"),
    ("SELECT 1 OPERATOR(public.+) 2", "operator public.+"),
    ("SELECT * FROM ROWS FROM (pg_sleep(1)) AS s", "pg_sleep"),
    ("SELECT * FROM orders, LATERAL pg_sleep(1)", "pg_sleep"),
    (
        "SELECT current_setting('data_directory')",
        "current_setting",
    ),  # quoted: a different, user-defined function
    ("SELECT pg_catalog.pg_terminate_backend(1)", "pg_terminate_backend"),
    # statements that are not a plain SELECT
    ("", "empty"),
    ("-- only a comment", "empty"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT 1; DROP TABLE orders", "2 statements"),
    ("DELETE FROM orders", "DELETE is not a read-only query"),
    ("EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN is not a read-only query"),
    ("DO $$ BEGIN DELETE FROM t; END $$", "DO is not a read-only query"),
    ("COPY orders TO '/tmp/x'", "COPY is not"),
    ("WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d", "contains DELETE"),
    ("WITH d AS (DELETE FROM orders) SELECT 1", "contains DELETE"),
    ("WITH a AS (SELECT 1), u AS (UPDATE t SET x = 1 RETURNING x) SELECT * FROM a", "contains UPDATE"),
    ("WITH i AS (INSERT INTO t VALUES (1) RETURNING 1) SELECT * FROM i", "contains INSERT"),
    ("SELECT * INTO copy_of_orders FROM orders", "SELECT INTO"),
    ("SELECT * FROM orders FOR UPDATE", "FOR UPDATE"),
    ("SELECT * FROM orders FOR SHARE", "FOR SHARE"),
    ("SELECT * FROM (SELECT * FROM orders FOR UPDATE) s", "FOR UPDATE"),
    ("SELECT * FROM orders o FOR NO KEY UPDATE SKIP LOCKED", "FOR UPDATE"),
    ("SELECT * FROM pg_shadow", "system catalog pg_shadow"),
    ("SELECT * FROM pg_catalog.pg_authid", "system catalog pg_catalog.pg_authid"),
    ("SELECT * FROM information_schema.tables", "system catalog"),
    ("SELECT $1", "parameter $1"),
    ("SELECT * FROM orders WHERE id = $1", "parameter $1"),
]


@pytest.mark.parametrize(("sql", "reason"), REFUSED)
def test_everything_else_is_refused_with_a_reason(sql: str, reason: str) -> None:
    with pytest.raises(SqlRejected) as info:
        check_text(sql)
    assert reason in info.value.reason
    assert not info.value.repairable or "parameter" in reason


@pytest.mark.parametrize(
    "sql",
    ["SELECT FROM WHERE ORDER", "SELECT 'unterminated", "SELECT $x$ never closed", "SELECT 1 /* open"],
)
def test_syntax_errors_are_invalid_but_repairable(sql: str) -> None:
    with pytest.raises(SqlRejected) as info:
        check_text(sql)
    assert info.value.reason.startswith("syntax error") and info.value.repairable


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT " + " + ".join(["1"] * 5000),
        "SELECT " + "(" * 9990 + "1" + ")" * 9990,
        "SELECT " + "- " * 9990 + "1",
        "SELECT " + "(SELECT " * 2400 + "1" + ")" * 2400,
    ],
)
def test_the_deepest_trees_within_the_length_limit_parse_without_crashing(sql: str) -> None:
    try:
        check_text(sql)
    except SqlRejected as exc:
        assert exc.reason.startswith(("syntax error", "is "))


def test_longer_statements_are_refused_before_parsing() -> None:
    # 50,000 terms of `1 + 1` crashed the process in the parser (C stack) before the length limit
    with pytest.raises(SqlRejected, match="at most 20,000 are accepted") as info:
        check_text("SELECT " + " + ".join(["1"] * 50_000))
    assert not info.value.repairable


def test_referenced_names_resolve_like_postgresql() -> None:
    names = referenced_names('SELECT o.id FROM Orders o JOIN "Sales"."Invoices" i ON true')
    assert {"orders", "Invoices", "Sales.Invoices"} <= names
    assert referenced_names("SELECT FROM WHERE") == set()


def test_plan_limits() -> None:
    limits = PlanLimits(max_cost=1000, max_rows=100)
    plan = [{"Plan": {"Total Cost": 999.5, "Plan Rows": 100}}]
    assert _plan_limits_error(plan, limits) is None
    costly = _plan_limits_error([{"Plan": {"Total Cost": 1e12, "Plan Rows": 1}}], limits)
    assert costly is not None and "DP_SQL_MAX_PLAN_COST" in costly
    wide = _plan_limits_error('[{"Plan": {"Total Cost": 1, "Plan Rows": 101}}]', limits)
    assert wide is not None and "DP_SQL_MAX_PLAN_ROWS" in wide

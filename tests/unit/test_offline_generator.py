"""The offline provider: deterministic, schema-grounded descriptions, themes, pairs and repairs."""

from __future__ import annotations

import re

import pytest

from services.step_runner.llm.base import Theme
from services.step_runner.llm.sqltext import mask_literals, normalize_statement, quote_ident
from services.step_runner.offline.provider import OfflineTextToSQLModel
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo
from tests.support.shop_catalog import shop_tables

CONTEXT = "An online shop: customers, orders and products"
ZH_CONTEXT = "一个网上商城的客户、订单与商品数据"

FK_EDGES = {
    ("orders", "customer_id", "customers", "id"),
    ("order_items", "order_id", "orders", "id"),
    ("order_items", "product_id", "products", "id"),  # inferred from the name
}
SOFT_DELETE = {"orders": "deleted_at IS NULL", "customers": "is_deleted = false"}
SQL_WORDS = set(
    """select from where and or not group by order limit as join on count sum avg min max round numeric
    date_trunc current_date interval desc asc nulls last is null true false exists distinct with having
    in like case when then else end left inner""".split()
)


def _columns() -> dict[str, set[str]]:
    return {t.name: {c.name for c in t.columns} for t in shop_tables()}


def check_references(sql: str) -> None:
    """Every table, alias.column and bare name in `sql` exists in the shop schema."""
    columns = _columns()
    masked = mask_literals(sql)
    masked = re.sub(r"INTERVAL\s+'[^']*'", "INTERVAL ''", masked)
    sources = re.findall(
        r'\b(?:FROM|JOIN)\s+("?[\w]+"?)(?:\s+(?!WHERE|JOIN|GROUP|ORDER|LIMIT|ON)(\w+))?', masked
    )
    aliases: dict[str, str] = {}
    for table, alias in sources:
        name = table.strip('"')
        assert name in columns, f"unknown table {name} in {sql}"
        aliases[alias or name] = name
    output_aliases = set(re.findall(r"\bAS\s+(\w+)", masked))
    for alias, col in re.findall(r'\b(\w+)\.("[^"]+"|\w+)', masked):
        assert alias in aliases, f"unknown alias {alias} in {sql}"
        assert col.strip('"') in columns[aliases[alias]], f"{alias}.{col} does not exist: {sql}"
    rest = re.sub(r'\b\w+\.("[^"]+"|\w+)', " ", masked)
    rest = re.sub(r"'[^']*'", " ", rest)
    referenced = set().union(*(columns[t] for t in aliases.values()))
    for quoted in re.findall(r'"([^"]+)"', rest):
        assert quoted in referenced or quoted in columns, f'"{quoted}" does not exist: {sql}'
    for word in re.findall(r"(?<![\"\w])([A-Za-z_]\w*)(?![\"\w])", re.sub(r'"[^"]+"', " ", rest)):
        if word.lower() in SQL_WORDS or word in output_aliases or word in aliases or word in columns:
            continue
        assert word in referenced, f"{word} is not a column of {sorted(set(aliases.values()))}: {sql}"
        assert quote_ident(word) == word, f"{word} should be quoted: {sql}"


async def _all_pairs(
    context: str = CONTEXT, themes: int = 5, per_theme: int = 10
) -> list[tuple[Theme, list]]:
    model = OfflineTextToSQLModel()
    tables = shop_tables()
    out = []
    for theme in await model.propose_themes(tables, context, themes):
        out.append((theme, await model.generate_pairs(theme, tables, context, per_theme)))
    return out


async def test_pairs_reference_only_real_columns_and_are_single_statements() -> None:
    results = await _all_pairs()
    assert len(results) == 5
    for _theme, pairs in results:
        assert len(pairs) == 10
        for pair in pairs:
            assert pair.sql.endswith(";")
            assert normalize_statement(pair.sql) == pair.sql
            assert pair.question.endswith("?")
            check_references(pair.sql)


async def test_generation_is_deterministic() -> None:
    first, second = await _all_pairs(), await _all_pairs()
    assert first == second
    assert await OfflineTextToSQLModel().summarize_scope(shop_tables(), CONTEXT) == (
        await OfflineTextToSQLModel().summarize_scope(shop_tables(), CONTEXT)
    )


async def test_no_duplicate_question_or_sql_within_a_theme() -> None:
    for _theme, pairs in await _all_pairs(per_theme=40):
        assert len({p.question for p in pairs}) == len(pairs)
        assert len({p.sql for p in pairs}) == len(pairs)


async def test_soft_delete_filter_wherever_the_table_is_read() -> None:
    seen = {name: 0 for name in SOFT_DELETE}
    for _theme, pairs in await _all_pairs(per_theme=40):
        for pair in pairs:
            for table, condition in SOFT_DELETE.items():
                match = re.search(rf"\b(?:FROM|JOIN)\s+{table}\b(?:\s+(\w+))?", pair.sql)
                if not match:
                    continue
                seen[table] += 1
                alias = match.group(1)
                prefix = (
                    f"{alias}." if alias and alias not in {"WHERE", "GROUP", "ORDER", "LIMIT", "JOIN"} else ""
                )
                assert f"{prefix}{condition}" in pair.sql, pair.sql
    assert all(seen.values()), seen


async def test_joins_follow_foreign_keys_and_named_keys() -> None:
    joins = 0
    for _theme, pairs in await _all_pairs(per_theme=40):
        for pair in pairs:
            aliases = dict(
                (alias, table) for table, alias in re.findall(r"\b(?:FROM|JOIN)\s+(\w+)\s+(\w+)\b", pair.sql)
            )
            for a1, c1, a2, c2 in re.findall(r"ON (\w+)\.(\w+) = (\w+)\.(\w+)", pair.sql):
                joins += 1
                assert (aliases[a1], c1, aliases[a2], c2) in FK_EDGES, pair.sql
    assert joins > 0


async def test_identifiers_are_quoted_when_needed_and_enum_filters_use_real_values() -> None:
    filters = 0
    for _theme, pairs in await _all_pairs(per_theme=40):
        for pair in pairs:
            bare = re.sub(r'"[^"]*"', "", mask_literals(pair.sql))
            assert not re.search(r"\bChannel\b", bare), pair.sql
            assert not re.search(r"(?<!ORDER )(?<!GROUP )\bgroup\b(?! BY)", bare, re.IGNORECASE), pair.sql
            for column, value in re.findall(r'(\w+|"\w+") = \'((?:[^\']|\'\')*)\'', pair.sql):
                filters += 1
                enum = {c.name: c.enum_values for t in shop_tables() for c in t.columns}[column.strip('"')]
                assert value.replace("''", "'") in enum
    assert filters > 0


async def test_trends_use_date_trunc_and_relative_dates() -> None:
    sqls = [p.sql for _t, pairs in await _all_pairs(per_theme=40) for p in pairs]
    assert any("date_trunc('month', " in s for s in sqls)
    assert any("CURRENT_DATE - INTERVAL '30 days'" in s for s in sqls)
    assert any(re.search(r"ORDER BY \w+ DESC.*\nLIMIT 10;", s) for s in sqls)


async def test_chinese_context_gives_chinese_questions() -> None:
    results = await _all_pairs(context=ZH_CONTEXT, themes=3, per_theme=5)
    for theme, pairs in results:
        assert re.search(r"[\u4e00-\u9fff]", theme.name)
        for pair in pairs:
            assert re.search(r"[\u4e00-\u9fff]", pair.question), pair.question
            check_references(pair.sql)


async def test_themes_follow_the_table_graph() -> None:
    tables = shop_tables()
    model = OfflineTextToSQLModel()
    themes = await model.propose_themes(tables, CONTEXT, 8)
    assert len(themes) == 8
    assert len({t.name for t in themes}) == 8
    names = {t.name for t in tables}
    assert all(set(t.related_tables) <= names and t.related_tables for t in themes)
    # the hub (orders: linked to customers and order_items) leads, with its neighbours
    assert themes[0].related_tables[0] == "orders"
    assert {"customers", "order_items"} <= set(themes[0].related_tables)
    assert len(await model.propose_themes(tables, CONTEXT, 2)) == 2


async def test_descriptions_from_names_types_keys_and_values() -> None:
    model = OfflineTextToSQLModel()
    customers, products, orders, _items = shop_tables()
    desc = await model.describe_table(orders, CONTEXT)
    assert desc.column_comments["customer_id"].startswith("References customers.id")
    assert desc.column_comments["created_at"] == "When the order was placed"  # existing comment kept
    assert desc.column_comments["deleted_at"].startswith("Deletion time of the order")
    assert "'paid'" in desc.column_comments["status"]
    assert set(desc.column_comments) == {c.name for c in orders.columns}
    c_desc = await model.describe_table(customers, CONTEXT)
    assert c_desc.column_comments["created_at"] == "Creation time of the customer"
    assert c_desc.column_comments["id"].startswith("Unique identifier of the customer")
    assert "Ann Lee" in c_desc.column_comments["name"]
    assert (await model.describe_table(products, CONTEXT)).table_comment == "Products the shop sells"
    zh = await model.describe_table(customers, ZH_CONTEXT)
    assert re.search(r"[\u4e00-\u9fff]", zh.table_comment)


async def test_scope_summary_mentions_tables_and_themes() -> None:
    text = await OfflineTextToSQLModel().summarize_scope(shop_tables(), CONTEXT)
    for name in ("customers", "orders", "order_items", "products"):
        assert name in text
    assert "online shop" in text


async def test_a_table_without_keys_or_measures_still_gets_pairs() -> None:
    table = TableInfo(name="Notes", columns=[ColumnInfo(name="Body", data_type="text")])
    model = OfflineTextToSQLModel()
    themes = await model.propose_themes([table], CONTEXT, 5)
    assert themes
    pairs = await model.generate_pairs(themes[0], [table], CONTEXT, 5)
    assert pairs and all(p.sql.endswith(";") for p in pairs)
    assert '"Notes"' in pairs[0].sql


# -- repair ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "error", "expected"),
    [
        (
            "SELECT statuss, COUNT(*) FROM orders GROUP BY statuss;",
            'column "statuss" does not exist',
            "SELECT status, COUNT(*) FROM orders GROUP BY status;",
        ),
        (
            "SELECT o.totl_amount FROM orders o WHERE o.status = 'totl_amount';",
            "column o.totl_amount does not exist",
            "SELECT o.total_amount FROM orders o WHERE o.status = 'totl_amount';",
        ),
        (
            "SELECT channel FROM orders;",
            'column "channel" does not exist',
            'SELECT "Channel" FROM orders;',
        ),
        (
            "SELECT COUNT(*) FROM order;",
            'relation "order" does not exist',
            "SELECT COUNT(*) FROM orders;",
        ),
        (
            "SELECT COUNT(*) FROM ordrs o WHERE o.deleted_at IS NULL",
            'relation "ordrs" does not exist',
            "SELECT COUNT(*) FROM orders o WHERE o.deleted_at IS NULL;",
        ),
        (
            'SELECT status, "Channel", COUNT(*) FROM orders GROUP BY status ORDER BY 3 DESC;',
            'column "orders.Channel" must appear in the GROUP BY clause or be used in an aggregate function',
            'SELECT status, "Channel", COUNT(*) FROM orders GROUP BY status, orders."Channel" ORDER BY 3 DESC;',
        ),
        (
            "SELECT status, COUNT(*) FROM orders WHERE deleted_at IS NULL ORDER BY 2",
            'column "orders.status" must appear in the GROUP BY clause or be used in an aggregate function',
            "SELECT status, COUNT(*) FROM orders WHERE deleted_at IS NULL\nGROUP BY orders.status\nORDER BY 2;",
        ),
        ("SELECT id FROM orders", "syntax error at end of input", "SELECT id FROM orders;"),
    ],
)
async def test_repair_fixes_what_has_one_obvious_fix(sql: str, error: str, expected: str) -> None:
    fixed = await OfflineTextToSQLModel().repair_sql(sql, error, "", shop_tables())
    assert fixed == expected


@pytest.mark.parametrize(
    ("sql", "error"),
    [
        ("SELECT id FROM orders;", "permission denied for table orders"),
        ("SELECT zzzzzz FROM orders;", 'column "zzzzzz" does not exist'),
        ("SELECT 1; DROP TABLE orders;", "cannot insert multiple commands into a prepared statement"),
    ],
)
async def test_repair_gives_up_otherwise(sql: str, error: str) -> None:
    assert await OfflineTextToSQLModel().repair_sql(sql, error, "", shop_tables()) is None

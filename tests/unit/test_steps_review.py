"""Review of the four steps: gaps found in the lexical SQL gate, description matching and the offline
generator (each test failed before its fix)."""

from __future__ import annotations

import re

import pytest

from services.step_runner.llm.base import TableDescription
from services.step_runner.offline.provider import OfflineTextToSQLModel
from services.step_runner.offline.schema import entity_names
from services.step_runner.pipeline.catalog import ColumnInfo, TableInfo
from services.step_runner.pipeline.descriptions import fill_descriptions
from services.step_runner.pipeline.sql_gate import SqlRejected, check_text


@pytest.mark.parametrize(
    ("sql", "reason"),
    [
        ("SELECT * FROM orders FOR SHARE", "FOR SHARE"),
        ("SELECT * FROM orders FOR KEY SHARE OF orders", "FOR SHARE"),
        ("SELECT * FROM orders o FOR NO KEY UPDATE SKIP LOCKED", "FOR UPDATE"),
        ("SELECT pg_sleep_for('10 seconds')", "pg_sleep_for"),
        ("SELECT pg_sleep_until(now() + interval '1 minute')", "pg_sleep_until"),
        ("SELECT lo_from_bytea(0, 'x')", "lo_from_bytea"),
        ("SELECT pg_logical_emit_message(true, 'p', 'x')", "pg_logical_emit_message"),
    ],
)
def test_row_locks_and_more_side_effect_functions_are_rejected(sql: str, reason: str) -> None:
    with pytest.raises(SqlRejected, match=reason):
        check_text(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT o.for_share, s.share FROM orders o JOIN shares s ON s.id = o.id",
        "SELECT count(*) FILTER (WHERE kind = 'share') FROM t",
        "SELECT key, share FROM t",
    ],
)
def test_words_near_row_lock_clauses_are_still_accepted(sql: str) -> None:
    assert check_text(sql) == sql


def _table(*names: str) -> TableInfo:
    return TableInfo(name="people", columns=[ColumnInfo(name=n, data_type="text") for n in names])


def test_case_insensitive_match_never_lands_on_a_column_that_differs_only_by_case() -> None:
    # "name" and "Name" are two columns; a description of one must not be copied onto the other.
    described = TableDescription(table_comment="People", column_comments={"name": "Login name"})
    info, filled = fill_descriptions(_table("name", "Name"), described)
    comments = {c.name: c.comment for c in info.columns}
    assert comments == {"name": "Login name", "Name": None}
    assert filled == 2  # the table comment and "name"


def test_descriptions_match_by_name_in_any_order_and_ignore_unknown_columns() -> None:
    described = TableDescription(
        table_comment="People",
        column_comments={"zzz_unknown": "nope", "EMAIL": "Mail address", "id": "Identifier"},
    )
    info, filled = fill_descriptions(_table("id", "email", "phone"), described)
    assert {c.name: c.comment for c in info.columns} == {
        "id": "Identifier",
        "email": "Mail address",  # case-insensitive and unambiguous
        "phone": None,
    }
    assert filled == 3


EMPLOYEES = TableInfo(
    schema_name="HR",
    name="Employee",
    columns=[
        ColumnInfo(name="EmpID", data_type="integer", nullable=False, is_primary_key=True),
        ColumnInfo(name="FullName", data_type="text"),
        # a PostgreSQL enum type: the catalog gives its (quoted) type name and its labels
        ColumnInfo(name="status", data_type='"HR"."EmpStatus"', enum_values=["active", "on leave", "left"]),
        ColumnInfo(name="Salary", data_type="numeric(10,2)"),
        ColumnInfo(name="hired_on", data_type="date"),
    ],
    primary_key=["EmpID"],
)


async def test_enum_typed_columns_are_categories() -> None:
    model = OfflineTextToSQLModel()
    (theme,) = await model.propose_themes([EMPLOYEES], "HR", 1)
    pairs = await model.generate_pairs(theme, [EMPLOYEES], "HR", 20)
    sqls = [p.sql for p in pairs]
    assert any("GROUP BY status" in s for s in sqls), sqls
    assert any("status = 'active'" in s for s in sqls), sqls


async def test_chinese_questions_do_not_repeat_the_owner() -> None:
    model = OfflineTextToSQLModel()
    context = "公司的人力资源数据"
    described = await model.describe_table(EMPLOYEES, context)
    info, _ = fill_descriptions(EMPLOYEES, described)
    themes = await model.propose_themes([info], context, 3)
    texts = [t.name for t in themes] + [t.description for t in themes]
    for theme in themes:
        texts += [p.question for p in await model.generate_pairs(theme, [info], context, 10)]
    for text in texts:
        assert not re.search(r"([\u4e00-\u9fff]{1,8}的)\1", text), text


async def test_chinese_names_keep_every_word_of_an_untranslated_table_name() -> None:
    model = OfflineTextToSQLModel()
    context = "公司的物流数据"
    tables = []
    for name in ("shipment", "shipment_item"):
        table = TableInfo(
            name=name, columns=[ColumnInfo(name="id", data_type="integer", is_primary_key=True)]
        )
        described = await model.describe_table(table, context)
        tables.append(fill_descriptions(table, described)[0])
    names = {entity_names(t, chinese=True).one for t in tables}
    assert len(names) == 2, names

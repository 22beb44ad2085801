"""Incremental runs (issue 12 part 2): table fingerprints, the schema diff, and which pairs carry over."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from services.step_runner.pipeline.catalog import ColumnInfo, ForeignKey, SchemaCatalog, TableInfo
from services.step_runner.pipeline.fingerprint import diff_fingerprints, table_fingerprint
from services.step_runner.pipeline.incremental import (
    PLAN_FILE,
    BaselineError,
    add_counts,
    carried_pairs,
    earlier_tasks,
    load_baseline,
    touches,
)
from services.step_runner.pipeline.introspect import ColumnDetail, EnumType, IntrospectedTable
from services.step_runner.pipeline.table_list import TableRef


def _table(**changes: object) -> IntrospectedTable:
    columns = [
        ColumnInfo(name="id", data_type="integer", nullable=False, is_primary_key=True),
        ColumnInfo(name="status", data_type="text", comment="order state", enum_values=["new", "paid"]),
        ColumnInfo(name="customer_id", data_type="integer"),
    ]
    info = TableInfo(
        name="orders",
        comment="orders of the shop",
        columns=columns,
        primary_key=["id"],
        foreign_keys=[
            ForeignKey(
                columns=["customer_id"], ref_schema="public", ref_table="customers", ref_columns=["id"]
            )
        ],
        estimated_rows=100,
        sample_rows=[{"id": 1, "status": "new", "customer_id": 3}],
    )
    info = info.model_copy(update=changes)
    return IntrospectedTable(
        ref=TableRef("public", "orders"),
        info=info,
        kind="table",
        columns={c.name: ColumnDetail(ddl_type=c.data_type) for c in info.columns},
        enum_types=[EnumType("public", "mood", ["sad", "ok"])],
        unique_constraints=[],
        foreign_key_names=["orders_customer_id_fkey"],
        row_count_exact=True,
    )


def test_fingerprint_is_stable_and_ignores_rows() -> None:
    base = table_fingerprint(_table())
    assert base == table_fingerprint(_table())
    assert len(base) == 64
    assert table_fingerprint(_table(estimated_rows=10_000_000, sample_rows=[])) == base


def test_fingerprint_changes_with_the_schema() -> None:
    base = _table()
    columns = base.info.columns
    variants = [
        _table(comment="another comment"),
        _table(columns=[*columns, ColumnInfo(name="total", data_type="numeric(12,2)")]),
        _table(columns=[columns[0], columns[1].model_copy(update={"data_type": "varchar(20)"}), columns[2]]),
        _table(columns=[columns[0], columns[1].model_copy(update={"comment": None}), columns[2]]),
        _table(columns=[columns[0], columns[1].model_copy(update={"enum_values": ["new"]}), columns[2]]),
        _table(columns=[columns[0], columns[1].model_copy(update={"nullable": False}), columns[2]]),
        _table(primary_key=[]),
        _table(foreign_keys=[]),
        dataclasses.replace(base, enum_types=[EnumType("public", "mood", ["sad", "ok", "happy"])]),
        dataclasses.replace(base, unique_constraints=[["status"]]),
    ]
    prints = {table_fingerprint(v) for v in variants}
    assert table_fingerprint(base) not in prints
    assert len(prints) == len(variants)


def test_diff_sorts_tables_into_four_groups() -> None:
    before = {"public.a": "1", "public.b": "2", "public.c": "3"}
    after = {"public.a": "1", "public.b": "9", "public.d": "4"}
    diff = diff_fingerprints(before, after)
    assert diff.as_dict() == {
        "unchanged": ["public.a"],
        "changed": ["public.b"],
        "new": ["public.d"],
        "dropped": ["public.c"],
    }
    assert diff.counts() == {"unchanged": 1, "changed": 1, "new": 1, "dropped": 1}
    assert diff.touched == {"public.b", "public.d"}
    assert diff_fingerprints({}, {}).counts() == {"unchanged": 0, "changed": 0, "new": 0, "dropped": 0}


def test_touches_matches_bare_and_qualified_names() -> None:
    assert touches(["orders"], {"public.orders"})
    assert touches(["public.orders"], {"public.orders"})
    assert not touches(["orders"], {"sales.orders"})
    assert touches(["sales.orders"], {"sales.orders"})
    assert not touches(["customers", "items"], {"public.orders"})


def test_carried_pairs_read_only_unchanged_tables(tmp_path: Path) -> None:
    pairs = [
        {"question": "How many customers?", "sql": "SELECT count(*) FROM customers;"},
        {
            "question": "Orders per customer?",
            "sql": "SELECT c.id, count(*) FROM customers c JOIN orders o "
            "ON o.customer_id = c.id GROUP BY c.id;",
        },
        {"question": "Refunds?", "sql": "SELECT count(*) FROM refunds;", "flags": ["x"]},
        {"question": "Not SQL", "sql": "this is not sql"},
    ]
    (tmp_path / "qs_shop_20260101_000000_pair.json").write_text(json.dumps(pairs), encoding="utf-8")
    carried, total = carried_pairs(tmp_path, {"public.orders", "public.refunds"})
    assert total == 4
    assert carried == [{"question": "How many customers?", "sql": "SELECT count(*) FROM customers;"}]


def test_baseline_needs_a_catalog_with_fingerprints(tmp_path: Path) -> None:
    with pytest.raises(BaselineError, match=r"no schema_catalog\.json"):
        load_baseline(tmp_path, "t1")
    (tmp_path / "t1").mkdir()
    catalog = SchemaCatalog(db_name="shop", business_context="x", tables=[_table().info])
    (tmp_path / "t1" / "schema_catalog.json").write_text(catalog.model_dump_json(), encoding="utf-8")
    with pytest.raises(BaselineError, match="no table fingerprints"):
        load_baseline(tmp_path, "t1")
    with pytest.raises(BaselineError, match="not a task id"):
        load_baseline(tmp_path, "../t1")
    catalog = catalog.model_copy(update={"fingerprints": {"public.orders": "f"}})
    (tmp_path / "t1" / "schema_catalog.json").write_text(catalog.model_dump_json(), encoding="utf-8")
    (tmp_path / "t1" / PLAN_FILE).write_text(json.dumps({"lineage": ["t0"]}), encoding="utf-8")
    baseline = load_baseline(tmp_path, "t1")
    assert baseline.lineage == ["t1", "t0"]
    assert not baseline.reusable("public.orders", "f")  # its files are missing
    (tmp_path / "t1" / "filename_mapping.txt").write_text("public.orders -> orders\n", encoding="utf-8")
    (tmp_path / "t1" / "orders.ddl").write_text("CREATE TABLE orders ();\n", encoding="utf-8")
    (tmp_path / "t1" / "orders_detail.md").write_text("# orders\n", encoding="utf-8")
    assert baseline.reusable("public.orders", "f") is False  # mapping read at load time
    baseline = load_baseline(tmp_path, "t1")
    assert baseline.reusable("public.orders", "f")
    assert not baseline.reusable("public.orders", "g")
    assert earlier_tasks(tmp_path / "t1") == ["t0"]


def test_add_counts() -> None:
    a = {"unlinked": {"ddl": 1, "documentation": 0}, "deleted": {"ddl": 1}}
    b = {"unlinked": {"ddl": 2, "question_sql": 3}, "deleted": {"ddl": 0}}
    assert add_counts(a, b) == {
        "unlinked": {"ddl": 3, "documentation": 0, "question_sql": 3},
        "deleted": {"ddl": 1},
    }


def test_dpctl_sends_incremental_from_and_prints_the_diff(capsys: pytest.CaptureFixture[str]) -> None:
    from services.dpctl.commands.db import diff_tables
    from services.dpctl.commands.task import build_parameters
    from services.dpctl.main import build_parser
    from services.dpctl.settings import DpctlSettings

    parser = build_parser(DpctlSettings())
    args = parser.parse_args(
        [
            "task",
            "create",
            "--db-connection",
            "sales",
            "--tables",
            "a,b",
            "--business-context",
            "shop",
            "--incremental-from",
            "latest",
        ]
    )
    assert build_parameters(args)["incremental_from"] == "latest"
    args = parser.parse_args(
        ["task", "create", "--db-connection", "sales", "--tables", "a", "--business-context", "x"]
    )
    assert "incremental_from" not in build_parameters(args)

    class Client:
        asked: tuple[str, str | None] | None = None

        def database_diff(self, db_connection: str, since_task: str | None = None) -> dict[str, object]:
            Client.asked = (db_connection, since_task)
            return {
                "since_task": "task_20260101_000000_abc",
                "tables": {"unchanged": 2, "changed": 1, "new": 0, "dropped": 1},
                "changed": ["public.customers"],
                "new": [],
                "dropped": ["public.categories"],
                "llm_tokens_at_stake": 120,
            }

    args = parser.parse_args(["db", "diff", "--db-connection", "sales"])
    assert diff_tables(Client(), args) == 0  # type: ignore[arg-type]
    assert Client.asked == ("sales", "latest")
    out = capsys.readouterr().out
    assert "1 changed, 0 new, 1 dropped, 2 unchanged" in out
    assert "changed  public.customers" in out and "dropped  public.categories" in out
    assert "--incremental-from task_20260101_000000_abc" in out


def test_a_counted_block_meters_its_calls_and_still_counts_in_the_step() -> None:
    from shared import llm_usage

    step = llm_usage.UsageMeter(budget=100)
    with llm_usage.metering(step):
        llm_usage.record_call("m", 10, 5, 0.1)
        with llm_usage.counted() as table:
            llm_usage.before_call()
            llm_usage.record_call("m", 20, 10, 0.2)
        assert table.total_tokens == 30
        assert step.total_tokens == 45
        with pytest.raises(llm_usage.LlmBudgetExceeded), llm_usage.counted():
            llm_usage.record_call("m", 50, 10, 0.1)  # the step's budget still applies


def test_the_report_shows_what_an_incremental_run_reused() -> None:
    from shared.final_report import report_lines, step_counts

    summary = {
        "tables_requested": 4,
        "tables_succeeded": 4,
        "tables_failed": [],
        "fingerprints": {"public.a": "f1"},
        "incremental": {
            "from_task": "task_1",
            "tables": {"unchanged": 2, "changed": 1, "new": 1, "dropped": 1},
            "table_names": {"unchanged": ["public.a", "public.b"], "changed": ["public.c"]},
            "llm_tokens_saved": 1200,
        },
    }
    counts = step_counts("ddl_generation", summary)
    assert counts["table_fingerprints"] == {"public.a": "f1"}
    assert counts["incremental"]["tables"]["changed"] == 1
    qa = step_counts(
        "qa_generation",
        {"pairs": 9, "incremental": {"from_task": "task_1", "pairs_carried_over": 5, "themes_generated": 2}},
    )
    report = {
        "plan": ["ddl_generation", "qa_generation"],
        "steps": {
            "ddl_generation": {"status": "completed", **counts},
            "qa_generation": {"status": "completed", **qa},
        },
    }
    text = "\n".join(report_lines(report))
    assert (
        "incremental from task_1: tables unchanged 2, changed 1, new 1, dropped 1; about 1200 LLM tokens saved"
        in text
    )
    assert "incremental: pairs generated for 2 themes, 5 carried over from task_1" in text
    assert "incremental" not in step_counts("ddl_generation", {"tables_succeeded": 1})

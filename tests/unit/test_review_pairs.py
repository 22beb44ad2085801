"""The pairs of a task under review, read from its files, and the pair files rewritten from the decisions
(services/api_gateway/review_pairs.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

from services.api_gateway import review_pairs as rp

FILE = "qs_shop_20260101_000000_pair.json"
AT = datetime(2026, 1, 1, tzinfo=UTC)


def _task(tmp_path: Path, *, report: bool = True) -> Path:
    pairs = [
        {"question": "How many orders?", "sql": "SELECT count(*) FROM orders;", "theme": "Sales"},
        {"question": "Which customers?", "sql": "SELECT name FROM customers;", "theme": "Customers"},
    ]
    (tmp_path / FILE).write_text(json.dumps(pairs), encoding="utf-8")
    if report:
        failures = [
            # repaired by step 3: the file holds the repaired SQL
            {"file": FILE, "index": 1, "question": "Which customers?", "sql": "SELECT nam FROM customers",
             "error": "column nam does not exist", "final_sql": "SELECT name FROM customers"},
            # left out of the file: still invalid
            {"file": FILE, "index": 2, "question": "Broken?", "sql": "SELEC 1", "error": "syntax error", "final_sql": None},
        ]  # fmt: skip
        document = {"summary": {}, "quality": [], "failures": failures}
        (tmp_path / "sql_validation_20260101_000000_report.json").write_text(json.dumps(document))
    return tmp_path


def _row(status: str, question: str, sql: str, *, edited: bool = False, valid: bool | None = True) -> dict:
    return {
        "status": status, "question": question, "sql": sql, "edited": edited, "sql_valid": valid,
        "sql_error": None, "actor": "alice", "actor_role": "operator", "reviewed_at": AT,
    }  # fmt: skip


def test_pairs_come_with_their_verdict_repair_and_the_invalid_ones_step_3_left_out(tmp_path: Path) -> None:
    pairs = rp.load_review_pairs(_task(tmp_path))
    assert [(p.question, p.verdict, p.theme) for p in pairs] == [
        ("How many orders?", "valid", "Sales"),
        ("Which customers?", "valid", "Customers"),
        ("Broken?", "invalid", None),
    ]
    assert (
        pairs[1].repaired_from == "SELECT nam FROM customers"
        and pairs[1].error == "column nam does not exist"
    )
    assert pairs[2].error == "syntax error" and pairs[2].sql == "SELEC 1"
    assert len({p.pair_id for p in pairs}) == 3
    assert [p.pair_id for p in rp.load_review_pairs(tmp_path)] == [p.pair_id for p in pairs]  # stable


def test_without_a_validation_report_the_verdict_is_unchecked(tmp_path: Path) -> None:
    assert {p.verdict for p in rp.load_review_pairs(_task(tmp_path, report=False))} == {"unchecked"}


def test_decisions_overlay_status_edits_and_counts(tmp_path: Path) -> None:
    pairs = rp.load_review_pairs(_task(tmp_path))
    first, second, broken = pairs
    decided = rp.with_decisions(
        pairs,
        {
            first.pair_id: _row("approved", "How many orders are there?", first.sql, edited=True),
            second.pair_id: _row("rejected", second.question, second.sql),
            broken.pair_id: _row("approved", broken.question, "SELECT 1;", edited=True),
        },
    )
    assert decided[0].original_question == "How many orders?" and decided[0].edited
    assert decided[0].reviewed_by == "alice (operator)"
    assert (decided[2].verdict, decided[2].error, decided[2].original_sql) == ("valid", None, "SELEC 1")
    assert rp.counts(decided) == {
        "total": 3,
        "approved": 2,
        "rejected": 1,
        "pending": 0,
        "reviewed": 3,
        "edited": 2,
    }
    assert [p.question for p in decided if rp.matches(p, status="approved", theme="Sales")] == [
        "How many orders are there?"
    ]
    assert [p.question for p in decided if rp.matches(p, repaired=True)] == ["Which customers?"]


def test_the_rewrite_keeps_exactly_the_approved_pairs_and_the_first_original(tmp_path: Path) -> None:
    pairs = rp.load_review_pairs(_task(tmp_path))
    before = (tmp_path / FILE).read_text()
    decided = rp.with_decisions(
        pairs,
        {
            pairs[0].pair_id: _row("approved", pairs[0].question, pairs[0].sql),
            pairs[2].pair_id: _row("approved", "Fixed?", "SELECT 1;", edited=True),
        },
    )
    assert rp.rewrite_pair_files(tmp_path, decided) == [(FILE, FILE.removesuffix(".json") + ".original.json")]
    kept = json.loads((tmp_path / FILE).read_text())
    assert kept == [
        {"question": pairs[0].question, "sql": pairs[0].sql, "theme": "Sales"},
        {"question": "Fixed?", "sql": "SELECT 1;"},
    ]
    original = tmp_path / (FILE.removesuffix(".json") + ".original.json")
    assert original.read_text() == before
    # A second review rewrites the file again and keeps the first original.
    rp.rewrite_pair_files(tmp_path, rp.with_decisions(rp.load_review_pairs(tmp_path), {}))
    assert json.loads((tmp_path / FILE).read_text()) == [] and original.read_text() == before
    assert [p.name for p in tmp_path.glob("qs_*_pair.json")] == [FILE]  # the original is no pair file


def _flagged_task(tmp_path: Path) -> Path:
    pairs = [
        {
            "question": "What is the total price per category?",
            "sql": "SELECT category, sum(price) FROM products GROUP BY 1;",
        },
        {"question": "Which products?", "sql": "SELECT name FROM products WHERE NOT is_deleted LIMIT 100;"},
        {"question": "How many products?", "sql": "SELECT count(*) FROM products;"},
    ]
    (tmp_path / FILE).write_text(json.dumps(pairs), encoding="utf-8")
    summed = {"code": "summed_rate", "action": "keep", "detail": "sums a per-row rate (products.price)"}
    no_limit = {"code": "listing_without_limit", "action": "repair", "detail": "add LIMIT 100"}
    quality = [
        {"file": FILE, "index": 0, "question": pairs[0]["question"], "sql": pairs[0]["sql"], "flags": [summed],
         "outcome": "kept", "final_sql": pairs[0]["sql"], "repairs": []},
        {"file": FILE, "index": 1, "question": "Which products?", "sql": "SELECT name FROM products WHERE NOT is_deleted",
         "flags": [no_limit], "outcome": "repaired", "final_sql": pairs[1]["sql"], "repairs": []},
        {"file": FILE, "index": 3, "question": "Who created rows?", "sql": "SELECT created_by FROM products",
         "flags": [], "outcome": "dropped", "final_sql": None, "repairs": []},
    ]  # fmt: skip
    document = {"summary": {}, "quality": quality, "failures": []}
    (tmp_path / "sql_validation_20260101_000000_report.json").write_text(json.dumps(document))
    return tmp_path


def test_pairs_carry_the_quality_flags_step_3_kept_or_repaired(tmp_path: Path) -> None:
    kept, repaired, clean = rp.load_review_pairs(_flagged_task(tmp_path))
    assert kept.quality == {
        "outcome": "kept",
        "flags": [{"code": "summed_rate", "detail": "sums a per-row rate (products.price)"}],
    }
    assert kept.repaired_from is None
    assert repaired.quality is not None and repaired.quality["outcome"] == "repaired"
    assert repaired.repaired_from == "SELECT name FROM products WHERE NOT is_deleted"  # before the LIMIT
    assert clean.quality is None and clean.repaired_from is None
    pairs = [kept, repaired, clean]
    assert [p.question for p in pairs if rp.matches(p, flagged=True)] == [kept.question]
    assert [p.question for p in pairs if rp.matches(p, flagged=False)] == [repaired.question, clean.question]
    assert [p.question for p in pairs if rp.matches(p, repaired=True)] == [repaired.question]


def test_an_edited_sql_loses_the_flags_step_3_found_on_the_one_before(tmp_path: Path) -> None:
    kept, repaired, _ = rp.load_review_pairs(_flagged_task(tmp_path))
    avg = "SELECT category, avg(price) FROM products GROUP BY 1;"
    decided = rp.with_decisions(
        [kept, repaired],
        {
            kept.pair_id: _row("approved", kept.question, avg, edited=True),
            repaired.pair_id: _row("approved", "Which products are there?", repaired.sql, edited=True),
        },
    )
    assert decided[0].quality is None and decided[0].original_sql == kept.sql
    assert decided[1].quality == repaired.quality  # only the question changed

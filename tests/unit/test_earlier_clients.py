"""Pure pieces of the earlier clients' routes (issue #14, items 4-8): names, sizes, checks, positions."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from services.api_gateway.errors import InvalidParams
from services.api_gateway.output_files import check_content, versioned_name
from services.api_gateway.routes.database_tools import _pattern
from services.api_gateway.routes.logs import log_position
from services.api_gateway.routes.queries import pagination
from services.api_gateway.schemas.earlier_routes import LogQueryRequest, TaskQueryRequest, schema_list
from services.api_gateway.schemas.query_strings import LogQuery
from services.api_gateway.schemas.responses import format_size
from services.api_gateway.task_views import current_execution


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0.0 B"),
        (284, "284.0 B"),
        (2839, "2.8 KB"),
        (1024 * 1024 * 3 // 2, "1.5 MB"),
        (5 * 1024**3, "5.0 GB"),
    ],
)
def test_sizes_read_as_the_earlier_implementation_wrote_them(size: int, text: str) -> None:
    assert format_size(size) == text


def test_versioned_names_keep_or_lose_their_kind() -> None:
    # A backup is read by no step: its name no longer ends in the kind's suffix.
    assert versioned_name("orders.ddl", 1, backup=True) == "orders.ddl_bak1"
    assert versioned_name("qs_shop_20250101_000000_pair.json", 2, backup=True).endswith("_pair.json_bak2")
    # A renamed copy stays a file of its kind, so the steps that select by suffix read it.
    assert versioned_name("orders.ddl", 1, backup=False) == "orders_1.ddl"
    assert versioned_name("orders_detail.md", 3, backup=False) == "orders_3_detail.md"
    assert versioned_name("qs_shop_x_pair.json", 1, backup=False) == "qs_shop_x_1_pair.json"


def test_upload_content_is_checked_by_kind() -> None:
    assert check_content("orders.ddl", "\ufeffcreate table orders ();".encode()) == "create table orders ();"
    assert check_content("qs_a_pair.json", b'[{"question": "q", "sql": "select 1;", "extra": 1}]')
    for name, content in (
        ("orders.ddl", b"a\x00b"),
        ("orders.ddl", b"\xff\xfe"),
        ("schema_catalog.json", b"{"),
        ("qs_a_pair.json", b'{"question": "q", "sql": "s"}'),
        ("qs_a_pair.json", b'[{"question": "q"}]'),
    ):
        with pytest.raises(InvalidParams):
            check_content(name, content)


def test_schema_lists_and_patterns() -> None:
    assert schema_list(None) == ["public"] and schema_list("") == ["public"]
    assert schema_list("public, ods,public") == ["public", "ods"]
    for bad in ("a;b", "public,,ods", "1abc", ",".join(f"s{i}" for i in range(21))):
        with pytest.raises(ValueError):
            schema_list(bad)
    assert _pattern("ods_%") == "ods_*" and _pattern("  ") is None and _pattern(None) is None


def test_task_query_reads_naive_times_as_utc_and_running_as_in_progress() -> None:
    req = TaskQueryRequest.model_validate(
        {"created_time_start": "2025-06-01T00:00:00", "status": "running,failed"}
    )
    assert req.created_time_start == datetime(2025, 6, 1, tzinfo=UTC)
    assert req.status == "in_progress,failed"


def test_pagination_counts_pages() -> None:
    assert pagination(1, 20, 0).model_dump() == {
        "page": 1,
        "page_size": 20,
        "total": 0,
        "total_pages": 0,
        "has_next": False,
        "has_prev": False,
    }
    page = pagination(2, 2, 5)
    assert (page.total_pages, page.has_next, page.has_prev) == (3, True, True)


def test_logs_without_order_are_the_tail() -> None:
    assert log_position(LogQuery.model_validate({})) == (None, True, True)
    assert log_position(LogQuery.model_validate({"order": "asc"})) == (None, False, False)
    assert log_position(LogQuery.model_validate({"order": "desc"})) == (None, True, False)
    assert log_position(LogQuery.model_validate({"after": "7"})) == (7, False, False)


def test_current_execution_is_the_latest_running_one() -> None:
    started = datetime(2025, 1, 1, tzinfo=UTC)
    rows = [
        {
            "execution_id": "a",
            "execution_step": "ddl_generation",
            "status": "completed",
            "started_at": started,
        },
        {"execution_id": "b", "execution_step": "qa_generation", "status": "running", "started_at": started},
    ]
    current = current_execution(rows)
    assert current is not None and (current.execution_id, current.step) == ("b", "qa_generation")
    assert current_execution(rows[:1]) is None


@pytest.mark.parametrize("value", ["0", "1", "20260101"])
def test_a_log_query_time_given_as_digits_is_refused_not_read_as_a_unix_time(value: str) -> None:
    with pytest.raises(ValidationError):
        LogQueryRequest.model_validate({"start_time": value})


def test_log_levels_and_step_names_are_read_exactly_as_the_document_patterns_say() -> None:
    assert LogQueryRequest.model_validate({"level": "warning", "min_level": "Info"}).level == "WARNING"
    assert LogQueryRequest.model_validate({"step_name": " Sql_Validation "}).step_name == " Sql_Validation "
    for body in ({"level": "ınfo"}, {"level": " INFO"}, {"step_name": "01"}, {"step_name": " 1"}):
        with pytest.raises(ValidationError):
            LogQueryRequest.model_validate(body)

"""Pure parts of finding 9 and 12: the pending view of an accepted task, and the log total a cursor carries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.api_gateway.adapters.accepted import pending_view
from services.api_gateway.adapters.read_models import LogFilters
from services.api_gateway.cursors import id_cursor
from services.api_gateway.routes.logs import _carried_total, _filters_key
from services.api_gateway.schemas.query_strings import LogQuery
from services.api_gateway.task_views import task_detail

AT = datetime(2026, 1, 1, tzinfo=UTC)


def test_pending_view_of_a_single_step_task_renders_as_a_task_detail() -> None:
    view = pending_view("task_20260101_000000_abcd", "complete_workflow", "single", 3, AT)
    detail = task_detail(view, [], AT)
    assert detail.status == "pending" and detail.recorded is False and detail.parameters == {}
    assert detail.step_status == {
        "ddl_generation": "skipped",
        "qa_generation": "skipped",
        "sql_validation": "pending",
        "training_load": "skipped",
    }
    complete = pending_view("task_20260101_000000_abcd", "complete_workflow", "complete", None, AT)
    assert set(complete["step_status"].values()) == {"pending"}


def _query(cursor: str | None) -> LogQuery:
    return LogQuery.model_validate({"cursor": cursor} if cursor else {})


def test_a_cursor_carries_the_total_only_for_its_own_list() -> None:
    key = _filters_key("t1", LogFilters(min_level=30))
    assert _carried_total(_query(None), key) is None
    assert _carried_total(_query(id_cursor("logs", 5, t=42, x=False, f=key)), key) == (42, False)
    other = _filters_key("t1", LogFilters(min_level=40))
    assert other != key and _filters_key("t2", LogFilters(min_level=30)) != key
    assert _carried_total(_query(id_cursor("logs", 5, t=42, x=True, f=key)), other) is None


@pytest.mark.parametrize("total", [-1, "7", True, None, 1.5])
def test_a_forged_total_is_counted_afresh(total: object) -> None:
    key = _filters_key("t1", LogFilters())
    assert _carried_total(_query(id_cursor("logs", 5, t=total, x=True, f=key)), key) is None

"""Schemathesis hooks for the contract tests (loaded through SCHEMATHESIS_HOOKS).

Some values are valid only against the server's state, which no schema can state: a paging cursor is
one the server issued, a connection URL names a database that answers, a range starts before it ends.
In *positive* cases (the component is valid by the document) such values
are swapped for realistic ones, as schemathesis recommends for test data; negative cases are sent as
generated, so the server still has to refuse what the document forbids.
"""

from __future__ import annotations

import base64
import copy
import json
import os
from datetime import UTC, datetime
from typing import Any

import schemathesis
from schemathesis import GenerationMode

DB_URL = os.environ.get("CONTRACT_DB_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
_CURSOR_KINDS = {"/tasks": "tasks", "/events": "events", "/logs": "logs"}


def _cursor(kind: str) -> str:
    position: dict[str, Any] = (
        {"t": datetime.now(UTC).isoformat(), "i": "task_20260101_000000_zzzzzz"}
        if kind == "tasks"
        else {"v": 0}
    )
    raw = json.dumps({"k": kind, **position}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _positive(case: Any) -> bool:
    return case.meta is not None and case.meta.generation.mode == GenerationMode.POSITIVE


# Pairs of a range that no schema can order (JSON Schema does not compare two values): start <= end.
_RANGES = (("since", "until"), ("start_time", "end_time"), ("created_time_start", "created_time_end"))


def _ordered(values: dict[str, Any]) -> dict[str, Any]:
    values = dict(values)
    for low, high in _RANGES:
        if isinstance(values.get(low), str) and isinstance(values.get(high), str):
            start, end = _instant(values[low]), _instant(values[high])
            if start is not None and end is not None and start > end:
                values[low], values[high] = values[high], values[low]
    return values


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    if not _positive(case):
        return
    path: str = case.operation.path
    # New containers, never edits in place: schemathesis derives other cases from the same objects.
    if isinstance(case.query, dict):
        query = _ordered(case.query)
        kind = next((k for suffix, k in _CURSOR_KINDS.items() if path.endswith(suffix)), None)
        if "cursor" in query and kind is not None:
            query["cursor"] = _cursor(kind)
            query.pop("offset", None)  # paging by cursor or by offset, not both (two parameters again)
        if isinstance(query.get("wait"), int | float) and path.endswith("/tasks/{task_id}"):
            # The contract stack runs no workflow: its tasks stay pending, and each wait would run out.
            query["wait"] = min(query["wait"], 0.5)
        case.query = query
    body = copy.deepcopy(case.body)
    if isinstance(body, dict):
        body = _ordered(body)
    if (
        path.endswith(("/database/tables", "/table/ddl"))
        and isinstance(body, dict)
        and "db_connection" in body
    ):
        body["db_connection"] = DB_URL
    elif path.endswith("/database/diff") and isinstance(case.query, dict) and "db_connection" in case.query:
        case.query = {**case.query, "db_connection": DB_URL}
    elif path.endswith("/tasks") and case.method.upper() == "POST" and isinstance(body, dict):
        parameters = body.get("parameters")
        multipart = str(getattr(case, "media_type", "")).startswith("multipart/")
        if isinstance(parameters, dict):
            _runnable_create(parameters, multipart=multipart)
        if multipart:  # the multipart create: its file part is a table list
            body["table_list_file"] = b"public.orders\n"
        if isinstance(parameters, dict) and "db_connection" in parameters:
            parameters["db_connection"] = DB_URL
        elif "parameters" not in body and "task_type" not in body:
            # The earlier flat create: db_connection is optional only where DP_DEFAULT_CONNECTION is set.
            body["db_connection"] = DB_URL
    if body != case.body:
        case.body = body


def _runnable_create(parameters: dict[str, Any], *, multipart: bool) -> None:
    """What only the server's state decides for a create: a table-list file named in JSON must exist
    under DP_TABLE_LISTS_DIR (the contract stack has none), and a new task's directory holds nothing but
    its table list, so its run must start at step 1 (a later first step is a 409 naming its inputs)."""
    # An incremental run needs an earlier task of the database with a schema catalog (none here).
    parameters.pop("incremental_from", None)
    if not multipart and parameters.get("table_list_file") is not None:
        parameters.pop("table_list_file")
        parameters["table_list"] = ["public.orders"]
    if parameters.get("from_step") is not None:
        parameters["from_step"] = 1
    if parameters.get("single_step") is not None:
        parameters["single_step"] = 1
    if multipart:
        # The form's parameters part states its mode rules in words only (CreateTaskFormParameters).
        if parameters.get("execution_mode") == "single":
            parameters["single_step"] = 1
            parameters.pop("from_step", None)
            parameters.pop("to_step", None)
        else:
            parameters.pop("single_step", None)


def _instant(text: str) -> datetime | None:
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

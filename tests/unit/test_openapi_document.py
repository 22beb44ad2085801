"""The OpenAPI document states the rules the handlers enforce (tests/contract checks it live)."""

from __future__ import annotations

import itertools
import re

import pytest

from services.api_gateway.adapters.task_files import is_safe_file_name
from services.api_gateway.bootstrap import all_routes
from services.api_gateway.errors import ApiError
from services.api_gateway.openapi import build_openapi
from services.api_gateway.schemas.names import FILE_NAME_PATTERN, NOT_BLANK_PATTERN, TASK_ID_PATTERN
from services.api_gateway.schemas.query_strings import _STATUS_LIST_PATTERN, TaskListQuery
from services.api_gateway.spec import shadowed_methods
from shared.ids import is_valid_task_id

API = "/api/v0/data_pipeline"


def _matches(pattern: str, value: str) -> bool:
    # JSON Schema's `pattern` is a search, not a full match.
    return re.search(pattern, value) is not None


@pytest.mark.parametrize(
    "value",
    [
        "task_20260101_000000",
        "task_20260101_000000_abc123",
        "manual_20260101_000000_x",
        "task_20260101_000000_abcdefghij",
        "task_20260101_000000_",
        "task_20260101_000000\n",
        "task_2026010_000000",
        "TASK_20260101_000000",
        "task_２0260101_000000",
        "active",
        "",
    ],
)
def test_the_task_id_pattern_is_the_servers_rule(value: str) -> None:
    documented = _matches(TASK_ID_PATTERN, value) and len(value) <= 32
    assert documented == is_valid_task_id(value)


def test_the_file_name_pattern_is_the_servers_rule() -> None:
    alphabet = ["a", "é", "1", "_", ".", "-", " ", "(", "+", "/", "\\", "\n", "\t"]
    for size in range(1, 5):
        for letters in itertools.product(alphabet, repeat=size):
            name = "".join(letters)
            assert _matches(FILE_NAME_PATTERN, name) == is_safe_file_name(name), repr(name)


def test_blank_is_exactly_what_strip_removes() -> None:
    for code in range(0x3100):
        char = chr(code)
        assert _matches(NOT_BLANK_PATTERN, char) == (not char.isspace()), hex(code)


@pytest.mark.parametrize(
    "value", ["", "pending", "pending, failed", " failed ,cancelled ", "pending,", ",", "running", "x"]
)
def test_the_status_list_pattern_is_the_servers_rule(value: str) -> None:
    try:
        TaskListQuery.model_validate({"status": value})
        accepted = True
    except ValueError:
        accepted = False
    assert _matches(_STATUS_LIST_PATTERN, value) == accepted


def test_security_and_401_only_when_tokens_are_configured() -> None:
    open_doc = build_openapi(all_routes(), auth=False)
    authed_doc = build_openapi(all_routes(), auth=True)
    assert "securitySchemes" not in open_doc["components"]
    for path in open_doc["paths"].values():
        for operation in path.values():
            assert "security" not in operation
            assert "401" not in operation["responses"] and "403" not in operation["responses"]
    detail = authed_doc["paths"][f"{API}/tasks/{{task_id}}"]["get"]
    assert detail["security"] == [{"bearer": []}]
    assert detail["responses"]["401"]["headers"]["WWW-Authenticate"]["required"] is True
    assert "security" not in authed_doc["paths"]["/healthz"]["get"]


def test_each_error_status_names_the_error_types_the_server_gives_it() -> None:
    doc = build_openapi(all_routes(), auth=True)
    create = doc["paths"][f"{API}/tasks"]["post"]["responses"]
    types = {
        status: create[status]["content"]["application/json"]["schema"]["properties"]["data"]["allOf"][-1][
            "properties"
        ]["error_type"]["enum"]
        for status in ("400", "401", "409", "413", "500")
    }
    assert types == {
        "400": ["invalid_params", "missing_required_params"],
        "401": ["unauthorized"],
        "409": ["conflict"],  # a new task cannot start past step 1 (its inputs are missing)
        "413": ["payload_too_large"],
        "500": ["internal_error"],
    }
    envelope = create["400"]["content"]["application/json"]["schema"]["properties"]
    assert envelope["code"] == {"const": 400, "description": "Equal to the HTTP status."}
    known = {cls.error_type for cls in _subclasses(ApiError)}
    assert set(doc["components"]["schemas"]["ErrorData"]["properties"]["error_type"]["enum"]) == known


def _subclasses(cls: type[ApiError]) -> list[type[ApiError]]:
    found = [cls]
    for sub in cls.__subclasses__():
        found.extend(_subclasses(sub))
    return found


def test_streams_are_documented_as_events_and_downloads_as_any_type() -> None:
    doc = build_openapi(all_routes(), auth=False)
    stream = doc["paths"][f"{API}/tasks/{{task_id}}/stream"]["get"]["responses"]["200"]["content"]
    assert stream["text/event-stream"]["schema"]["required"] == ["event", "data"]
    download = doc["paths"][f"{API}/tasks/{{task_id}}/files/download/{{filename}}"]["get"]
    assert list(download["responses"]["200"]["content"]) == ["*/*"]


def test_a_fixed_path_shadowed_by_a_parameterised_one_gets_405_guards() -> None:
    assert shadowed_methods(all_routes()) == {
        f"{API}/tasks/active": (["GET"], ["DELETE"]),
        f"{API}/tasks/query": (["POST"], ["GET", "DELETE"]),  # the earlier clients' query route
    }


def test_field_rules_say_what_they_mean() -> None:
    import jsonschema  # openapi-spec-validator's dependency

    from services.api_gateway.schemas.rules import at_most_one_of, merge, requires

    schema = {"type": "object", **merge(at_most_one_of("a", "b", "c"), requires("d", "a"))}
    valid = [{}, {"a": 1}, {"a": 1, "b": None}, {"c": 1, "d": None}, {"a": 1, "d": 2}]
    invalid = [{"a": 1, "b": 2}, {"b": 1, "c": 2}, {"d": 1}, {"d": 1, "a": None}]
    for body in valid:
        jsonschema.validate(body, schema)
    for body in invalid:
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(body, schema)


def test_pattern_and_table_name_pattern_exclude_each_other_in_the_document() -> None:
    """The handler refuses both (400); before, only the handler said so, and schemathesis found a
    document-valid body the server refused."""
    import jsonschema

    doc = build_openapi(all_routes(), auth=False)
    ref = doc["paths"][f"{API}/database/tables"]["post"]["requestBody"]["content"]["application/json"]
    schema = {**doc["components"]["schemas"][ref["schema"]["$ref"].rsplit("/", 1)[1]]}
    url = "postgresql://u@h/db"
    for body in ({"db_connection": url, "pattern": "a*"}, {"db_connection": url, "table_name_pattern": "a%"}):
        jsonschema.validate(body, schema)
    for both in ({"pattern": "a", "table_name_pattern": "b"}, {"pattern": "", "table_name_pattern": ""}):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate({"db_connection": url, **both}, schema)

"""Rules between the fields of a request body, as JSON Schema, for `json_schema_extra`.

A handler that refuses a combination of fields (two that exclude each other, one that needs another)
states it here so the OpenAPI document says it too; tests/contract checks that the two agree. Rules
that compare two values (a start before an end) have no JSON Schema form: say them in the field's
description.
"""

from __future__ import annotations

from itertools import combinations
from typing import Any

_GIVEN = {"not": {"type": "null"}}


def at_most_one_of(*fields: str) -> dict[str, Any]:
    """Of these fields, at most one is given (present and not null)."""
    return {
        "allOf": [
            {"not": {"required": [a, b], "properties": {a: _GIVEN, b: _GIVEN}}}
            for a, b in combinations(fields, 2)
        ]
    }


def requires(field: str, *needed: str) -> dict[str, Any]:
    """When `field` is given, so are `needed`."""
    return {
        "if": {"required": [field], "properties": {field: _GIVEN}},
        "then": {"required": list(needed), "properties": dict.fromkeys(needed, _GIVEN)},
    }


def merge(*rules: dict[str, Any]) -> dict[str, Any]:
    """Several rules as one `json_schema_extra`."""
    return {"allOf": [rule for rule in rules]}

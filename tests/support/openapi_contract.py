"""Checks an HTTP exchange against the gateway's OpenAPI document, for test doubles that stand in for it.

A fake gateway (tests/integration/test_dpctl.py) keeps the CLI's tests fast, but a fake that drifts from
the real API lets the CLI pass against responses the gateway never sends. `ContractChecker` takes the
document the real gateway serves at /api/v0/openapi.json (`build_openapi(all_routes())`, the same
function and route table) and says, for one response, what in it the document does not allow: an
undocumented path, method or status, a content type the operation does not produce, or a JSON body
that fails the operation's schema (checked with jsonschema, draft 2020-12, as OpenAPI 3.1 specifies).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from services.api_gateway.bootstrap import all_routes
from services.api_gateway.openapi import build_openapi


@cache
def gateway_document(auth: bool = True) -> dict[str, Any]:
    """The document the real gateway serves (with tokens configured when `auth`)."""
    return build_openapi(all_routes(), auth=auth)


@dataclass(frozen=True)
class _Operation:
    path: str
    method: str
    spec: dict[str, Any]


class ContractChecker:
    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self._templates: list[tuple[re.Pattern[str], str, int]] = []
        for path in document["paths"]:
            pattern = re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(path))
            literal = len(re.sub(r"{\w+}", "", path))
            self._templates.append((re.compile(f"^{pattern}$"), path, literal))
        # A fixed path wins over a parameterised one (/tasks/active before /tasks/{task_id}).
        self._templates.sort(key=lambda item: -item[2])

    def operation(self, method: str, path: str) -> _Operation | None:
        for pattern, template, _ in self._templates:
            if pattern.match(path):
                spec = self.document["paths"][template].get(method.lower())
                if spec is not None:
                    return _Operation(template, method.upper(), spec)
        return None

    def response_problems(
        self, method: str, path: str, status: int, content_type: str, body: bytes | None
    ) -> list[str]:
        """What the document does not allow in this response (`body` None: streamed, not checked)."""
        where = f"{method.upper()} {path} -> {status}"
        operation = self.operation(method, path)
        if operation is None:
            return [f"{where}: no such operation in the OpenAPI document"]
        response = operation.spec["responses"].get(str(status))
        if response is None:
            documented = ", ".join(operation.spec["responses"])
            return [f"{where}: status not documented for {operation.path} (documented: {documented})"]
        media = content_type.split(";")[0].strip().lower()
        content: dict[str, Any] = response.get("content", {})
        if media not in content and "*/*" not in content:
            return [f"{where}: content type {media!r} not documented (documented: {', '.join(content)})"]
        schema = content.get(media, {}).get("schema")
        if body is None or media != "application/json" or schema is None:
            return []
        try:
            instance = json.loads(body)
        except ValueError as exc:
            return [f"{where}: body is not JSON: {exc}"]
        return [f"{where}: {problem}" for problem in self.schema_problems(schema, instance)]

    def request_problems(
        self, method: str, path: str, query: dict[str, str], body: Any, has_body: bool
    ) -> list[str]:
        """What in this request the document refuses (the real gateway answers those with a 4xx)."""
        where = f"{method.upper()} {path}"
        operation = self.operation(method, path)
        if operation is None:
            return [f"{where}: no such operation in the OpenAPI document"]
        problems: list[str] = []
        match = next(p.match(path) for p, template, _ in self._templates if template == operation.path)
        assert match is not None
        for param in operation.spec.get("parameters", []):
            if param["in"] == "path":
                value: Any = match.group(param["name"])
            elif param["in"] == "query" and param["name"] in query:
                value = _from_query(query[param["name"]], param.get("schema", {}))
            else:
                continue
            for problem in self.schema_problems(param.get("schema", {}), value):
                problems.append(f"{where}: {param['in']} parameter {param['name']}={value!r}: {problem}")
        request_body = operation.spec.get("requestBody")
        if has_body and request_body is not None:
            schema = request_body["content"].get("application/json", {}).get("schema")
            if schema is not None:
                problems.extend(f"{where}: body {p}" for p in self.schema_problems(schema, body))
        elif request_body is not None and request_body.get("required"):
            problems.append(f"{where}: a request body is required")
        return problems

    def schema_problems(self, schema: dict[str, Any], instance: Any) -> list[str]:
        # The operation's schema refers to #/components/schemas/...: validate it inside a root that
        # carries those components, so the references resolve as they do in the document.
        root = {"components": self.document["components"], "allOf": [schema]}
        validator = Draft202012Validator(root)
        return [
            f"{'/'.join(str(p) for p in error.absolute_path) or '(body)'}: {error.message}"
            for error in sorted(validator.iter_errors(instance), key=lambda e: list(e.absolute_path))
        ]


def _types(schema: dict[str, Any]) -> set[str]:
    found = {schema["type"]} if isinstance(schema.get("type"), str) else set(schema.get("type") or ())
    for option in schema.get("anyOf", []):
        found |= _types(option)
    return found


def _from_query(text: str, schema: dict[str, Any]) -> Any:
    """A query string value as the gateway parses it for `schema` (numbers and booleans from text)."""
    types = _types(schema)
    if "integer" in types and re.fullmatch(r"-?\d+", text):
        return int(text)
    if "number" in types and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return float(text)
    if "boolean" in types and text in ("true", "false"):
        return text == "true"
    return text

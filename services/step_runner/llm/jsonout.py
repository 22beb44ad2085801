"""Getting the JSON out of a model's answer.

Models wrap JSON in ```json fences, put prose or a <think> block before it, leave trailing commas, or
answer a single object where a list was asked for. `extract_json` finds the first complete JSON value
and tolerates those habits; `as_list` / `as_object` give the shape the caller expects.
"""

from __future__ import annotations

import json
import re
from typing import Any

_THINK = re.compile(r"<think(?:ing)?>.*?</think(?:ing)?>", re.DOTALL | re.IGNORECASE)
_FENCE = re.compile(r"```[ \t]*([A-Za-z0-9_-]*)[ \t]*\n?(.*?)```", re.DOTALL)


class JSONExtractionError(ValueError):
    """The answer holds no parseable JSON value."""


def _remove_trailing_commas(text: str) -> str:
    """Drop commas before } or ] that are outside strings."""
    out: list[str] = []
    in_string = escaped = False
    for i, ch in enumerate(text):
        if in_string:
            out.append(ch)
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
            continue
        if ch == '"':
            in_string = True
        elif ch == ",":
            rest = text[i + 1 :].lstrip()
            if rest[:1] in {"}", "]"}:
                continue
        out.append(ch)
    return "".join(out)


def _balanced_values(text: str) -> list[str]:
    """Every top-level {...} or [...] span in `text`, in order (strings inside them respected)."""
    spans: list[str] = []
    i = 0
    while i < len(text):
        if text[i] not in "{[":
            i += 1
            continue
        depth, in_string, escaped = 0, False, False
        for j in range(i, len(text)):
            ch = text[j]
            if in_string:
                if escaped:
                    escaped = False
                elif ch == "\\":
                    escaped = True
                elif ch == '"':
                    in_string = False
            elif ch == '"':
                in_string = True
            elif ch in "{[":
                depth += 1
            elif ch in "}]":
                depth -= 1
                if depth == 0:
                    spans.append(text[i : j + 1])
                    i = j
                    break
        else:
            spans.append(text[i:])  # unbalanced: let the parser say why
            break
        i += 1
    return spans


def _parse(candidate: str) -> Any:
    try:
        return json.loads(candidate)
    except json.JSONDecodeError:
        return json.loads(_remove_trailing_commas(candidate))


def extract_json(answer: str) -> Any:
    """The first JSON object or array in `answer`; raises JSONExtractionError when there is none."""
    text = _THINK.sub("", answer or "")
    # An unclosed <think> (answer cut off) hides nothing useful after it.
    text = re.sub(r"^\s*<think(?:ing)?>.*", "", text, flags=re.DOTALL) if "</think" not in text else text
    candidates: list[str] = []
    for match in _FENCE.finditer(text):
        candidates.append(match.group(2).strip())
    candidates.append(text.strip())
    last_error: Exception | None = None
    for block in candidates:
        if not block:
            continue
        for span in [block, *_balanced_values(block)]:
            try:
                return _parse(span)
            except json.JSONDecodeError as exc:
                last_error = exc
    snippet = (answer or "").strip().replace("\n", " ")[:120]
    raise JSONExtractionError(f"no JSON value in the answer ({last_error}): {snippet!r}")


def as_list(value: Any, *keys: str) -> list[Any]:
    """A list answer: the value itself, a list under one of `keys` (or the only list in an object),
    or a single object wrapped in a list."""
    if isinstance(value, list):
        return value
    if isinstance(value, dict):
        for key in keys:
            if isinstance(value.get(key), list):
                return value[key]
        lists = [v for v in value.values() if isinstance(v, list) and all(isinstance(x, dict) for x in v)]
        if len(lists) == 1:
            return lists[0]
        return [value]
    raise JSONExtractionError(f"expected a JSON array, got {type(value).__name__}")


def as_object(value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and len(value) == 1 and isinstance(value[0], dict):
        return value[0]
    raise JSONExtractionError(f"expected a JSON object, got {type(value).__name__}")

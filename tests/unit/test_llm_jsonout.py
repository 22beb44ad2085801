"""Getting JSON out of the ways models actually answer."""

from __future__ import annotations

import pytest

from services.step_runner.llm.jsonout import JSONExtractionError, as_list, as_object, extract_json


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        ('{"a": 1}', {"a": 1}),
        ('```json\n{"a": 1}\n```', {"a": 1}),
        ("```\n[1, 2]\n```", [1, 2]),
        ('Sure! Here is the JSON you asked for:\n{"a": "b"}\nHope it helps.', {"a": "b"}),
        ('{"a": [1, 2,], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ('<think>maybe {"wrong": true}</think>\n{"right": true}', {"right": True}),
        ('<think>\nreasoning...\n</think>```json\n[{"q": "x"}]\n```', [{"q": "x"}]),
        ('{"sql": "SELECT \'a, }\' FROM t;"}', {"sql": "SELECT 'a, }' FROM t;"}),
        ('{"text": "a \\" quote, ]"}', {"text": 'a " quote, ]'}),
        ('prose [not json] then {"k": [1]}', {"k": [1]}),
        ('{"zh": "订单数量"}', {"zh": "订单数量"}),
    ],
)
def test_extracts_the_json_value(answer: str, expected: object) -> None:
    assert extract_json(answer) == expected


def test_trailing_comma_inside_strings_is_kept() -> None:
    assert extract_json('{"s": "a,}", "t": [",]",],}') == {"s": "a,}", "t": [",]"]}


@pytest.mark.parametrize(
    "answer", ["", "no json here", '<think>{"a": 1}</think>', "{unclosed", "<think>cut off {"]
)
def test_no_json_is_an_error(answer: str) -> None:
    with pytest.raises(JSONExtractionError):
        extract_json(answer)


def test_as_list_accepts_the_shapes_models_use() -> None:
    assert as_list([1]) == [1]
    assert as_list({"themes": [{"a": 1}]}, "themes") == [{"a": 1}]
    assert as_list({"result": [{"a": 1}]}, "themes") == [{"a": 1}]  # the only list of objects
    assert as_list({"question": "q", "sql": "s"}, "pairs") == [{"question": "q", "sql": "s"}]
    with pytest.raises(JSONExtractionError):
        as_list("text")


def test_as_object() -> None:
    assert as_object({"a": 1}) == {"a": 1}
    assert as_object([{"a": 1}]) == {"a": 1}
    with pytest.raises(JSONExtractionError):
        as_object([1, 2])

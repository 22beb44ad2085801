"""The offline generator's output for the demo, HR and highway schemas is byte-identical to the golden
file written before its templates became data (tests/support/offline_golden.py)."""

from __future__ import annotations

import json

import pytest

from tests.support.offline_golden import CONTEXTS, GOLDEN, SCHEMAS, generated

EXPECTED = json.loads(GOLDEN.read_text(encoding="utf-8"))


@pytest.mark.parametrize("schema", SCHEMAS)
@pytest.mark.parametrize("language", list(CONTEXTS))
async def test_generated_text_is_unchanged(schema: str, language: str) -> None:
    got, want = await generated(schema, language), EXPECTED[f"{schema}/{language}"]
    for part in ("candidates", "pairs"):
        assert len(got[part]) == len(want[part]), part
        for i, (g, w) in enumerate(zip(got[part], want[part], strict=True)):
            assert g == w, f"{part}[{i}]"

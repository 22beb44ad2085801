"""Tests wait for conditions, not for time (issue #8, point 6).

A fixed sleep either slows every run or passes by accident when the machine is slow; a negative check
after a sleep lets a late message pass unseen. Poll with `tests.support.eventually.eventually`, or wait
for a positive marker. A sleep that is the point of the code (simulated work, a server that hangs, a
test that lets a timeout expire) stays, with a comment on its line saying why.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
SLEEP = re.compile(r"\b(asyncio|time)\.sleep\(")
EXEMPT = {TESTS / "support" / "eventually.py", Path(__file__).resolve()}  # the helper; this check


def unexplained_sleeps(root: Path) -> list[str]:
    """Every `asyncio.sleep(` / `time.sleep(` under `root` with no comment after it on its line."""
    found = []
    for path in sorted(root.rglob("*.py")):
        if path in EXEMPT:
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            match = SLEEP.search(line)
            if match and "#" not in line[match.end() :]:
                found.append(f"{path.relative_to(root.parent)}:{number}: {line.strip()}")
    return found


def test_every_sleep_in_the_tests_says_why() -> None:
    unexplained = unexplained_sleeps(TESTS)
    assert not unexplained, (
        "poll with tests.support.eventually.eventually (or wait for a positive marker) instead of "
        "sleeping; a sleep that must stay needs a comment on its line:\n" + "\n".join(unexplained)
    )


def test_the_check_sees_a_bare_sleep(tmp_path: Path) -> None:
    tests = tmp_path / "tests"
    tests.mkdir()
    (tests / "test_x.py").write_text(
        "await asyncio.sleep(1)\ntime.sleep(2)  # a timeout must expire\n", encoding="utf-8"
    )
    assert unexplained_sleeps(tests) == ["tests/test_x.py:1: await asyncio.sleep(1)"]

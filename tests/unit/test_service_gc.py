"""The garbage collector every service runs with (shared/service.py): the imports' objects frozen, the young
generation collected less often, and reference cycles still collected without anyone asking."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from shared.service import YOUNG_GENERATION_THRESHOLD, run_service


@pytest.fixture
def restored_gc() -> Iterator[None]:
    thresholds = gc.get_threshold()
    yield
    gc.set_threshold(*thresholds)
    gc.unfreeze()


class Node:
    def __init__(self) -> None:
        self.other: Node | None = None


def test_a_service_runs_with_the_imports_frozen_and_the_young_threshold(restored_gc: None) -> None:
    seen: dict[str, object] = {}

    async def serve() -> None:
        seen["threshold"], seen["frozen"] = gc.get_threshold(), gc.get_freeze_count()

    defaults = gc.get_threshold()
    run_service(serve)
    assert seen["threshold"] == (YOUNG_GENERATION_THRESHOLD, *defaults[1:])
    assert isinstance(seen["frozen"], int) and seen["frozen"] > 10_000  # the imported modules' objects


def test_cycles_are_still_collected_on_their_own(restored_gc: None) -> None:
    alive: list[int] = []

    async def serve() -> None:
        refs = []
        for _ in range(5 * YOUNG_GENERATION_THRESHOLD):
            a, b = Node(), Node()
            a.other, b.other = b, a  # a cycle: reference counting alone never frees it
            refs.append(weakref.ref(a))
        alive.append(sum(ref() is not None for ref in refs))

    run_service(serve)
    # Without collections every pair would still be alive; the ones left are those since the last one.
    assert alive[0] < 2 * YOUNG_GENERATION_THRESHOLD, alive

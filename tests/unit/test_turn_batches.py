"""shared.turn_batches.TurnBatches: the reads of one loop turn share one fetch; every caller gets its own
key's value, its failure, or its cancellation, and one caller's cancellation spares the others."""

from __future__ import annotations

import asyncio

import pytest

from shared.turn_batches import TurnBatches


class Source:
    """A fetch that records each batch it was asked for and answers `key * 10`."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.batches: list[list[int]] = []
        self.fail = fail
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.release.set()

    async def fetch(self, keys: list[int]) -> dict[int, int]:
        self.batches.append(keys)
        self.started.set()
        await self.release.wait()
        if self.fail is not None:
            raise self.fail
        return {k: k * 10 for k in keys}


async def test_the_reads_of_one_turn_share_one_fetch_and_each_gets_its_value() -> None:
    source = Source()
    batches = TurnBatches(source.fetch)
    assert await asyncio.gather(*(batches.get(k) for k in (3, 1, 2, 1))) == [30, 10, 20, 10]
    assert source.batches == [[3, 1, 2]]  # a repeated key is fetched once


async def test_reads_of_separate_turns_are_separate_fetches() -> None:
    source = Source()
    batches = TurnBatches(source.fetch)
    assert await batches.get(1) == 10
    assert await batches.get(2) == 20
    assert source.batches == [[1], [2]]


async def test_a_failed_fetch_fails_every_read_of_its_batch_and_not_the_next() -> None:
    source = Source(fail=ConnectionError("database gone"))
    batches = TurnBatches(source.fetch)
    results = await asyncio.gather(batches.get(1), batches.get(2), return_exceptions=True)
    assert all(isinstance(r, ConnectionError) for r in results), results
    source.fail = None
    assert await batches.get(3) == 30


async def test_a_cancelled_reader_spares_the_others_of_its_batch() -> None:
    source = Source()
    source.release.clear()
    batches = TurnBatches(source.fetch)
    leaving = asyncio.create_task(batches.get(1))
    staying = asyncio.create_task(batches.get(2))
    await asyncio.wait_for(source.started.wait(), 5)
    leaving.cancel()
    source.release.set()
    assert await staying == 20
    with pytest.raises(asyncio.CancelledError):
        await leaving

"""The collector's NOTIFY for recorded tasks: channel names per schema, payloads under PostgreSQL's limit."""

from __future__ import annotations

import pytest

from shared.recorded_channel import MAX_CHUNKS, MAX_PAYLOAD, PING, payloads, recorded_channel, task_ids

ID = "task_20260101_120000_abcdef"  # 27 bytes, as shared.ids makes them


def test_a_few_ids_go_in_one_payload_and_come_back() -> None:
    ids = [ID[:-1] + c for c in "abc"]
    assert payloads(ids) == [",".join(ids)]
    assert task_ids(payloads(ids)[0]) == ids


def test_many_ids_are_split_under_the_limit_and_none_is_lost() -> None:
    ids = [f"{ID[:-6]}{i:06d}" for i in range(1000)]  # 28 kB joined
    chunks = payloads(ids)
    assert 1 < len(chunks) <= MAX_CHUNKS
    assert all(len(c.encode()) <= MAX_PAYLOAD for c in chunks)
    assert [i for c in chunks for i in task_ids(c) or []] == ids


def test_too_many_ids_become_one_ping_that_wakes_everyone() -> None:
    ids = [f"{ID[:-6]}{i:06d}" for i in range(MAX_CHUNKS * MAX_PAYLOAD // len(ID) + 1)]
    assert payloads(ids) == [PING]
    assert task_ids(PING) is None
    assert payloads([]) == []


def test_the_channel_is_per_schema_and_a_valid_identifier() -> None:
    assert recorded_channel("dp_a") != recorded_channel("dp_b")
    longest = "s" * 41  # the longest schema name settings accept
    assert len(recorded_channel(longest).encode()) <= 63
    with pytest.raises(ValueError):
        recorded_channel("Bad-Name")

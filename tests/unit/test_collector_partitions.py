"""Which partitions a collector replica subscribes to first (issue 11, goal 4): every partition is some
replica's own, replicas' own partitions never overlap, and each replica stands by for all the others."""

from __future__ import annotations

import pytest

from services.log_collector.bootstrap import partition_order, replica_number
from shared.settings import CollectorSettings


@pytest.mark.parametrize(("partitions", "replicas"), [(4, 1), (4, 2), (4, 3), (4, 4), (8, 3), (2, 4)])
def test_own_partitions_cover_every_partition_once_and_the_rest_is_stood_by(
    partitions: int, replicas: int
) -> None:
    owned: list[int] = []
    for replica in range(replicas):
        own, others = partition_order(partitions, replicas, replica)
        assert sorted(own + others) == list(range(partitions))
        owned += own
    assert sorted(owned) == list(range(partitions))


def test_two_replicas_over_four_partitions_split_them_evenly() -> None:
    assert partition_order(4, 2, 0) == ([0, 2], [1, 3])
    assert partition_order(4, 2, 1) == ([1, 3], [2, 0])


def test_the_replica_number_comes_from_the_setting_else_the_pod_name() -> None:
    assert replica_number(CollectorSettings(collector_replica=3), "dp-log-collector-1") == 3
    assert replica_number(CollectorSettings(), "dp-log-collector-1") == 1
    assert replica_number(CollectorSettings(), "laptop") == 0

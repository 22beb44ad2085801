"""The offline embedder: deterministic, normalised, and similar texts near each other."""

from __future__ import annotations

import math

from shared.embeddings import EmbeddingSettings, OfflineEmbedder, OpenAIEmbedder, create_embedder


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


async def test_vectors_are_deterministic_unit_length_and_sized() -> None:
    embedder = OfflineEmbedder(64)
    first = await embedder.embed(["How many orders were paid last month?", "", "订单数量"])
    second = await OfflineEmbedder(64).embed(["How many orders were paid last month?", "", "订单数量"])
    assert first == second
    for vec in first:
        assert len(vec) == 64
        assert math.isclose(math.sqrt(sum(v * v for v in vec)), 1.0, rel_tol=1e-9)


async def test_similar_texts_are_nearer_than_unrelated_ones() -> None:
    a, b, c = await OfflineEmbedder(256).embed(
        [
            "How many orders did each customer place?",
            "Number of orders placed by every customer",
            "Average salary of employees per department",
        ]
    )
    assert _cos(a, b) > _cos(a, c) + 0.1
    zh = await OfflineEmbedder(256).embed(["每个客户的订单数量", "客户订单数量统计", "员工平均工资"])
    assert _cos(zh[0], zh[1]) > _cos(zh[0], zh[2])


def test_factory_picks_the_provider() -> None:
    assert isinstance(create_embedder(EmbeddingSettings()), OfflineEmbedder)
    assert create_embedder(EmbeddingSettings()).dimensions == 256
    assert isinstance(create_embedder(EmbeddingSettings(provider="openai")), OpenAIEmbedder)

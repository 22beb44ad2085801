"""Turning texts into vectors, for the training-data store (step 4) and the gateway's search.

Two implementations of one small protocol: `OfflineEmbedder` (the default) hashes word and character
n-grams into a fixed number of dimensions, so it needs no model download and texts that share words
land near each other; `OpenAIEmbedder` calls any OpenAI-compatible /v1/embeddings endpoint.
"""

from __future__ import annotations

import hashlib
import itertools
import math
import re
from typing import Literal, Protocol

import aiohttp
from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared import llm_usage
from shared.openai_http import OpenAIEndpoint, OpenAIHTTPError, RetryPolicy


class EmbeddingSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DP_EMBEDDING_", extra="ignore", frozen=True)

    provider: Literal["offline", "openai"] = "offline"
    base_url: str = "https://api.openai.com/v1"
    api_key: SecretStr | None = None
    model: str = "text-embedding-3-small"
    dimensions: int = Field(default=256, ge=8, le=8192)
    send_dimensions: bool = Field(
        default=True,
        description="Send `dimensions` in the request (OpenAI v3 models); off for servers that reject it.",
    )
    batch_size: int = Field(default=64, ge=1, le=2048)
    timeout_seconds: float = Field(default=30.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")


class EmbeddingError(Exception):
    """Texts could not be embedded; `retryable` for rate limits, timeouts and 5xx."""

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class Embedder(Protocol):
    """Vectors of a fixed length, one per text, in the order given. Close it when done."""

    name: str
    dimensions: int

    async def embed(self, texts: list[str]) -> list[list[float]]: ...

    async def aclose(self) -> None: ...


_WORD = re.compile(r"[^\W_]+", re.UNICODE)
_CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]")


def _features(text: str) -> dict[str, float]:
    """Weighted features: words, word bigrams, character trigrams of each word (CJK: characters, bigrams)."""
    feats: dict[str, float] = {}

    def add(key: str, weight: float) -> None:
        feats[key] = feats.get(key, 0.0) + weight

    tokens: list[str] = []
    for word in _WORD.findall(text.lower()):
        if _CJK.search(word):
            chars = list(word)
            tokens.extend(chars)
            for a, b in itertools.pairwise(chars):
                add(f"b:{a}{b}", 1.0)
            continue
        tokens.append(word)
        # identifiers: customer_id and customerId share "customer"
        padded = f"<{word}>"
        for i in range(len(padded) - 2):
            add(f"c:{padded[i : i + 3]}", 0.35)
    for tok in tokens:
        add(f"w:{tok}", 1.0)
    for a, b in itertools.pairwise(tokens):
        add(f"p:{a} {b}", 0.5)
    return feats


def hash_embedding(text: str, dimensions: int) -> list[float]:
    vec = [0.0] * dimensions
    for key, weight in _features(text).items():
        digest = hashlib.blake2b(key.encode(), digest_size=8).digest()
        index = int.from_bytes(digest[:4], "little") % dimensions
        sign = 1.0 if digest[4] & 1 else -1.0
        vec[index] += sign * (1.0 + math.log(weight)) if weight >= 1 else sign * weight
    norm = math.sqrt(sum(v * v for v in vec))
    if norm == 0.0:
        vec[0] = 1.0  # a unit vector even for empty text, so cosine distance stays defined
        return vec
    return [v / norm for v in vec]


class OfflineEmbedder:
    name = "offline"

    def __init__(self, dimensions: int = 256) -> None:
        self.dimensions = dimensions

    async def embed(self, texts: list[str]) -> list[list[float]]:
        llm_usage.before_call()
        llm_usage.record_call("offline-embedding", 0, 0, 0.0)  # no tokens, but a call like any other
        return [hash_embedding(t, self.dimensions) for t in texts]

    async def aclose(self) -> None:
        return None


class OpenAIEmbedder:
    name = "openai"

    def __init__(self, settings: EmbeddingSettings, session: aiohttp.ClientSession | None = None) -> None:
        self._settings = settings
        self.dimensions = settings.dimensions
        self._endpoint = OpenAIEndpoint(
            settings.base_url,
            settings.api_key.get_secret_value() if settings.api_key else None,
            RetryPolicy(
                timeout_seconds=settings.timeout_seconds,
                max_retries=settings.max_retries,
                backoff_base_seconds=settings.backoff_base_seconds,
                backoff_max_seconds=settings.backoff_max_seconds,
            ),
            session,
        )

    async def embed(self, texts: list[str]) -> list[list[float]]:
        out: list[list[float]] = []
        size = self._settings.batch_size
        for start in range(0, len(texts), size):
            out.extend(await self._batch(texts[start : start + size]))
        return out

    async def _batch(self, texts: list[str]) -> list[list[float]]:
        s = self._settings
        payload: dict[str, object] = {"model": s.model, "input": [t or " " for t in texts]}
        if s.send_dimensions:
            payload["dimensions"] = s.dimensions
        try:
            body = await self._endpoint.post("/embeddings", payload)
        except OpenAIHTTPError as exc:
            raise EmbeddingError(str(exc), retryable=exc.retryable) from exc
        try:
            rows = sorted(body["data"], key=lambda row: row.get("index", 0))
            vectors = [[float(x) for x in row["embedding"]] for row in rows]
        except (KeyError, TypeError, ValueError) as exc:
            raise EmbeddingError(f"unexpected embeddings answer: {str(body)[:200]}") from exc
        if len(vectors) != len(texts):
            raise EmbeddingError(f"asked for {len(texts)} embeddings, got {len(vectors)}")
        if any(len(v) != self.dimensions for v in vectors):
            raise EmbeddingError(
                f"the model returned {len(vectors[0])} dimensions, settings say {self.dimensions}"
            )
        return vectors

    async def aclose(self) -> None:
        await self._endpoint.aclose()


def create_embedder(settings: EmbeddingSettings) -> Embedder:
    """The configured embedder; no connection is opened until the first embed()."""
    if settings.provider == "openai":
        return OpenAIEmbedder(settings)
    return OfflineEmbedder(settings.dimensions)

"""Building the configured model and embedder (nothing connects until first use)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from services.step_runner.llm.base import TextToSQLModel
from services.step_runner.llm.openai_provider import OpenAIChatModel
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.offline.provider import OfflineTextToSQLModel
from shared.embeddings import create_embedder

__all__ = ["close_llm", "create_embedder", "create_llm", "open_llm"]


def create_llm(settings: LLMSettings) -> TextToSQLModel:
    if settings.provider == "openai":
        return OpenAIChatModel(settings)
    return OfflineTextToSQLModel()


async def close_llm(model: TextToSQLModel) -> None:
    await model.aclose()


@asynccontextmanager
async def open_llm(settings: LLMSettings) -> AsyncIterator[TextToSQLModel]:
    model = create_llm(settings)
    try:
        yield model
    finally:
        await model.aclose()

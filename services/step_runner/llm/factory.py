"""Building the configured model (nothing connects until first use)."""

from __future__ import annotations

from services.step_runner.llm.base import TextToSQLModel
from services.step_runner.llm.openai_provider import OpenAIChatModel
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.offline.provider import OfflineTextToSQLModel


def create_llm(settings: LLMSettings) -> TextToSQLModel:
    if settings.provider == "openai":
        return OpenAIChatModel(settings)
    return OfflineTextToSQLModel()

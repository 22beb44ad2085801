"""Which language model the step runner talks to, and how politely (timeouts, retries, concurrency)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.embeddings import EmbeddingSettings

__all__ = ["EmbeddingSettings", "LLMSettings"]


class LLMSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DP_LLM_", extra="ignore", frozen=True)

    provider: Literal["offline", "openai"] = "offline"
    base_url: str = Field(
        default="https://api.openai.com/v1",
        description="OpenAI-compatible API root, up to and including /v1 (DeepSeek, DashScope, Ollama, vLLM).",
    )
    api_key: SecretStr | None = None
    model: str = "gpt-4o-mini"
    timeout_seconds: float = Field(default=120.0, gt=0)
    max_retries: int = Field(default=3, ge=0, le=10)
    backoff_base_seconds: float = Field(default=1.0, ge=0)
    backoff_max_seconds: float = Field(default=30.0, ge=0)
    concurrency: int = Field(default=8, ge=1, le=64)
    temperature: float = Field(default=0.2, ge=0, le=2)
    max_tokens: int | None = Field(default=None, ge=16)
    answer_retries: int = Field(
        default=2, ge=0, le=5, description="Re-asks after an unusable (malformed) answer."
    )
    json_mode: bool = Field(
        default=False, description='Send response_format={"type": "json_object"} (servers that support it).'
    )

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str) -> str:
        return value.rstrip("/")

    @model_validator(mode="after")
    def _openai_needs_model(self) -> LLMSettings:
        if self.provider == "openai" and not self.model.strip():
            raise ValueError("DP_LLM_MODEL must name a model when DP_LLM_PROVIDER=openai")
        return self

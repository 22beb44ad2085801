"""Where dpctl finds the gateway: the one place dpctl reads the environment."""

from __future__ import annotations

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class DpctlSettings(BaseSettings):
    """Defaults for `--url` and `--token`, from DP_GATEWAY_URL and DP_API_TOKEN."""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore", frozen=True)

    gateway_url: str = Field(default="http://127.0.0.1:8084", description="Base URL of the gateway (dpctl).")
    api_token: SecretStr | None = Field(
        default=None, description="Bearer token dpctl sends (one of DP_API_TOKENS)."
    )

"""Typed settings, read from `DP_*` environment variables. Nothing else in the project reads os.environ."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class CommonSettings(BaseSettings):
    """What every service needs: where the pipeline database, the broker and the task directories are."""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore", frozen=True)

    database_url: SecretStr = SecretStr("postgresql://postgres@127.0.0.1:5432/postgres")
    db_schema: str = "data_pipeline"
    db_pool_max_size: int = Field(default=10, ge=1, le=200)
    rabbitmq_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    broker_prefix: str = "dp"
    data_root: Path = Path("var/tasks")
    encryption_key: SecretStr | None = None
    connections: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named business-database connections: JSON object name -> PostgreSQL URL.",
    )
    health_port: int | None = Field(
        default=None, ge=1, le=65535, description="Port for /healthz and /readyz."
    )
    log_level: str = "INFO"
    log_format: str = Field(default="auto", pattern="^(auto|json|console)$")

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        if not _IDENT.fullmatch(value):
            raise ValueError("must be a lower-case SQL identifier (letters, digits, underscore)")
        return value

    @field_validator("broker_prefix")
    @classmethod
    def _prefix_is_safe(cls, value: str) -> str:
        if not _PREFIX.fullmatch(value):
            raise ValueError("must be 1-40 characters of letters, digits, '_', '.', '-'")
        return value

    @field_validator("log_level")
    @classmethod
    def _level_known(cls, value: str) -> str:
        value = value.upper()
        if value not in {"DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"}:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value


class GatewaySettings(CommonSettings):
    http_host: str = "0.0.0.0"
    http_port: int = Field(default=8084, ge=1, le=65535)
    api_tokens: list[SecretStr] = Field(default_factory=list, description="Bearer tokens; empty: no auth.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    max_upload_bytes: int = Field(default=262_144, ge=1024)
    create_visibility_timeout_seconds: float = Field(default=5.0, ge=0)
    delete_visibility_timeout_seconds: float = Field(
        default=5.0, ge=0, description="How long DELETE waits for the task's records to disappear before 202."
    )
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for the broker's confirm of a command (then 503)."
    )
    sse_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Comment lines sent on idle event streams to keep proxies from closing them.",
    )
    public_base_url: str | None = None


class SchedulerSettings(CommonSettings):
    max_concurrent_tasks: int = Field(default=1, ge=1, le=1000)
    task_timeout_hours: float = Field(default=2.0, gt=0)
    heartbeat_timeout_seconds: float = Field(default=60.0, gt=0)
    retry_max_attempts: int = Field(default=3, ge=1, le=20)
    retry_base_delay_seconds: float = Field(default=2.0, ge=0)
    retry_max_delay_seconds: float = Field(default=60.0, ge=0)
    tick_interval_seconds: float = Field(default=2.0, gt=0)
    cancel_grace_seconds: float = Field(default=15.0, ge=0)
    startup_sync_timeout_seconds: float = Field(default=10.0, ge=0)


class RunnerSettings(CommonSettings):
    runner_id: str | None = None
    runner_concurrency: int = Field(default=1, ge=1, le=64)
    heartbeat_interval_seconds: float = Field(default=5.0, gt=0)
    shutdown_grace_seconds: float = Field(default=20.0, ge=0)
    executor_registry: str = Field(
        default="services.step_runner.registry:default_registry",
        description="module:function returning the step registry (tests point it at their own executors).",
    )


class CollectorSettings(CommonSettings):
    collector_batch_size: int = Field(default=200, ge=1, le=5000)
    collector_flush_ms: int = Field(default=50, ge=1, le=10_000)

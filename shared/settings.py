"""Typed settings, read from `DP_*` environment variables. Nothing else in the project reads os.environ."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import TypeVar

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

S = TypeVar("S", bound=BaseSettings)
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")
_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


class CommonSettings(BaseSettings):
    """What every service needs: where the pipeline database, the broker and the task directories are."""

    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore", frozen=True)

    database_url: SecretStr = Field(
        default=SecretStr("postgresql://postgres@127.0.0.1:5432/postgres"),
        description="PostgreSQL URL of the pipeline database (tables, event store).",
    )
    db_schema: str = Field(
        default="data_pipeline",
        description="Schema holding the pipeline tables; tests and several deployments use their own.",
    )
    db_pool_max_size: int = Field(default=10, ge=1, le=200, description="Largest asyncpg pool per process.")
    rabbitmq_url: SecretStr = Field(
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"), description="AMQP URL of RabbitMQ."
    )
    broker_prefix: str = Field(default="dp", description="Prefix of every exchange and queue name.")
    data_root: Path = Field(
        default=Path("var/tasks"),
        description="Directory holding one sub-directory per task (shared by runners, collector, gateway).",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts business-database passwords (Fernet key or any passphrase); unset: generated once into <data_root>/.encryption_key.",
    )
    connections: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named business-database connections: JSON object name -> PostgreSQL URL.",
    )
    health_port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="Port for the worker services' /healthz, /readyz and /metrics (unset: none).",
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING, ERROR or CRITICAL.")
    log_format: str = Field(
        default="auto",
        pattern="^(auto|json|console)$",
        description="auto (console on a terminal, JSON otherwise), json or console.",
    )

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
    http_host: str = Field(default="0.0.0.0", description="Address the gateway listens on.")
    http_port: int = Field(default=8084, ge=1, le=65535, description="Port the gateway listens on.")
    api_tokens: list[SecretStr] = Field(default_factory=list, description="Bearer tokens; empty: no auth.")
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body (413 above).")
    max_upload_bytes: int = Field(
        default=262_144, ge=1024, description="Largest table-list upload (413 above)."
    )
    create_visibility_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long POST /tasks waits for the task to appear in the read model (201), else 202.",
    )
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
    public_base_url: str | None = Field(
        default=None, description="Base URL shown in links when the gateway sits behind a proxy."
    )


class SchedulerSettings(CommonSettings):
    max_concurrent_tasks: int = Field(
        default=1,
        ge=1,
        le=1000,
        description="Tasks in progress at once; more wait as pending (never rejected).",
    )
    task_timeout_hours: float = Field(default=2.0, gt=0, description="A task running longer is failed.")
    heartbeat_timeout_seconds: float = Field(
        default=60.0,
        gt=0,
        description="A running step silent for longer is failed as a zombie (and retried).",
    )
    retry_max_attempts: int = Field(
        default=3, ge=1, le=20, description="Attempts per step for retryable failures."
    )
    retry_base_delay_seconds: float = Field(
        default=2.0, ge=0, description="First retry delay; doubles per attempt."
    )
    retry_max_delay_seconds: float = Field(default=60.0, ge=0, description="Cap of the retry delay.")
    tick_interval_seconds: float = Field(
        default=2.0, gt=0, description="How often the scheduler checks timeouts, retries and admissions."
    )
    cancel_grace_seconds: float = Field(
        default=15.0,
        ge=0,
        description="How long a cancel waits for the runner to confirm before the scheduler ends the step itself.",
    )
    dispatch_timeout_seconds: float = Field(
        default=1800.0,
        gt=0,
        description="A step no runner has started within this time is failed (retryable): lost or dead-lettered command, or no runner.",
    )
    startup_sync_timeout_seconds: float = Field(
        default=10.0,
        ge=0,
        description="On take-over, how long the scheduler waits for the collector to catch up before rebuilding its state.",
    )


class RunnerSettings(CommonSettings):
    runner_id: str | None = Field(
        default=None, description="Name of this runner in events and error messages (default host-pid)."
    )
    runner_concurrency: int = Field(
        default=1, ge=1, le=64, description="Steps one runner process executes at once (its prefetch)."
    )
    heartbeat_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often a running step reports it is alive."
    )
    shutdown_grace_seconds: float = Field(
        default=20.0,
        ge=0,
        description="On SIGTERM, how long running steps may finish before they are handed back to the queue.",
    )
    executor_registry: str = Field(
        default="services.step_runner.registry:default_registry",
        description="module:function returning the step registry (tests point it at their own executors).",
    )


class CollectorSettings(CommonSettings):
    collector_batch_size: int = Field(
        default=200, ge=1, le=5000, description="Events stored per transaction at most."
    )
    collector_flush_ms: int = Field(
        default=50, ge=1, le=10_000, description="Longest wait before a partial batch is stored."
    )


def load_settings(cls: type[S], program: str) -> S:
    """Build a settings object from the environment, or exit with a readable list of what is wrong."""
    try:
        return cls()
    except ValidationError as exc:
        lines = [f"{program}: invalid settings"]
        prefix = cls.model_config.get("env_prefix", "")
        for error in exc.errors():
            field = ".".join(str(p) for p in error["loc"])
            lines.append(f"  {prefix}{field.upper()}: {error['msg']}")
        print("\n".join(lines), file=sys.stderr)
        raise SystemExit(2) from None

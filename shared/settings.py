"""Typed settings, read from `DP_*` environment variables. Nothing else in the project reads os.environ."""

from __future__ import annotations

import ipaddress
import re
from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.credentials import MIN_PASSPHRASE_LENGTH, ApiToken, is_placeholder
from shared.pipeline_settings import schema_name
from shared.publish_settings import RunnerPublishSettings
from shared.review_settings import ReviewGatewaySettings, ReviewSchedulerSettings
from shared.vocabulary import LOG_LEVELS

_PREFIX = re.compile(r"^[A-Za-z0-9_.-]{1,40}$")


def _is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


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
        default=SecretStr("amqp://guest:guest@127.0.0.1:5672/"),
        description="AMQP URL of RabbitMQ. Its query takes aio-pika's connection options, e.g. `?reconnect_interval=2` (seconds between reconnect attempts after the broker drops the connection; default 5).",
    )
    broker_prefix: str = Field(default="dp", description="Prefix of every exchange and queue name.")
    collector_partitions: int = Field(
        default=4, ge=1, le=64, description="Event queues; at most one collector replica each (scaling.md)."
    )
    data_root: Path = Field(
        default=Path("var/tasks"),
        description="Directory holding one sub-directory per task (shared by runners, collector, gateway).",
    )
    encryption_key: SecretStr | None = Field(
        default=None,
        description="Key that encrypts business-database passwords: a Fernet key, or a passphrase of at "
        "least 16 characters (stretched with scrypt); template placeholders are refused. Unset: generated "
        "once into <data_root>/.encryption_key.",
    )
    connections: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="Named business-database connections: JSON object name -> PostgreSQL URL.",
    )
    allowed_db_hosts: list[str] = Field(
        default_factory=list,
        description="Business-database hosts the pipeline may connect to: JSON list of host-name patterns "
        "(`db.internal`, `*.corp.example`) and IP networks (`10.0.0.0/8`). A name not matched by a pattern is "
        "resolved and every address must lie in a listed network. Empty: every host (the gateway warns at "
        "start-up when it listens beyond loopback). Checked by the gateway and again by the step runner.",
    )
    allow_adhoc_connections: bool = Field(
        default=True,
        description="Accept business-database URLs from callers; false: only the named DP_CONNECTIONS.",
    )
    startup_wait_seconds: float = Field(
        default=30,
        ge=0,
        le=600,
        description="How long a starting service waits for PostgreSQL and RabbitMQ to be reachable.",
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
        description="auto (console on a terminal, JSON otherwise), json or console (coloured on a terminal or with FORCE_COLOR=1, never with NO_COLOR=1).",
    )

    @field_validator("encryption_key")
    @classmethod
    def _key_is_not_a_placeholder(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        secret = value.get_secret_value()
        if not secret:
            return None  # empty: same as unset (a generated key)
        if is_placeholder(secret):
            raise ValueError(
                "is a template placeholder; generate a key: "
                'python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"'
            )
        if len(secret) < MIN_PASSPHRASE_LENGTH:
            raise ValueError(
                f"must be a Fernet key or a passphrase of at least {MIN_PASSPHRASE_LENGTH} characters"
            )
        return value

    @field_validator("connections")
    @classmethod
    def _connections_parse(cls, value: dict[str, SecretStr]) -> dict[str, SecretStr]:
        from shared.connection_url import ConnectionUrlError, parse_db_url

        for name, url in value.items():
            try:
                parse_db_url(url.get_secret_value())
            except ConnectionUrlError as exc:  # the message never quotes the URL
                raise ValueError(f"connection {name!r}: {exc}") from None
        return value

    @field_validator("allowed_db_hosts")
    @classmethod
    def _host_patterns_are_valid(cls, value: list[str]) -> list[str]:
        from shared.connection_url import check_host_pattern

        return [check_host_pattern(pattern) for pattern in value]

    @field_validator("db_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        return schema_name(value)

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
        if value not in LOG_LEVELS:
            raise ValueError("must be DEBUG, INFO, WARNING, ERROR or CRITICAL")
        return value


class GatewaySettings(CommonSettings, ReviewGatewaySettings):
    http_host: str = Field(
        default="127.0.0.1",
        description="Address the gateway listens on. Beyond loopback (e.g. 0.0.0.0) it needs DP_API_TOKENS "
        "(or DP_ALLOW_INSECURE=1).",
    )
    http_port: int = Field(default=8084, ge=1, le=65535, description="Port the gateway listens on.")
    api_tokens: list[ApiToken] = Field(
        default_factory=list,
        description='Bearer tokens: JSON list of {"token", "role", "name", "connections"} objects; a plain '
        "string is an admin token. Empty: no auth (loopback only, unless DP_ALLOW_INSECURE=1).",
    )
    allow_insecure: bool = Field(
        default=False,
        description="Let the gateway listen beyond loopback without DP_API_TOKENS (everyone is admin).",
    )
    sse_max_streams_total: int = Field(
        default=200,
        ge=1,
        le=1800,
        description="Open event streams (each a broker channel; 2,047 per connection at most) at once; 503 past it.",
    )
    sse_max_streams_per_client: int = Field(
        default=10, ge=1, description="Open event streams per token (per address without auth); 503 past it."
    )
    rate_limit_per_minute: float = Field(
        default=60.0,
        ge=0,
        description="Expensive requests (training search, table listing, opening a stream) per token or "
        "address and minute; 0: no limit. 429 with Retry-After past it.",
    )
    rate_limit_burst: int = Field(
        default=20, ge=1, description="Expensive requests a client may make at once before the rate applies."
    )
    default_connection: str | None = Field(
        default=None,
        description="Name of one of DP_CONNECTIONS used by the earlier implementation's create (a flat POST"
        " /tasks body) when it gives no db_connection. Unset: such a create must name its connection (400).",
    )
    max_body_bytes: int = Field(default=1_048_576, ge=1024, description="Largest request body (413 above).")
    max_upload_bytes: int = Field(
        default=262_144, ge=1024, description="Largest table-list upload (413 above)."
    )
    table_lists_dir: Path | None = Field(
        default=None,
        description="Operator-provisioned directory of table-list files: POST /tasks may name one in JSON "
        "`table_list_file` (a bare name or a relative path inside it; no absolute paths, no `..`, no "
        "links out of it) and it is copied into the task directory. Unset: that way is off (400); "
        "uploading the file with the create (multipart) or `table_list` always work.",
    )
    create_visibility_timeout_seconds: float = Field(
        default=5.0,
        ge=0,
        description="How long POST /tasks waits for the task to appear in the read model (201), else 202.",
    )
    delete_visibility_timeout_seconds: float = Field(
        default=5.0, ge=0, description="How long DELETE waits for the task's records to disappear before 202."
    )
    ready_max_collector_lag_seconds: float = Field(
        default=60.0,
        gt=0,
        description="/readyz answers 503 when a task accepted with 202 has not been recorded for longer than"
        " this (the collector or the scheduler lags).",
    )
    log_count_limit: int = Field(
        default=1_000,
        ge=1,
        description="GET /tasks/{id}/logs stops counting matching lines here (total_exact: false past it).",
    )
    task_count_limit: int = Field(
        default=1_000,
        ge=1,
        description="GET /tasks stops counting matching tasks here (total_exact: false past it).",
    )
    accepted_task_ttl_seconds: float = Field(
        default=86_400.0,
        gt=0,
        description="An accepted task still not recorded after this long is given up as lost: it no longer"
        " holds /readyz at 503 and its placeholder is removed.",
    )
    database_tables_timeout_seconds: float = Field(
        default=15.0,
        gt=0,
        le=120,
        description="Total deadline of POST /database/tables (connect and list); past it: 400, retryable.",
    )
    publish_timeout_seconds: float = Field(
        default=10.0, gt=0, description="Longest wait for the broker's confirm of a command (then 503)."
    )
    sse_keepalive_seconds: float = Field(
        default=15.0,
        gt=0,
        description="Comment lines sent on idle event streams to keep proxies from closing them.",
    )
    enable_file_download: bool = Field(
        default=True,
        description="Serve task files on the download routes; false: they answer 403 with the reason"
        " (listing files still works).",
    )
    max_download_bytes: int = Field(
        default=100 * 1024 * 1024,
        ge=1,
        description="Largest file the download routes serve (100 MiB); a larger one answers 413 with its"
        " size and the limit.",
    )
    public_base_url: str | None = Field(
        default=None,
        description="Base URL shown in links when the gateway sits behind a proxy; its origin is also "
        "accepted as the gateway's own by the cross-origin check of state-changing requests.",
    )

    @field_validator("api_tokens", mode="before")
    @classmethod
    def _plain_strings_are_admin(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [{"token": item, "role": "admin"} if isinstance(item, str) else item for item in value]
        return value

    @model_validator(mode="after")
    def _default_connection_configured(self) -> GatewaySettings:
        if self.default_connection is not None and self.default_connection not in self.connections:
            raise ValueError(
                f"DP_DEFAULT_CONNECTION names {self.default_connection!r}, which DP_CONNECTIONS does not define"
            )
        return self

    @model_validator(mode="after")
    def _secure_by_default(self) -> GatewaySettings:
        secrets = [t.token.get_secret_value() for t in self.api_tokens]
        if len(set(secrets)) != len(secrets):
            raise ValueError("DP_API_TOKENS lists the same token twice")
        names = [t.name for t in self.api_tokens if t.name]
        if len(set(names)) != len(names):
            raise ValueError("DP_API_TOKENS gives two tokens the same name")
        if not self.api_tokens and not self.allow_insecure and not _is_loopback(self.http_host):
            raise ValueError(
                f"the gateway would listen on {self.http_host} without authentication: set DP_API_TOKENS, "
                "or DP_HTTP_HOST=127.0.0.1, or DP_ALLOW_INSECURE=1 to accept an open gateway"
            )
        return self


class SchedulerSettings(CommonSettings, ReviewSchedulerSettings):
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
    log_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="Log text (log rows, log events, data_pipeline.log) of a task finished longer ago than"
        " this is removed by the scheduler; the task record stays. 0: keep for ever. Fractions allowed.",
    )
    file_retention_days: float = Field(
        default=30.0,
        ge=0,
        description="The files of a task finished longer ago than this are removed by the scheduler and"
        " its executions marked files_cleaned; the task record stays. 0: keep for ever. Fractions allowed.",
    )
    retention_interval_seconds: float = Field(
        default=3600.0,
        gt=0,
        description="How often the scheduler looks for finished tasks past DP_LOG_RETENTION_DAYS or"
        " DP_FILE_RETENTION_DAYS.",
    )
    retention_batch_size: int = Field(
        default=100,
        ge=1,
        le=10_000,
        description="Tasks one retention pass acts on at most (the next pass goes on with the rest).",
    )


class RunnerSettings(CommonSettings, RunnerPublishSettings):
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
    llm_price_per_1k_prompt_tokens: float | None = Field(
        default=None,
        ge=0,
        description="Price of 1,000 prompt tokens (any currency): with it, results and metrics show LLM cost.",
    )
    llm_price_per_1k_completion_tokens: float | None = Field(
        default=None,
        ge=0,
        description="Price of 1,000 completion tokens (same currency as the prompt price).",
    )


class CollectorSettings(CommonSettings):
    collector_batch_size: int = Field(
        default=500, ge=1, le=5000, description="Events stored per transaction at most."
    )
    collector_flush_ms: int = Field(
        default=0, ge=0, le=10_000, description="Longest wait for a partial batch (0: store once idle)."
    )
    collector_linger_ms: int = Field(
        default=50,
        ge=0,
        le=10_000,
        description="Longest wait for a partial batch of a running step's events alone (its order, start, heartbeats, progress, log lines, outputs), to share a transaction; any other event (a step's outcome, anything about the task) is stored at once and takes them along (0: no wait).",
    )
    collector_replicas: int = Field(default=1, ge=1, le=64, description="Replicas sharing the partitions.")
    collector_replica: int | None = Field(
        default=None, ge=0, description="This replica's number (unset: the host name's last number, or 0)."
    )

"""How the pipeline steps treat the business database and the training-data store (`DP_*` variables)."""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.quality_flags import DEFAULT_QUALITY_ACTIONS, QualityAction, QualityFlag

_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,40}$")


def schema_name(value: str) -> str:
    """A schema name that goes into SQL unquoted (pipeline and training schemas): a short lower-case
    identifier. Shared by both settings classes, so the rule has one home."""
    if not _IDENT.fullmatch(value):
        raise ValueError("must be a lower-case SQL identifier (letters, digits, underscore)")
    return value


class PipelineSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="DP_", extra="ignore", frozen=True)

    ddl_concurrency: int = Field(
        default=8, ge=1, le=64, description="Tables introspected and described at the same time in step 1."
    )
    sql_validation_concurrency: int = Field(
        default=8, ge=1, le=64, description="SQL statements checked with EXPLAIN at the same time in step 3."
    )
    statement_timeout_ms: int = Field(
        default=5000,
        ge=100,
        le=600_000,
        description="statement_timeout for every query the steps send to the business database.",
    )
    sample_rows: int = Field(
        default=5, ge=0, le=100, description="Sample rows read per table for the docs and the LLM."
    )
    enum_max_distinct: int = Field(
        default=12,
        ge=2,
        le=100,
        description="A text column with at most this many distinct values (in a bounded sample) is enum-like.",
    )
    large_table_rows: int = Field(
        default=100_000,
        ge=100,
        description="Above this estimated row count a table is sampled with TABLESAMPLE and never counted.",
    )
    llm_repair_rounds: int = Field(
        default=2,
        ge=0,
        le=10,
        description="Repair attempts per failing SQL in step 3 when the task does not set its own.",
    )
    llm_repair_max_calls: int = Field(
        default=200,
        ge=0,
        le=100_000,
        description=(
            "LLM repair calls one run of step 3 may make in all (rounds x failing pairs is otherwise "
            "unbounded); when spent, repairing stops and the remaining pairs are reported as not repaired."
        ),
    )
    sql_max_plan_cost: float = Field(
        default=10_000_000.0,
        gt=0,
        description=(
            "A statement whose EXPLAIN estimates a higher total cost is invalid (steps 3 and 4): it would "
            "be too expensive to run for the assistant that learns it."
        ),
    )
    sql_max_plan_rows: float = Field(
        default=10_000_000.0,
        gt=0,
        description="A statement whose EXPLAIN estimates more result rows than this is invalid (steps 3 and 4).",
    )
    validation_success_threshold: float = Field(
        default=0.8,
        ge=0.0,
        le=1.0,
        description=(
            "Step 3 fails (and leaves the pair files untouched) when fewer than this share of the pairs "
            "are valid after repair."
        ),
    )
    quality_actions: dict[QualityFlag, QualityAction] = Field(
        default_factory=lambda: dict(DEFAULT_QUALITY_ACTIONS),
        description=(
            "What step 3's quality pass does with a pair per flag, as a JSON object flag -> drop, repair or "
            "keep; flags left out keep their default (bookkeeping_subject, unjoined_multi_table and "
            "duplicate_question: drop; missing_soft_delete_filter, listing_without_limit, select_star: "
            "repair; raw_identifier_in_question, summed_rate, detour_join: keep). "
            "See shared/quality_flags.py."
        ),
    )
    quality_unrepaired: Literal["drop", "keep"] = Field(
        default="drop",
        description=(
            "What step 3 does with a pair whose quality flag is set to repair when neither the LLM nor a "
            "mechanical fix removed the flag: drop it, or keep it and report the flag."
        ),
    )
    training_database_url: SecretStr | None = Field(
        default=None,
        description="PostgreSQL URL of the training-data store; unset: the pipeline database (DP_DATABASE_URL).",
    )
    training_schema: str = Field(default="dp_training", description="Schema of the training-data store.")
    training_backup: bool = Field(
        default=False,
        description="Step 4 snapshots the training table (CREATE TABLE ... AS) before it loads.",
    )

    @field_validator("quality_actions", mode="before")
    @classmethod
    def _quality_defaults(cls, value: Any) -> Any:
        # a partial object overrides only the flags it names
        return {**DEFAULT_QUALITY_ACTIONS, **value} if isinstance(value, dict) else value

    @field_validator("training_schema")
    @classmethod
    def _schema_is_identifier(cls, value: str) -> str:
        return schema_name(value)

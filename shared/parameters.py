"""The parameters a task runs with, as they travel in events and sit in the read model.

The business database password never appears here in clear text: `db_connection` holds the masked URL
for display and `db_connection_secret` the encrypted full URL (or None for a server-side named
connection, which is resolved from settings by the step runner).
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class TaskParameters(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    db_connection: str
    db_connection_secret: str | None = None
    db_connection_name: str | None = None
    table_list: list[str] | None = None
    table_list_file: str | None = None
    # Where the gateway took the table-list file from: "upload" or its path under DP_TABLE_LISTS_DIR.
    table_list_source: str | None = None
    business_context: str
    task_name: str | None = None
    db_name: str | None = None
    execution_mode: Literal["complete", "single"] = "complete"
    single_step: int | None = Field(default=None, ge=1, le=4)
    # A range of steps in complete mode (both default to the whole workflow); single mode is from = to.
    from_step: int | None = Field(default=None, ge=1, le=4)
    to_step: int | None = Field(default=None, ge=1, le=4)
    enable_sql_validation: bool = True
    enable_llm_repair: bool = True
    modify_original_file: bool = True
    enable_training_data_load: bool = True
    theme_count: int | None = Field(default=None, ge=1, le=50)
    questions_per_theme: int | None = Field(default=None, ge=1, le=100)
    llm_repair_rounds: int | None = Field(default=None, ge=0, le=10)
    # The run's LLM token budget (prompt + completion, all steps); crossing it fails the step for good.
    max_llm_tokens: int | None = Field(default=None, ge=1)
    # The earlier implementation's create (a flat body): the task waits for POST /execute, uncounted
    # against the concurrency limit, instead of starting now (docs/api_gateway.md, "Earlier clients").
    wait_for_execute: bool = False
    # Step 4 of this run: copy the training rows of db_name to a file first / remove them before loading.
    backup_vector_tables: bool = False
    truncate_vector_tables: bool = False
    # An incremental run: the earlier task (same database) whose unchanged tables' documents and pairs
    # this run reuses; the gateway resolves "latest" to a task id at creation.
    incremental_from: str | None = None
    # Before step 4 the task waits as `awaiting_review` until a person approves the pairs to load.
    review_before_load: bool = False

    def public(self) -> dict[str, object]:
        """What responses show: everything but the encrypted secret."""
        return self.model_dump(exclude={"db_connection_secret"}, exclude_none=True)

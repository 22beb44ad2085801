"""Incremental runs (issue 12 part 2): the earlier task a run starts from, and GET /database/diff."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema

from services.api_gateway.schemas.names import NOT_BLANK_PATTERN
from services.api_gateway.schemas.responses import _Out
from shared.ids import TASK_ID_MAX_LEN, is_valid_task_id

BASE_TASK_PATTERN = r"^(?!.*\n)(latest|(task|manual)_[0-9]{8}_[0-9]{6}(_[a-z0-9]{1,10})?)$"


def _base_task(value: str) -> str:
    if value != "latest" and not is_valid_task_id(value):
        raise ValueError("must be `latest` or a task id (task_YYYYMMDD_HHMMSS_<suffix>)")
    return value


BaseTask = Annotated[
    str,
    AfterValidator(_base_task),
    WithJsonSchema({"type": "string", "pattern": BASE_TASK_PATTERN, "maxLength": TASK_ID_MAX_LEN}),
]

INCREMENTAL_FROM_DESCRIPTION = (
    "An incremental run: a previous task on the same database (or `latest`, the newest completed one). "
    "Tables whose fingerprint did not change reuse that task's documents and validated pairs; changed and "
    "new tables are generated again; rows of dropped tables that only this lineage loaded leave the "
    "training store. 400 when the task does not exist, ran on another database or has no schema catalog."
)


class SchemaDiffQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    db_connection: str = Field(
        min_length=1,
        max_length=2000,
        json_schema_extra={"pattern": NOT_BLANK_PATTERN},
        description="A configured connection's name (preferred: a URL in a query string may be logged "
        "by proxies) or a PostgreSQL URL.",
    )
    since_task: BaseTask = Field(
        default="latest",
        description="The task to compare with; `latest` (default): the newest completed one.",
    )


class TableCounts(_Out):
    unchanged: int
    changed: int
    new: int
    dropped: int


class SchemaDiff(_Out):
    since_task: str = Field(description="The task compared with (`latest` resolved).")
    db_connection: str = Field(description="The connection, password masked.")
    tables: TableCounts
    unchanged: list[str] = Field(description="schema.table, sorted")
    changed: list[str]
    new: list[str] = Field(
        description="Tables of the compared task's schemas created since it ran (it recorded the tables "
        "of its schemas; for a task that recorded none, every table it did not document counts as new)."
    )
    not_documented: list[str] = Field(
        description="Tables of those schemas that existed when the task ran and that it did not list."
    )
    dropped: list[str] = Field(description="Tables the compared task documented that are gone or unreadable.")
    unreadable: list[str] = Field(description="Tables that could not be read now (also in dropped).")
    llm_tokens_at_stake: int = Field(
        description="What the compared task's LLM descriptions of the unchanged tables cost: an estimate of "
        "the tokens an incremental run saves."
    )

"""Query strings: lax, because every value arrives as text."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    WithJsonSchema,
    field_validator,
)

from services.api_gateway.schemas.names import (
    LEVEL_PATTERN,
    AnyCaseLevel,
    spaced_alternatives,
)
from services.api_gateway.schemas.requests import BIGINT_MAX, STEP_SPELLINGS
from shared.task_log import TASK_LOG_STEPS
from shared.vocabulary import TASK_STATUSES


class _Query(BaseModel):
    model_config = ConfigDict(extra="ignore")


def _as_utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


# The seed's workflow wrote `running` where we say `in_progress`; its clients filter by it.
STATUS_ALIASES = {"running": "in_progress"}
_STATUS_WORDS = [*TASK_STATUSES, *STATUS_ALIASES]
# One status or several, comma-separated, spaces around each allowed; empty means none.
_STATUS_LIST_PATTERN = (
    f"^(?!.*\\n$)({spaced_alternatives(_STATUS_WORDS)}(,{spaced_alternatives(_STATUS_WORDS)})*)?$"
)


# A search text is one line: no control characters (the searched fields are joined by line breaks).
_ONE_LINE_PATTERN = "^[^\\x00-\\x1f\\x7f]*$"


MAX_WAIT_SECONDS = 60


class TaskDetailQuery(_Query):
    wait: float = Field(
        default=0,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds (at most 60) to wait, while the task is `pending` or `in_progress`, for it to"
        " settle (finish, or wait for a review) before answering; the answer comes as soon as it does."
        " 0 (the default) answers at once.",
    )


class TaskCreateQuery(_Query):
    wait: float | None = Field(
        default=None,
        ge=0,
        le=MAX_WAIT_SECONDS,
        description="Seconds (at most 60) the answer may wait for the task to be recorded (201) before it"
        " answers 202; the default is the server's DP_CREATE_VISIBILITY_TIMEOUT_SECONDS. 0 answers 202 as"
        " soon as the command is durable (a script submitting many tasks need not wait for each).",
    )


class TaskListQuery(_Query):
    limit: int = Field(default=50, ge=1, le=100, description="Page size (default 50, as the seed).")
    status: str | None = Field(
        default=None,
        description="One status or several, comma-separated; `running` (the seed's word) means `in_progress`.",
        json_schema_extra={"pattern": _STATUS_LIST_PATTERN},
    )
    created_by: str | None = Field(default=None, max_length=50)
    db_name: str | None = Field(default=None, max_length=100)
    search: str | None = Field(
        default=None,
        max_length=200,
        description="Text (case-insensitive) in the task id (a fragment is enough), task name, database"
        " name or business context; `%` and `_` are searched for literally.",
        json_schema_extra={"pattern": _ONE_LINE_PATTERN},
    )
    q: str | None = Field(
        default=None,
        max_length=200,
        description="The same search as `search` (the name the web UI and the logs' text filter use); with"
        " both, a task matches both texts.",
        json_schema_extra={"pattern": _ONE_LINE_PATTERN},
    )
    cursor: str | None = Field(default=None, max_length=500, description="next_cursor of the previous page.")
    offset: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="Skip this many tasks (the earlier implementation's paging; not with `cursor`). "
        "The keyset `cursor` is the recommended way: it neither skips nor repeats tasks created meanwhile.",
    )

    @field_validator("status")
    @classmethod
    def _statuses_known(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        known = set(TASK_STATUSES)
        parts = [STATUS_ALIASES.get(p.strip(), p.strip()) for p in value.split(",")]
        if not parts or any(p not in known for p in parts):
            raise ValueError(f"must be one or more of {sorted(known)} (or running), comma-separated")
        return ",".join(dict.fromkeys(parts))

    @field_validator("search", "q")
    @classmethod
    def _one_line(cls, value: str | None) -> str | None:
        if value is not None and any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise ValueError("must not contain control characters (line breaks, tabs)")
        return value

    @property
    def search_texts(self) -> tuple[str, ...]:
        """The texts a task must all contain: `search` and `q`, stripped, empty ones and repeats left out."""
        texts = ((self.search or "").strip(), (self.q or "").strip())
        return tuple(dict.fromkeys(t for t in texts if t))


class LogFilterQuery(_Query):
    """The log filters: the log route's, and all the whole-log download takes (GET .../logs/download)."""

    level: AnyCaseLevel | None = Field(default=None, description="Minimum level (any letter case).")
    step: (
        # Empty means every step, as an empty `status` does on the task list (the server always took it).
        Annotated[str, Field(max_length=50), WithJsonSchema({"enum": ["", *STEP_SPELLINGS, *TASK_LOG_STEPS]})]
        | None
    ) = Field(
        default=None,
        description="Step name or number (read case-insensitively), or a task-level line's name"
        " (workflow_start, workflow_complete, workflow_error, workflow_cancelled, system_check);"
        " empty: every step.",
    )
    q: str | None = Field(
        default=None, max_length=500, description="Text the message contains (case-insensitive)."
    )
    since: datetime | None = Field(
        default=None, description="From this time on; not after `until` (else 400)."
    )
    until: datetime | None = Field(default=None, description="Up to this time.")

    @field_validator("level", mode="before")
    @classmethod
    def _upper(cls, value: object) -> object:
        # Checked before upper-casing: "ınfo" (dotless i) upper-cases to INFO but is not a level.
        if isinstance(value, str) and re.search(LEVEL_PATTERN, value):
            return value.upper()
        return value

    @field_validator("since", "until")
    @classmethod
    def _utc(cls, value: datetime | None) -> datetime | None:
        return _as_utc(value)


class LogQuery(LogFilterQuery):
    limit: int = Field(default=100, ge=1, le=1000)
    cursor: str | None = Field(default=None, max_length=500)
    after: int | None = Field(
        default=None, ge=0, le=BIGINT_MAX, description="Only lines with a larger log id."
    )
    order: Literal["asc", "desc"] | None = Field(
        default=None,
        description="asc: oldest first; desc: newest first. Without order, cursor or after, a page is the "
        "newest `limit` lines in time order, and next_cursor continues with older lines.",
    )
    follow: bool = Field(
        default=False, description="Stream as server-sent events (also: Accept: text/event-stream)."
    )


class EventQuery(_Query):
    limit: int = Field(default=100, ge=1, le=1000)
    after: int | None = Field(
        default=None, ge=0, le=BIGINT_MAX, description="Only events with a larger sequence number."
    )
    cursor: str | None = Field(default=None, max_length=500)
    type: str | None = Field(default=None, max_length=500, description="Event types, comma-separated.")

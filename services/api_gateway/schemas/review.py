"""Requests and answers of review before load (routes/review.py)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr

from services.api_gateway.schemas.names import NOT_BLANK_PATTERN
from services.api_gateway.schemas.requests import _Body

PAIR_ID_PATTERN = "^[0-9a-f]{16}$"
MAX_QUESTION_CHARS = 2000
MAX_SQL_CHARS = 20_000


class PairListQuery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    status: Literal["pending", "approved", "rejected"] | None = Field(
        default=None, description="Only pairs with this review status."
    )
    verdict: Literal["valid", "invalid", "unchecked"] | None = Field(
        default=None,
        description="Only pairs with this validation verdict (invalid: step 3 found it failing).",
    )
    repaired: bool | None = Field(
        default=None, description="Only pairs step 3 repaired (true) or not (false)."
    )
    flagged: bool | None = Field(
        default=None,
        description="Only pairs step 3 kept with quality flags (true: see each pair's `quality`) or not"
        " (false).",
    )
    theme: str | None = Field(default=None, max_length=200, description="Only pairs of this business theme.")
    offset: int = Field(default=0, ge=0, le=1_000_000)
    limit: int = Field(default=50, ge=1, le=200)


class PairFilter(_Body):
    status: Literal["pending", "approved", "rejected"] | None = Field(
        default="pending", description="Review status to match (default pending: undecided pairs only)."
    )
    verdict: Literal["valid", "invalid", "unchecked"] | None = None
    repaired: bool | None = None
    flagged: bool | None = None
    theme: StrictStr | None = Field(default=None, max_length=200)


class PairDecisionRequest(_Body):
    decision: Literal["approve", "reject", "edit"] = Field(
        description="approve or reject the pair; edit changes its question and/or SQL (an edited SQL is "
        "checked by the SQL gate and EXPLAIN at once: the pair is approved when it passes, a 400 says why "
        "it does not)."
    )
    question: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_QUESTION_CHARS, pattern=NOT_BLANK_PATTERN
    )
    sql: StrictStr | None = Field(
        default=None, min_length=1, max_length=MAX_SQL_CHARS, pattern=NOT_BLANK_PATTERN
    )


class BulkDecisionRequest(_Body):
    decision: Literal["approve", "reject"]
    filter: PairFilter = Field(
        default_factory=PairFilter,
        description="Which pairs (default: every pending pair). Approving skips pairs whose SQL is invalid.",
    )


class _Out(BaseModel):
    pass


class SqlCheckOut(_Out):
    passes: bool
    error: str | None = None
    plan: list[str] = Field(default_factory=list, description="EXPLAIN's plan, one line per item.")
    columns: list[str] | None = None
    rows: list[list[str | None]] | None = Field(default=None, description="At most 5 rows (preview only).")


class QualityFlagOut(_Out):
    code: str = Field(description="The flag (shared/quality_flags.py), e.g. raw_identifier_in_question.")
    detail: str


class PairQualityOut(_Out):
    outcome: Literal["kept", "repaired"] = Field(
        description="kept: step 3 kept the pair with these flags; repaired: it fixed them (see repaired_from)."
    )
    flags: list[QualityFlagOut]


class ReviewPairOut(_Out):
    pair_id: str
    file: str
    index: int
    theme: str | None
    question: str
    sql: str
    verdict: Literal["valid", "invalid", "unchecked"]
    error: str | None
    repaired_from: str | None
    status: Literal["pending", "approved", "rejected"]
    original_question: str | None = None
    original_sql: str | None = None
    edited: bool = False
    reviewed_by: str | None = None
    reviewed_at: str | None = None
    quality: PairQualityOut | None = Field(
        default=None,
        description="What step 3's quality pass found on the pair (None: nothing, or its SQL was edited"
        " since).",
    )


class ReviewCounts(_Out):
    total: int
    approved: int
    rejected: int
    pending: int
    reviewed: int
    edited: int


class PairPage(_Out):
    task_id: str
    task_status: str
    pairs: list[ReviewPairOut]
    matched: int = Field(description="Pairs matching the filters (the page is a slice of them).")
    offset: int
    limit: int
    counts: ReviewCounts
    themes: list[str]


class PairDecided(_Out):
    task_id: str
    pair: ReviewPairOut
    sql_check: SqlCheckOut | None = None
    counts: ReviewCounts


class BulkDecided(_Out):
    task_id: str
    decision: Literal["approve", "reject"]
    matched: int
    decided: int
    skipped_invalid: int = Field(description="Pairs an approval skipped because their SQL is invalid.")
    counts: ReviewCounts


class PairPreview(_Out):
    task_id: str
    pair_id: str
    sql_check: SqlCheckOut


class ReviewCompletedOut(_Out):
    task_id: str
    command: str
    command_id: str
    approved: int
    rejected: int
    undecided: int
    edited: int
    pair_files: list[str]
    original_files: list[str]


class ReviewAbandonedOut(_Out):
    task_id: str
    command: str
    command_id: str
    final_status: Literal["cancelled"] = "cancelled"

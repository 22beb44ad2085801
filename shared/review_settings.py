"""The settings of review before load (parameter review_before_load), mixed into the gateway's and the
scheduler's settings (shared/settings.py) like their own fields: DP_REVIEW_TIMEOUT_DAYS,
DP_REVIEW_PREVIEW_ROWS."""

from __future__ import annotations

from pydantic import BaseModel, Field


class ReviewSchedulerSettings(BaseModel):
    review_timeout_days: float = Field(
        default=7.0,
        ge=0,
        description="A task awaiting review (review_before_load) longer than this is failed, with the reason,"
        " and nothing is loaded. 0: wait for ever. Fractions allowed.",
    )


class ReviewGatewaySettings(BaseModel):
    review_preview_rows: bool = Field(
        default=True,
        description="The review screen may run a pair's SQL with LIMIT 5 on the business database (read-only"
        " transaction, statement timeout) to show operators its first rows. false: the plan only, no rows.",
    )

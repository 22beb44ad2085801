"""The vocabulary of step 3's quality pass: the flags a question/SQL pair may get and what is done about
each (issue #13). The flags are judged in services/step_runner/pipeline/pair_quality.py; the actions are
set per flag by DP_QUALITY_ACTIONS (shared/pipeline_settings.py) and counted in the final report.

Defaults keep the training store clean:
- drop: `duplicate_question` (the first occurrence stays), `bookkeeping_subject` (a question about who
  created a row teaches nothing worth keeping, and no rewrite of the SQL alone makes it a business
  question), `unjoined_multi_table` (a cartesian product answers no question correctly);
- repair: `missing_soft_delete_filter` (add the live-rows condition), `listing_without_limit` (add LIMIT),
  `select_star` (name the columns); a pair whose repair fails is dropped (DP_QUALITY_UNREPAIRED);
- keep and report: `raw_identifier_in_question` (the repair path rewrites SQL, not questions; the pair's
  SQL is right, only its wording is stiff) and `summed_rate` (a sum of prices per unit, ratings or
  percentages: the question itself asks for the wrong thing, so no SQL rewrite fixes it, and a name can
  mislead (a `price` that holds a line's amount): reported for a reviewer, or dropped by
  DP_QUALITY_ACTIONS), and `detour_join` (a join through a table that only connects two related ones:
  the SQL runs and may be what the question meant, "orders shipped to a customer's addresses"; a
  reviewer decides, `repair` lets the LLM join them directly).
"""

from __future__ import annotations

from typing import Literal, get_args

QualityFlag = Literal[
    "bookkeeping_subject",
    "missing_soft_delete_filter",
    "unjoined_multi_table",
    "listing_without_limit",
    "select_star",
    "duplicate_question",
    "raw_identifier_in_question",
    "summed_rate",
    "detour_join",
]
QUALITY_FLAGS: tuple[QualityFlag, ...] = get_args(QualityFlag)
QualityAction = Literal["drop", "repair", "keep"]
QUALITY_ACTIONS: tuple[QualityAction, ...] = get_args(QualityAction)

DEFAULT_QUALITY_ACTIONS: dict[QualityFlag, QualityAction] = {
    "bookkeeping_subject": "drop",
    "missing_soft_delete_filter": "repair",
    "unjoined_multi_table": "drop",
    "listing_without_limit": "repair",
    "select_star": "repair",
    "duplicate_question": "drop",
    "raw_identifier_in_question": "keep",
    "summed_rate": "keep",
    "detour_join": "keep",
}

# The `error` a quality repair hands to `repair_sql` starts with this, so the repair prompt can say that
# the statement runs but must lose the flagged problem (rather than "this statement fails").
QUALITY_REASON_PREFIX = "quality flag "


def quality_reason(code: QualityFlag, detail: str) -> str:
    return f"{QUALITY_REASON_PREFIX}{code}: {detail}"

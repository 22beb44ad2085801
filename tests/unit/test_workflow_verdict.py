"""`dpctl workflow run`'s verdict and exit code from the steps' terminal events."""

from __future__ import annotations

from services.dpctl.workflow import EXIT_FAILED, EXIT_OK, EXIT_PARTIAL, _verdict
from services.step_runner.executors.base import VALIDATION_BELOW_THRESHOLD
from shared.events import StepFailed, StepSucceeded
from shared.steps import STEP_ORDER, StepName

DDL, QA, SQL = StepName.DDL_GENERATION, StepName.QA_GENERATION, StepName.SQL_VALIDATION


def _ok(step: StepName, **summary: object) -> StepSucceeded:
    return StepSucceeded(step=step, execution_id="e", summary=summary)


def test_all_completed() -> None:
    assert _verdict(list(STEP_ORDER), {DDL: _ok(DDL), QA: _ok(QA)}) == ("completed", None, EXIT_OK)


def test_validation_below_threshold_exits_3_by_its_code_not_its_wording() -> None:
    below = StepFailed(step=SQL, execution_id="e", error="too few valid", code=VALIDATION_BELOW_THRESHOLD)
    status, error, code = _verdict(list(STEP_ORDER), {DDL: _ok(DDL), QA: _ok(QA), SQL: below})
    assert (status, code) == ("partial_completed", EXIT_PARTIAL)
    assert error == "sql_validation failed: too few valid"
    # A failure that merely mentions a threshold is an ordinary failure.
    other = StepFailed(step=SQL, execution_id="e", error="connection threshold exceeded")
    assert _verdict(list(STEP_ORDER), {DDL: _ok(DDL), SQL: other})[2] == EXIT_FAILED


def test_first_step_failed_and_partial_summary() -> None:
    failed = StepFailed(step=DDL, execution_id="e", error="no table could be read")
    assert _verdict(list(STEP_ORDER), {DDL: failed}) == (
        "failed",
        "ddl_generation failed: no table could be read",
        EXIT_FAILED,
    )
    partial = _verdict(list(STEP_ORDER), {DDL: _ok(DDL, partial=True)})
    assert partial == ("partial_completed", "a step completed only in part", EXIT_PARTIAL)

"""The four workflow steps, their order and the files each one needs from the ones before."""

from __future__ import annotations

from pathlib import Path

# Their home is shared.vocabulary; re-exported because every step helper speaks in them.
from shared.vocabulary import STEP_ORDER as STEP_ORDER
from shared.vocabulary import StepName as StepName

# The earlier implementation used these names for the same steps; requests that use them still work.
LEGACY_STEP_NAMES: dict[str, StepName] = {
    "ddl_md_generation": StepName.DDL_GENERATION,
    "question_sql_generation": StepName.QA_GENERATION,
    "training_data_load": StepName.TRAINING_LOAD,
}


def step_number(step: StepName) -> int:
    return STEP_ORDER.index(step) + 1


def step_by_number(number: int) -> StepName:
    if not 1 <= number <= len(STEP_ORDER):
        raise ValueError(f"step number must be 1-{len(STEP_ORDER)}, got {number}")
    return STEP_ORDER[number - 1]


def parse_step(value: str | int) -> StepName:
    """Accept a step number, a step name, or one of the earlier implementation's names."""
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return step_by_number(int(value))
    name = value.strip().lower()
    if name in LEGACY_STEP_NAMES:
        return LEGACY_STEP_NAMES[name]
    return StepName(name)


def missing_inputs(step: StepName, task_dir: Path) -> list[str]:
    """What a step needs in the task directory that is not there (empty list: it can run)."""
    if step is StepName.DDL_GENERATION:
        return []
    has_ddl = any(task_dir.glob("*.ddl"))
    has_md = any(task_dir.glob("*_detail.md"))
    has_pairs = any(task_dir.glob("qs_*_pair.json"))
    missing: list[str] = []
    if step is StepName.QA_GENERATION:
        if not has_ddl:
            missing.append("*.ddl (run ddl_generation first)")
        if not has_md:
            missing.append("*_detail.md (run ddl_generation first)")
    elif step is StepName.SQL_VALIDATION:
        if not has_pairs:
            missing.append("qs_*_pair.json (run qa_generation first)")
    elif step is StepName.TRAINING_LOAD and not (has_ddl or has_md or has_pairs):
        missing.append("*.ddl, *_detail.md or qs_*_pair.json (run the earlier steps first)")
    return missing

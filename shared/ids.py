"""Task and execution identifiers, and the checks that keep them safe to use as directory names."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from shared.steps import StepName

TASK_ID_MAX_LEN = 32
TASK_ID_RE = re.compile(r"^(task|manual)_\d{8}_\d{6}(_[a-z0-9]{1,10})?$", re.ASCII)
_SUFFIX_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


def new_task_id(now: datetime, prefix: str = "task") -> str:
    """`task_YYYYMMDD_HHMMSS_<6 random chars>`: 27 characters, unique for many creates per second."""
    suffix = "".join(secrets.choice(_SUFFIX_ALPHABET) for _ in range(6))
    return f"{prefix}_{now.strftime('%Y%m%d_%H%M%S')}_{suffix}"


def is_valid_task_id(value: str) -> bool:
    return len(value) <= TASK_ID_MAX_LEN and TASK_ID_RE.fullmatch(value) is not None


def execution_id(task_id: str, step: StepName, now: datetime, attempt: int) -> str:
    base = f"{task_id}_step_{step.value}_exec_{now.strftime('%Y%m%d_%H%M%S')}"
    return base if attempt <= 1 else f"{base}_{attempt}"

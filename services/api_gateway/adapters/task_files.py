"""The task directories on the shared volume: where a client-named file may be read, and table lists written.

A file name from a client reaches the file system only after `is_safe_file_name` accepted it and the
resolved path was checked to sit directly inside `<data_root>/<task_id>/` (symlinks resolved), so
neither `..`, absolute paths, encoded separators nor links can reach anything else.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path

from shared.atomic_files import atomic_write_text
from shared.ids import is_valid_task_id

# Word characters (any script: table names become file names), dot, dash, space, parentheses.
_FILE_NAME = re.compile(r"^[\w][\w.\- ()+]{0,254}$")
DEFAULT_TABLE_LIST_FILE = "table_list.txt"
# The collector writes the task's log here (services/log_collector/adapters/task_files.py).
LOG_FILE = "data_pipeline.log"


def is_safe_file_name(name: str) -> bool:
    """A bare file name: no separators, no `..`, no leading dot, no control characters."""
    return (
        bool(_FILE_NAME.fullmatch(name))
        and ".." not in name
        and "/" not in name
        and "\\" not in name
        and not name.endswith((" ", "."))
    )


def task_dir(data_root: Path, task_id: str) -> Path:
    if not is_valid_task_id(task_id):
        raise ValueError("invalid task id")
    return data_root.resolve() / task_id


def resolve_task_file(data_root: Path, task_id: str, file_name: str) -> Path | None:
    """The regular file `file_name` directly inside the task's directory, or None (never says why)."""
    if not is_safe_file_name(file_name):
        return None
    base = task_dir(data_root, task_id)
    try:
        candidate = (base / file_name).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    if candidate.parent != base or not candidate.is_file():
        return None
    return candidate


# The `.txt` files the pipeline itself writes (services/step_runner: pipeline/task_files.py,
# pipeline/theme_metadata.py) and the collector's log; tests/unit/test_hardening_units.py keeps this
# in step with those modules.
PIPELINE_TEXT_FILES = frozenset(
    {"filename_mapping.txt", "metadata.txt", "db_query_decision_prompt.txt", LOG_FILE}
)


def table_list_target(parameters_file: object) -> str:
    """The file the task reads its table list from: its own `table_list_file` if that is a bare name."""
    if isinstance(parameters_file, str) and is_safe_file_name(parameters_file):
        return parameters_file
    return DEFAULT_TABLE_LIST_FILE


def table_list_name_problem(file_name: str, registered_outputs: Collection[str]) -> str | None:
    """Why the gateway must not write a table list to `file_name`, or None.

    A table list is `table_list.txt` or another `.txt` file that is neither one of the pipeline's own
    files nor a registered output, so an upload never overwrites what the pipeline produced
    (`schema_catalog.json`, a DDL, `metadata.txt`).
    """
    if not file_name.lower().endswith(".txt"):
        return "a table-list file must be named *.txt"
    if file_name == DEFAULT_TABLE_LIST_FILE:
        return None  # step 1 registers its copy of the table list under this name: same content kind
    if file_name.lower() in PIPELINE_TEXT_FILES or file_name in registered_outputs:
        return "the name is one of the pipeline's own output files"
    return None


def write_atomically(directory: Path, file_name: str, content: str) -> Path:
    """Write `content` to `directory/file_name` via a temporary file and rename (readers never see half)."""
    if not is_safe_file_name(file_name):
        raise ValueError("unsafe file name")
    target = directory / file_name
    atomic_write_text(target, content, mode=None)
    return target

"""The `qs_<db>_<timestamp>_pair.json` files of step 2: a JSON list of {"question", "sql"} objects.

Extra keys in a pair are kept when step 3 rewrites the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

PAIR_GLOB = "qs_*_pair.json"
BACKUP_SUFFIX = ".backup"


class PairFileError(ValueError):
    """A pair file is not a JSON list of objects with a question and an SQL string."""


def pair_files(task_dir: Path) -> list[Path]:
    return sorted(p for p in task_dir.glob(PAIR_GLOB) if p.is_file())


def load_pairs(path: Path) -> list[dict[str, Any]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PairFileError(f"{path.name}: not readable JSON ({exc})") from None
    if not isinstance(data, list):
        raise PairFileError(f"{path.name}: expected a JSON list of question/SQL pairs")
    for index, pair in enumerate(data):
        if not (
            isinstance(pair, dict)
            and isinstance(pair.get("question"), str)
            and isinstance(pair.get("sql"), str)
        ):
            raise PairFileError(f"{path.name}: item {index} is not an object with string question and sql")
    return data


def render_pairs(pairs: list[dict[str, Any]]) -> str:
    return json.dumps(pairs, ensure_ascii=False, indent=2) + "\n"

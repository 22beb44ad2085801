"""Names and readers of the files step 1 leaves in the task directory for the later steps."""

from __future__ import annotations

from pathlib import Path

from services.step_runner.pipeline.catalog import SchemaCatalog

TABLE_LIST_FILE = "table_list.txt"
MAPPING_FILE = "filename_mapping.txt"
CATALOG_FILE = "schema_catalog.json"


def read_mapping(task_dir: Path) -> dict[str, str]:
    """`filename_mapping.txt` as {schema.table: file stem}; empty when there is none."""
    path = task_dir / MAPPING_FILE
    if not path.is_file():
        return {}
    mapping: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#") or " -> " not in line:
            continue
        table, stem = (part.strip() for part in line.split(" -> ", 1))
        mapping[table] = stem
    return mapping


def load_catalog(task_dir: Path) -> SchemaCatalog | None:
    """The catalog step 1 wrote, or None when the directory has none (or it cannot be read)."""
    path = task_dir / CATALOG_FILE
    if not path.is_file():
        return None
    try:
        return SchemaCatalog.model_validate_json(path.read_text(encoding="utf-8"))
    except ValueError:
        return None

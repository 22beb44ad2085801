"""The SQL migration files of a folder (shared/migrations, shared/migrations/training), in version order."""

from __future__ import annotations

from importlib import resources
from importlib.abc import Traversable

PIPELINE = "shared.migrations"


def migration_files(folder: Traversable | None = None) -> list[tuple[int, str, str]]:
    """(version, file name, SQL) of every `NNNN_name.sql` directly in `folder` (default: the pipeline's)."""
    found = []
    for entry in (folder or resources.files(PIPELINE)).iterdir():
        if entry.name.endswith(".sql"):
            version = int(entry.name.split("_", 1)[0])
            found.append((version, entry.name, entry.read_text(encoding="utf-8")))
    return sorted(found)


def training_migrations() -> list[tuple[int, str, str]]:
    """The training-data store's own set, applied to its schema by shared.training_store.ensure_schema."""
    return migration_files(resources.files(PIPELINE).joinpath("training"))

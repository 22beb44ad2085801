"""Question/SQL candidates built from templates over the catalog's actual columns (offline provider).

Each template only fires when the columns it needs exist (a measure, a category, a time column, a
relation), so every statement references real columns. Rows hidden by a soft-delete column are filtered
out in every query that reads the table.
"""

from __future__ import annotations

from services.step_runner.offline.join_queries import JoinQueries
from services.step_runner.offline.table_queries import TableQueries


class QueryWriter(TableQueries, JoinQueries):
    """Every template: `for_table` (table_queries.py), `for_relation`, `for_bridge`, `for_path` (join_queries.py)."""

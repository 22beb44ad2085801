"""The NOTIFY channel on which the collector names the tasks it has just recorded, or whose status it has
just changed (issue 11).

The gateway LISTENs on it so `POST /tasks` answers as soon as its task is visible, and a waiting
`GET /tasks/{id}?wait=S` as soon as its task settles, instead of polling the read model. Several deployments and test runs share one PostgreSQL, so the channel is per schema. Both
sides derive it here: the gateway from its settings (`recorded_channel`), the collector in SQL from the
schema its connection writes to (`CHANNEL_SQL`, the same name: the search path starts with that schema).
"""

from __future__ import annotations

from shared.pipeline_settings import schema_name

PREFIX = "dp_tasks_recorded_"
# PostgreSQL truncates identifiers (channel names too) to 63 bytes; schema names are at most 41.
_MAX_IDENTIFIER = 63
CHANNEL_SQL = f"'{PREFIX}' || current_schema()"
# A notification's payload must stay under 8000 bytes; ids are joined by commas into chunks below this.
MAX_PAYLOAD = 7900
# More chunks than this in one flush (a rebuild, a burst): one empty payload instead, which wakes every
# waiter to look for itself.
MAX_CHUNKS = 8
PING = ""


def recorded_channel(schema: str) -> str:
    channel = PREFIX + schema_name(schema)
    assert len(channel.encode()) <= _MAX_IDENTIFIER, channel
    return channel


def payloads(task_ids: list[str]) -> list[str]:
    """The payloads naming `task_ids`: comma-separated chunks under MAX_PAYLOAD bytes, or one PING."""
    chunks: list[str] = []
    current: list[str] = []
    size = 0
    for task_id in task_ids:
        length = len(task_id.encode()) + (1 if current else 0)
        if current and size + length > MAX_PAYLOAD:
            chunks.append(",".join(current))
            current, size, length = [], 0, len(task_id.encode())
        current.append(task_id)
        size += length
    if current:
        chunks.append(",".join(current))
    if len(chunks) > MAX_CHUNKS or any(len(c.encode()) > MAX_PAYLOAD for c in chunks):
        return [PING]
    return chunks


def task_ids(payload: str) -> list[str] | None:
    """The ids a payload names; None for a PING (every waiter should look)."""
    return payload.split(",") if payload else None

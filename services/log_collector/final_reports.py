"""The result a finished task's row holds: its final report, made from its events when the batch that
finishes it is flushed (services/log_collector/unit_of_work.py, `LaterReport`)."""

from __future__ import annotations

import json
from typing import Any

import asyncpg

from shared.event_store import tasks_events
from shared.final_report import REPORT_EVENT_TYPES, final_report
from shared.messages import EventEnvelope
from shared.secrets import mask_secrets


async def final_reports(conn: asyncpg.Connection, through: dict[str, int]) -> dict[str, Any]:
    """Each task's final report from its events up to `through[task]`, secrets masked, in one query."""
    events: dict[str, list[EventEnvelope]] = {t: [] for t in through}
    for seq, env in await tasks_events(conn, list(through), REPORT_EVENT_TYPES):
        if seq <= through[env.task_id]:
            events[env.task_id].append(env)
    return {t: json.loads(mask_secrets(json.dumps(final_report(e), default=str))) for t, e in events.items()}

"""A PostgreSQL checkpoint before a timed run, so that the run does not inherit the one a bench before it
started (docs/scaling.md, "The eleventh session").

bench_collector writes half a gigabyte of WAL in seconds: PostgreSQL then checkpoints every few seconds
("checkpoints are occurring too frequently"), spreading each one's writes over up to minutes, and a run
that starts meanwhile shares the disk with that backlog (the collector's lag p99 at 5,000 events/s
104-122 ms in it, 88-92 ms after a CHECKPOINT, which finishes it at once).
"""

from __future__ import annotations

import asyncpg


async def checkpoint(database_url: str) -> bool:
    """Run CHECKPOINT; False when this role may not (it needs superuser or pg_checkpoint)."""
    conn = await asyncpg.connect(database_url)
    try:
        await conn.execute("CHECKPOINT")
    except asyncpg.InsufficientPrivilegeError:
        return False
    finally:
        await conn.close()
    return True

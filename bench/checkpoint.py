"""A PostgreSQL checkpoint before a timed run, so that the run does not inherit the one a bench before it
started (docs/scaling.md, "The eleventh session").

bench_collector writes half a gigabyte of WAL in seconds: PostgreSQL then checkpoints every few seconds
("checkpoints are occurring too frequently"), spreading each one's writes over the next minute, and a
run that starts meanwhile measures that backlog's I/O, not itself. `CHECKPOINT` finishes it at once.
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

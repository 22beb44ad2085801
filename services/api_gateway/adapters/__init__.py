"""The gateway's edges: PostgreSQL read models (asyncpg), the broker (aio-pika), the task directories."""

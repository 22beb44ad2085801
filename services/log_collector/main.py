"""`python -m services.log_collector.main [rebuild]`: consume events, or rebuild the read models."""

from __future__ import annotations

import argparse
import asyncio

from services.log_collector.bootstrap import running_collector
from services.log_collector.rebuild import rebuild_read_models
from shared.db import pool_context
from shared.health import health_server
from shared.logging import configure_logging, get_logger
from shared.service import run_service, wait_for_stop_signal
from shared.settings import CollectorSettings
from shared.settings_loading import load_settings


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="dp-log-collector")
    parser.add_argument("command", nargs="?", choices=["serve", "rebuild"], default="serve")
    args = parser.parse_args(argv)
    settings = load_settings(CollectorSettings, "dp-log-collector")
    configure_logging(settings, service="log_collector")
    log = get_logger()

    if args.command == "rebuild":

        async def rebuild() -> None:
            async with pool_context(settings, max_size=1) as pool:
                count = await rebuild_read_models(pool)
            log.info("read models rebuilt from the event store", events=count)

        asyncio.run(rebuild())
        return

    async def serve() -> None:
        async with running_collector(settings) as collector:

            async def ready() -> dict[str, bool]:
                channel = collector.channel
                try:
                    async with collector.pool.acquire() as conn:
                        db_ok = await conn.fetchval("SELECT 1") == 1
                except Exception:
                    db_ok = False
                return {"broker": channel is not None and not channel.is_closed, "database": db_ok}

            async with health_server(
                "log_collector", settings.health_port, ready, collector.metrics.registry
            ):
                await wait_for_stop_signal()

    run_service(serve)


if __name__ == "__main__":
    main()

"""`python -m services.scheduler.main`: run the scheduler until SIGTERM."""

from __future__ import annotations

from services.scheduler.bootstrap import running_scheduler
from shared.health import health_server
from shared.logging import configure_logging
from shared.service import run_service, wait_for_stop_signal
from shared.settings import SchedulerSettings
from shared.settings_loading import load_settings


def main() -> None:
    settings = load_settings(SchedulerSettings, "dp-scheduler")
    configure_logging(settings, service="scheduler")

    async def serve() -> None:
        async with running_scheduler(settings) as scheduler:

            async def ready() -> dict[str, bool]:
                return {"broker": scheduler.queues.attached()}

            async with health_server("scheduler", settings.health_port, ready, scheduler.metrics.registry):
                await wait_for_stop_signal()

    run_service(serve)


if __name__ == "__main__":
    main()

"""`python -m services.step_runner.main`: run step executions until SIGTERM."""

from __future__ import annotations

from services.step_runner.bootstrap import running_runner
from shared.health import health_server
from shared.logging import configure_logging
from shared.service import run_service, wait_for_stop_signal
from shared.settings import RunnerSettings
from shared.settings_loading import load_settings


def main() -> None:
    settings = load_settings(RunnerSettings, "dp-step-runner")
    configure_logging(settings, service="step_runner")

    async def serve() -> None:
        async with running_runner(settings) as runner:

            async def ready() -> dict[str, bool]:
                return {"broker": runner.channel is not None and not runner.channel.is_closed}

            async with health_server("step_runner", settings.health_port, ready, runner.metrics.registry):
                await wait_for_stop_signal()

    run_service(serve)


if __name__ == "__main__":
    main()

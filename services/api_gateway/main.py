"""`dp-gateway`: read settings, configure logging, serve the app until SIGTERM/SIGINT."""

from __future__ import annotations

from aiohttp import web

from services.api_gateway.bootstrap import create_app
from services.api_gateway.connections import policy_warnings
from shared.embeddings import EmbeddingSettings
from shared.logging import configure_logging, get_logger
from shared.pipeline_settings import PipelineSettings
from shared.service import listen, run_service, wait_for_stop_signal
from shared.settings import GatewaySettings
from shared.settings_loading import load_settings

SHUTDOWN_GRACE_SECONDS = 10.0


def main() -> None:
    settings = load_settings(GatewaySettings, "dp-gateway")
    embedding = load_settings(EmbeddingSettings, "dp-gateway")
    pipeline = load_settings(PipelineSettings, "dp-gateway")
    configure_logging(settings, service="api_gateway")
    log = get_logger()
    log.info("starting", host=settings.http_host, port=settings.http_port, schema=settings.db_schema)
    if not settings.api_tokens:
        # Settings allow this beyond loopback only with DP_ALLOW_INSECURE=1: say so on every start.
        log.warning(
            "authentication is off: every caller is admin",
            host=settings.http_host,
            insecure_opt_in=settings.allow_insecure,
        )
    for warning in policy_warnings(settings, settings.http_host):
        log.warning(warning, host=settings.http_host)
    app = create_app(settings, embedding_settings=embedding, pipeline_settings=pipeline)

    async def serve() -> None:
        # Not run_app: its signal handling let a second signal strand its shutdown. Stopping the runner
        # stops accepting, runs on_shutdown (streams and waiting reads end), waits for the requests in
        # flight up to the grace, then the cleanup_ctx contexts in reverse.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=SHUTDOWN_GRACE_SECONDS)
        try:
            await runner.setup()  # the cleanup_ctx contexts entered before one failed are exited below
            await listen(runner, settings.http_host, settings.http_port, "DP_HTTP_PORT")
            await wait_for_stop_signal()
        finally:
            await runner.cleanup()

    run_service(serve)


if __name__ == "__main__":
    main()

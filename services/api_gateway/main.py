"""`dp-gateway`: read settings, configure logging, serve the app until SIGTERM/SIGINT."""

from __future__ import annotations

from aiohttp import web

from services.api_gateway.bootstrap import create_app
from services.api_gateway.connections import policy_warnings
from shared.embeddings import EmbeddingSettings
from shared.logging import configure_logging, get_logger
from shared.pipeline_settings import PipelineSettings
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
    # run_app handles SIGINT/SIGTERM: stop accepting, on_shutdown (streams end), wait, cleanup_ctx in reverse.
    web.run_app(
        app,
        host=settings.http_host,
        port=settings.http_port,
        shutdown_timeout=SHUTDOWN_GRACE_SECONDS,
        access_log=None,
        print=None,
        handle_signals=True,
    )
    log.info("stopped")


if __name__ == "__main__":
    main()

"""The one place that builds the gateway: `create_app(settings)` returns the aiohttp Application.

Nothing is connected at import or construction time: the secret key, the database pool, the broker
connection and the optional training-data dependencies are opened in `cleanup_ctx` contexts when the
app starts and closed in reverse order when it stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from services.api_gateway import earlier_clients
from services.api_gateway.adapters.accepted import PRUNER, Pruner
from services.api_gateway.adapters.broker import GatewayBroker
from services.api_gateway.adapters.recorded import LISTENER, listener_context
from services.api_gateway.auth import auth_middleware
from services.api_gateway.errors import error_middleware
from services.api_gateway.hardening import add_security_headers, origin_middleware
from services.api_gateway.keys import BROKER, EXTRAS, METRICS, POOL, ROUTES, SECRET_BOX, SETTINGS
from services.api_gateway.metrics import HttpMetrics, metrics_middleware
from services.api_gateway.routes import (
    commands,
    database,
    database_tools,
    files,
    health,
    log_download,
    logs,
    output_uploads,
    queries,
    review,
    schema_diff,
    system,
    table_list,
    task_stream,
    tasks,
    training_data,
    ui,
)
from services.api_gateway.spec import RouteSpec, method_not_allowed, shadowed_methods
from services.step_runner.pipeline.introspect import IntrospectionOptions
from shared.broker import Publisher, Topology, connect_at_start, declare_topology, open_channel
from shared.db import pool_context
from shared.embeddings import EmbeddingSettings, create_embedder
from shared.pipeline_settings import PipelineSettings
from shared.secrets import SecretBox, load_or_create_key
from shared.settings import GatewaySettings

PRODUCER = "api_gateway"


def all_routes() -> list[RouteSpec]:
    # Fixed paths before parameterised ones (/tasks/active before /tasks/{task_id}).
    return [
        *queries.ROUTES,  # POST /tasks/query before the /tasks/{task_id} paths
        *tasks.ROUTES,
        *commands.ROUTES,
        *logs.ROUTES,
        *log_download.ROUTES,
        *task_stream.ROUTES,
        *files.ROUTES,
        *output_uploads.ROUTES,
        *table_list.ROUTES,
        *review.ROUTES,
        *earlier_clients.ROUTES,
        *database.ROUTES,
        *schema_diff.ROUTES,
        *database_tools.ROUTES,
        *training_data.ROUTES,
        *health.ROUTES,
        *system.ROUTES,
        *ui.ROUTES,
    ]


async def _secrets(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    app[SECRET_BOX] = SecretBox(load_or_create_key(key, settings.data_root))
    yield


async def _database(app: web.Application) -> AsyncIterator[None]:
    async with pool_context(app[SETTINGS], starting=True) as pool:
        app[POOL] = pool
        yield


async def _broker(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    topology = Topology(settings.broker_prefix, settings.collector_partitions)
    connection = await connect_at_start(settings, "api_gateway")
    try:
        channel = await open_channel(connection, prefetch=1)
        exchanges = await declare_topology(channel, topology)
        app[BROKER] = GatewayBroker(
            connection=connection,
            channel=channel,
            publisher=Publisher(exchanges, PRODUCER),
            topology=topology,
            publish_timeout=settings.publish_timeout_seconds,
        )
        yield
    finally:
        await connection.close()


def _training_context(embedding: EmbeddingSettings | None, pipeline: PipelineSettings | None) -> Any:
    async def context(app: web.Application) -> AsyncIterator[None]:
        emb = embedding or EmbeddingSettings()
        pipe = pipeline or PipelineSettings()
        embedder = create_embedder(emb)
        own_pool: asyncpg.Pool | None = None
        if pipe.training_database_url is not None:
            own_pool = await asyncpg.create_pool(
                pipe.training_database_url.get_secret_value(), min_size=0, max_size=4, command_timeout=30
            )
        app[EXTRAS] = {
            "embedder": embedder,
            "training_pool": own_pool or app[POOL],
            "training_schema": pipe.training_schema,
            "pipeline": pipe,
            schema_diff.INTROSPECTION: IntrospectionOptions.from_settings(pipe),
        }
        try:
            yield
        finally:
            await embedder.aclose()
            if own_pool is not None:
                await own_pool.close()

    return context


async def _end_long_requests(app: web.Application) -> None:
    """On shutdown, tell open event streams to finish and waiting requests to answer now, so the server
    does not wait on them."""
    if BROKER in app:
        app[BROKER].close_streams()
    if LISTENER in app:
        app[LISTENER].stop_waiting()


def create_app(
    settings: GatewaySettings,
    *,
    embedding_settings: EmbeddingSettings | None = None,
    pipeline_settings: PipelineSettings | None = None,
) -> web.Application:
    metrics = HttpMetrics()
    app = web.Application(
        client_max_size=settings.max_body_bytes,
        middlewares=[
            metrics_middleware(metrics),
            error_middleware,
            origin_middleware(settings.public_base_url),
            auth_middleware(settings.api_tokens),
        ],
    )
    routes = all_routes()
    app[SETTINGS] = settings
    app[METRICS] = metrics
    app[ROUTES] = routes
    app[PRUNER] = Pruner()
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler, name=route.operation_id)
    for path, (allowed, shadowed) in shadowed_methods(routes).items():
        for method in shadowed:
            app.router.add_route(method, path, method_not_allowed(allowed))
    app.cleanup_ctx.extend(
        [
            _secrets,
            _database,
            listener_context,  # POST /tasks is woken when its task is recorded
            _broker,
            _training_context(embedding_settings, pipeline_settings),
        ]
    )
    app.on_shutdown.append(_end_long_requests)
    app.on_response_prepare.append(add_security_headers)
    return app

"""The training-data store as the UI sees it: semantic search and counts (issue 3).

The question is embedded with the same embedder the training_load step uses (shared.embeddings), then
`shared.training_search.search` ranks stored rows by cosine similarity.
"""

from __future__ import annotations

import asyncpg
from aiohttp import web

from services.api_gateway.envelope import ok
from services.api_gateway.errors import InvalidParams, ServiceUnavailable
from services.api_gateway.keys import EXTRAS
from services.api_gateway.schemas.requests import TrainingSearchRequest
from services.api_gateway.schemas.responses import TrainingSearch, TrainingStats
from services.api_gateway.spec import TRAINING_DATA, RouteSpec
from services.api_gateway.validation import parse_model, read_json_object
from shared import training_search, training_stats, training_store
from shared.embeddings import EmbeddingError
from shared.secrets import mask_secrets


async def search_training_data(request: web.Request) -> web.Response:
    req = parse_model(TrainingSearchRequest, await read_json_object(request))
    if req.kinds is not None:
        unknown = sorted(set(req.kinds) - set(training_store.KINDS))
        if unknown:
            raise InvalidParams(
                f"unknown kinds {unknown}; known: {list(training_store.KINDS)}", invalid=["kinds"]
            )
    extras = request.app[EXTRAS]
    try:
        [vector] = await extras["embedder"].embed([req.question])
    except EmbeddingError as exc:
        raise ServiceUnavailable(f"cannot embed the question: {mask_secrets(str(exc))}") from None
    try:
        async with extras["training_pool"].acquire() as conn:
            by_kind = await training_search.search(
                conn, extras["training_schema"], vector, req.limit, req.kinds
            )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        by_kind = {kind: [] for kind in (req.kinds or training_store.KINDS)}  # nothing loaded yet
    results = [{**row, "kind": kind} for kind, rows in by_kind.items() for row in rows]
    results.sort(key=lambda r: r.get("score", 0.0), reverse=True)
    data = TrainingSearch(results=results, total=len(results), by_kind=by_kind)
    return ok(f"{len(results)} results", data.model_dump(mode="json"))


async def training_data_stats(request: web.Request) -> web.Response:
    extras = request.app[EXTRAS]
    async with extras["training_pool"].acquire() as conn:
        stats = await training_stats.stats(conn, extras["training_schema"])
    return ok("training data statistics", TrainingStats(stats=stats).model_dump(mode="json"))


ROUTES = [
    RouteSpec(
        "POST",
        f"{TRAINING_DATA}/search",
        search_training_data,
        "Search the training data by meaning",
        "training_data",
        body=TrainingSearchRequest,
        response=TrainingSearch,
        errors=(400, 401, 415, 503),
        role="viewer",
        rate_limited=True,
    ),
    RouteSpec(
        "GET",
        f"{TRAINING_DATA}/stats",
        training_data_stats,
        "Training-data counts",
        "training_data",
        response=TrainingStats,
        errors=(401, 503),
        role="viewer",
    ),
]

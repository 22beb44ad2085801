"""The typed keys under which bootstrap stores the app's dependencies."""

from __future__ import annotations

from typing import Any

import asyncpg
from aiohttp import web

from services.api_gateway.adapters.broker import GatewayBroker
from services.api_gateway.metrics import HttpMetrics
from services.api_gateway.spec import RouteSpec
from shared.secrets import SecretBox
from shared.settings import GatewaySettings

SETTINGS = web.AppKey("settings", GatewaySettings)
POOL = web.AppKey("pool", asyncpg.Pool)
BROKER = web.AppKey("broker", GatewayBroker)
SECRET_BOX = web.AppKey("secret_box", SecretBox)
METRICS = web.AppKey("metrics", HttpMetrics)
ROUTES = web.AppKey("routes", list[RouteSpec])
# Optional libraries (training-data search, business database listing): None when not installed.
EMBEDDER = web.AppKey("embedder", object)
EXTRAS = web.AppKey("extras", dict[str, Any])

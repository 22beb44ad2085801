"""Finding 12: unbounded costs. Each event stream held a RabbitMQ channel and queue with no cap
(2,047 channels per connection is the broker's wall), and expensive routes had no rate limit.

A gateway with small caps joins the composed stack. On the previous main every stream opened and every
request ran (no 503, no 429).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest

from tests.e2e.conftest import DB_URL
from tests.security.test_authz import _wait_ready
from tests.support.api import BASE, Api
from tests.support.eventually import eventually
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e

TOKENS = {
    "alice": "alice-token-0123456789abcdefghijk",
    "bob": "bob-token-0123456789abcdefghijklmn",
    "carol": "carol-token-0123456789abcdefghijk",
}


@pytest.fixture(scope="module")
def capped_gateway(stack: Stack) -> Iterator[str]:
    port = free_port()
    stack.start(
        "gateway-capped",
        kind="gateway",
        extra_env={
            "DP_HTTP_PORT": str(port),
            "DP_API_TOKENS": json.dumps(
                [{"token": token, "role": "operator", "name": name} for name, token in TOKENS.items()]
            ),
            "DP_SSE_MAX_STREAMS_TOTAL": "3",
            "DP_SSE_MAX_STREAMS_PER_CLIENT": "2",
            "DP_RATE_LIMIT_PER_MINUTE": "6",
            "DP_RATE_LIMIT_BURST": "5",
            # A stream whose client left is noticed at the next keep-alive.
            "DP_SSE_KEEPALIVE_SECONDS": "0.3",
        },
    )
    url = f"http://127.0.0.1:{port}"
    asyncio.run(_wait_ready(url, stack))
    yield url
    stack.stop("gateway-capped")


@pytest.fixture
async def sessions(capped_gateway: str) -> AsyncIterator[dict[str, aiohttp.ClientSession]]:
    opened = {
        name: aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"})
        for name, token in TOKENS.items()
    }
    try:
        yield opened
    finally:
        for session in opened.values():
            await session.close()


async def test_event_streams_are_capped_per_client_and_in_total(
    capped_gateway: str, sessions: dict[str, aiohttp.ClientSession]
) -> None:
    alice = Api(sessions["alice"], capped_gateway)
    task_id = await alice.create(DB_URL, business_context="sleep:ddl_generation=30")
    url = f"{capped_gateway}{BASE}/tasks/{task_id}/stream"
    held: list[aiohttp.ClientResponse] = []
    try:
        for _ in range(2):
            resp = await sessions["alice"].get(url)
            assert resp.status == 200 and resp.content_type == "text/event-stream"
            held.append(resp)
        # Alice's third stream: past the per-client cap.
        async with sessions["alice"].get(url) as resp:
            body = await resp.json()
            assert resp.status == 503, body
            assert body["data"]["error_type"] == "service_unavailable"
            assert int(resp.headers["Retry-After"]) > 0
            assert "open event streams" in body["data"]["response"]
        # Following logs is a stream too (same broker cost, same cap).
        async with sessions["alice"].get(f"{capped_gateway}{BASE}/tasks/{task_id}/logs?follow=true") as resp:
            assert resp.status == 503, await resp.text()
        # Bob's first fits the total (3); his second is past it.
        resp = await sessions["bob"].get(url)
        assert resp.status == 200
        held.append(resp)
        async with sessions["bob"].get(url) as resp:
            assert resp.status == 503 and "Retry-After" in resp.headers
        # A stream whose client leaves gives its slot back (seen at its next keep-alive).
        held.pop(0).close()
        await _open_streams_drop_to(alice, 2)

        async def reopened() -> aiohttp.ClientResponse | None:
            resp = await sessions["alice"].get(url)
            if resp.status == 200:
                return resp
            resp.close()  # the slot is released just after the gauge drops
            return None

        held.append(await eventually(reopened, timeout=10, what="alice's stream slot given back"))
    finally:
        for resp in held:
            resp.close()
        await alice.call("POST", f"{BASE}/tasks/{task_id}/cancel", json={})


async def _open_streams_drop_to(api: Api, count: int, timeout: float = 10) -> None:
    async def dropped() -> bool:
        _, body = await api.call("GET", "/metrics")
        assert f"dp_gateway_open_streams {float(count)}" in body["raw"], body["raw"][-2000:]
        return True

    await eventually(dropped, timeout=timeout, what=f"{count} open streams")


async def test_expensive_routes_are_rate_limited_per_token(
    capped_gateway: str, sessions: dict[str, aiohttp.ClientSession]
) -> None:
    carol = Api(sessions["carol"], capped_gateway)
    statuses = []
    for _ in range(6):
        status, body = await carol.call("POST", f"{BASE}/database/tables", json={})
        statuses.append(status)
    assert statuses[:5] == [400] * 5, statuses  # the burst: each runs (and is refused for its body)
    async with sessions["carol"].post(f"{capped_gateway}{BASE}/database/tables", json={}) as resp:
        body = await resp.json()
        assert resp.status == 429, body
        assert body["data"]["error_type"] == "too_many_requests"
        assert 1 <= int(resp.headers["Retry-After"]) <= 12  # 6 a minute: one every 10 s
    # Per token: Bob still has his whole burst; cheap routes are not charged.
    bob = Api(sessions["bob"], capped_gateway)
    status, _ = await bob.call("POST", f"{BASE}/database/tables", json={})
    assert status == 400
    for _ in range(8):
        status, _ = await carol.call("GET", f"{BASE}/tasks?limit=1")
        assert status == 200

"""The contract tier: schemathesis against the live OpenAPI document of a real stack.

The stack reuses the e2e tier's settings (`stack_env`: scripted executors, fast heartbeats) but runs
in its own pipeline schema, broker prefix and task directory root: schemathesis creates, executes,
cancels and deletes hundreds of tasks with generated bodies, and none of them may queue up in front
of (or be listed by) the other tiers' tests. Two gateways serve the same services: one with auth off
and one with bearer tokens.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.support.composed_stack import _wait_ready
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

CONTRACT_TOKEN = f"contract-{uuid.uuid4().hex}"


@dataclass(frozen=True)
class Gateway:
    name: str  # its process in the Stack (for its log)
    url: str
    token: str | None


@dataclass(frozen=True)
class ContractStack:
    stack: Stack
    open: Gateway
    authed: Gateway


@pytest.fixture(scope="module")
def contract_env(
    stack_env: dict[str, str],
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> dict[str, str]:
    key = f"{run_id}_{uuid.uuid4().hex[:4]}"
    return {
        **stack_env,
        "DP_DB_SCHEMA": f"dpc_{key}",
        "DP_BROKER_PREFIX": f"dpc.{key}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("contract-tasks")),
        "DP_HTTP_HOST": "127.0.0.1",
        "DP_HTTP_PORT": str(free_port()),
        "DP_MAX_CONCURRENT_TASKS": "4",
        "DP_LOG_LEVEL": "WARNING",
        # The open gateway lets the run reach the logic behind expensive routes; the authenticated one
        # (defaults, set in `contract_stack`) answers many of them 429, which must conform too.
        "DP_RATE_LIMIT_PER_MINUTE": "100000",
        "DP_RATE_LIMIT_BURST": "10000",
    }


@pytest.fixture(scope="module")
def contract_stack(
    contract_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ContractStack]:
    authed_port = str(free_port())
    with own_stack(contract_env, tmp_path_factory.mktemp("contract-logs")) as stack:
        stack.start("collector")
        stack.start("scheduler")
        stack.start("runner", extra_env={"DP_RUNNER_ID": "contract-runner"})
        stack.start("gateway")
        # The old form of DP_API_TOKENS (a JSON list of strings) stays accepted.
        stack.start(
            "gateway-auth",
            kind="gateway",
            extra_env={
                "DP_HTTP_PORT": authed_port,
                "DP_API_TOKENS": json.dumps([CONTRACT_TOKEN]),
                "DP_RATE_LIMIT_PER_MINUTE": "60",
                "DP_RATE_LIMIT_BURST": "20",
            },
        )
        open_url = f"http://127.0.0.1:{contract_env['DP_HTTP_PORT']}"
        authed_url = f"http://127.0.0.1:{authed_port}"
        asyncio.run(_wait_ready(open_url, stack))
        asyncio.run(_wait_ready(authed_url, stack))
        yield ContractStack(
            stack, Gateway("gateway", open_url, None), Gateway("gateway-auth", authed_url, CONTRACT_TOKEN)
        )

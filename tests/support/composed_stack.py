"""The composed services, started once per session, with executors scripted by the tests.

A pytest plugin (registered in tests/conftest.py), so the e2e, security and contract tiers share ONE
definition of these session fixtures and so one stack: importing fixtures into several conftest files
would define them once per file and start a second stack on the same schema and broker prefix.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from shared.broker import Topology
from shared.settings import CommonSettings
from tests.support.api import Api
from tests.support.eventually import eventually
from tests.support.stack import Stack, free_port

SECRET = "S3cr3t-Pw!x"
DB_URL = f"postgresql://pipeline_user:{SECRET}@127.0.0.1:5432/business"


@pytest.fixture(scope="session")
def stack_env(test_env: dict[str, str]) -> dict[str, str]:
    return {
        **test_env,
        "DP_HTTP_PORT": str(free_port()),
        "DP_SCHEDULER_HEALTH_PORT": str(free_port()),  # for the standby replica only (not a service setting)
        "DP_EXECUTOR_REGISTRY": "tests.support.fake_executors:registry",
        "DP_HEARTBEAT_INTERVAL_SECONDS": "0.5",
        "DP_HEARTBEAT_TIMEOUT_SECONDS": "3",
        "DP_TICK_INTERVAL_SECONDS": "0.5",
        "DP_RETRY_BASE_DELAY_SECONDS": "0.3",
        "DP_RETRY_MAX_DELAY_SECONDS": "2",
        "DP_CANCEL_GRACE_SECONDS": "5",
        "DP_SHUTDOWN_GRACE_SECONDS": "2",
        "DP_MAX_CONCURRENT_TASKS": "1",
        "DP_COLLECTOR_FLUSH_MS": "20",
        "DP_LOG_LEVEL": "INFO",
    }


@pytest.fixture(scope="session")
def stack(
    stack_env: dict[str, str],
    migrated: CommonSettings,
    broker_cleanup: Topology,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Stack]:
    stack = Stack(stack_env, tmp_path_factory.mktemp("service-logs"))
    stack.start("collector")
    stack.start("scheduler")
    stack.start(
        "scheduler-standby",
        kind="scheduler",
        extra_env={"DP_HEALTH_PORT": stack_env["DP_SCHEDULER_HEALTH_PORT"]},
    )
    stack.start("runner-a", kind="runner", extra_env={"DP_RUNNER_ID": "runner-a"})
    stack.start("runner-b", kind="runner", extra_env={"DP_RUNNER_ID": "runner-b"})
    stack.start("gateway")
    asyncio.run(_wait_ready(f"http://127.0.0.1:{stack_env['DP_HTTP_PORT']}", stack))
    yield stack
    stack.stop_all()


async def _wait_ready(url: str, stack: Stack, timeout: float = 60, name: str = "gateway") -> None:
    """Until the gateway at `url` answers /readyz with 200; on time-out, the log of `stack`'s `name`."""
    last = ""
    async with aiohttp.ClientSession() as session:

        async def ready() -> bool:
            nonlocal last
            async with session.get(f"{url}/readyz") as resp:
                last = await resp.text()
                return resp.status == 200

        try:
            await eventually(ready, timeout=timeout, interval=0.2, retry_on=(aiohttp.ClientError,))
        except AssertionError as exc:
            raise AssertionError(
                f"gateway not ready ({exc}); last /readyz: {last[:1000]}\n" + stack.logs(name)[-3000:]
            ) from None


@pytest.fixture
async def api(stack: Stack, stack_env: dict[str, str]) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(session, f"http://127.0.0.1:{stack_env['DP_HTTP_PORT']}")


@pytest.fixture
def data_dir(stack_env: dict[str, str]) -> Path:
    return Path(stack_env["DP_DATA_ROOT"])

"""A service's process from start to exit: a second stop signal during its shutdown (Ctrl-C reaches every
process, then a supervisor's SIGTERM) is ignored, so it still finishes its graceful shutdown and exits 0,
promptly; a port it cannot listen on, or a dependency still unreachable when its start-up wait runs out,
is one clear log line and exit status 1."""

from __future__ import annotations

import asyncio
import signal
import socket
import subprocess
from collections.abc import Iterator

import aiohttp
import pytest

from tests.support.eventually import eventually
from tests.support.run_state import own_stack
from tests.support.stack import Stack, free_port

pytestmark = pytest.mark.e2e
KINDS = ("gateway", "collector", "scheduler", "runner")
# Far below the gateway's 10 s request grace and the 30 s the devstack waits before it kills.
PROMPT_EXIT_SECONDS = 8.0
_PORT_SETTING = {"gateway": "DP_HTTP_PORT"} | dict.fromkeys(
    ("collector", "scheduler", "runner"), "DP_HEALTH_PORT"
)
# The gateway listens on its default host, a worker's health port on every address.
_HOST = {"gateway": "127.0.0.1", "scheduler": "0.0.0.0"}


@pytest.fixture(scope="module")
def lifecycle_stack(
    stack_env: dict[str, str], run_id: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    env = {
        **stack_env,
        "DP_DB_SCHEMA": f"dps_{run_id}",
        "DP_BROKER_PREFIX": f"dps.{run_id}",
        "DP_DATA_ROOT": str(tmp_path_factory.mktemp("lifecycle-tasks")),
        "DP_RUNNER_ID": "lifecycle-runner",
    }
    with own_stack(env, tmp_path_factory.mktemp("lifecycle-logs")) as stack:
        yield stack


async def _ready(port: int) -> None:
    async with aiohttp.ClientSession() as session:

        async def answered() -> bool:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as resp:
                return resp.status == 200

        await eventually(answered, timeout=60, interval=0.1, retry_on=(aiohttp.ClientError,))


async def _exit_code(proc: subprocess.Popen[bytes], within: float, failure: str) -> int:
    """The process's exit status, or the test fails with `failure` (the process killed) after `within` s."""
    try:
        return await asyncio.to_thread(proc.wait, within)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)
        pytest.fail(failure)


@pytest.mark.parametrize("kind", KINDS)
async def test_a_second_signal_does_not_cut_the_shutdown_short(lifecycle_stack: Stack, kind: str) -> None:
    port = free_port()
    lifecycle_stack.start(kind, extra_env={_PORT_SETTING[kind]: str(port)})
    await _ready(port)
    proc = lifecycle_stack.procs.pop(kind)

    proc.send_signal(signal.SIGINT)
    proc.send_signal(signal.SIGTERM)
    code = await _exit_code(
        proc, PROMPT_EXIT_SECONDS, f"{kind} still running {PROMPT_EXIT_SECONDS} s after SIGINT + SIGTERM"
    )
    logs = lifecycle_stack.logs(kind)
    # Killed by the SIGTERM's default action (a worker's, before) would be -15.
    assert code == 0, (code, logs[-3000:])
    assert "already stopping: signal ignored" in logs, logs[-3000:]
    assert '"event": "stopped"' in logs, logs[-3000:]  # its shutdown ran to the end


@pytest.mark.parametrize("kind", ["gateway", "scheduler"])
async def test_a_taken_port_is_one_clear_line_and_exit_1(lifecycle_stack: Stack, kind: str) -> None:
    with socket.socket() as holder:
        holder.bind(("0.0.0.0", 0))
        holder.listen()
        port = holder.getsockname()[1]
        lifecycle_stack.start(kind, extra_env={_PORT_SETTING[kind]: str(port)})
        proc = lifecycle_stack.procs.pop(kind)
        code = await _exit_code(proc, 60, f"{kind} kept running on a taken port")
    logs = lifecycle_stack.logs(kind)
    assert code == 1, (code, logs[-3000:])
    assert (
        f"cannot listen on {_HOST[kind]}:{port}: Address already in use; free the port or set {_PORT_SETTING[kind]}"
        in logs
    )
    assert "Traceback" not in logs, logs[-3000:]


@pytest.mark.parametrize(
    ("kind", "setting", "what"),
    [("gateway", "DP_RABBITMQ_URL", "broker"), ("scheduler", "DP_DATABASE_URL", "database")],
)
async def test_an_unreachable_dependency_is_one_clear_line_and_exit_1(
    lifecycle_stack: Stack, kind: str, setting: str, what: str
) -> None:
    closed = free_port()  # nothing listens there
    scheme = "amqp" if what == "broker" else "postgresql"
    url = f"{scheme}://dp:s3cret-pw@127.0.0.1:{closed}/"
    lifecycle_stack.start(
        kind,
        extra_env={setting: url, "DP_STARTUP_WAIT_SECONDS": "1", _PORT_SETTING[kind]: str(free_port())},
    )
    code = await _exit_code(lifecycle_stack.procs.pop(kind), 60, f"{kind} kept running without its {what}")
    logs = lifecycle_stack.logs(kind)
    assert code == 1, (code, logs[-3000:])
    assert f"{what} not reachable within 1 s" in logs and f"check {setting}" in logs, logs[-3000:]
    assert "not started" in logs, logs[-3000:]
    assert "Traceback" not in logs and "s3cret-pw" not in logs, logs[-3000:]

"""A starting service waits for its database or broker (shared.retry.until_reachable): it tries again
until the dependency answers, and once its wait has run out it gives up with one masked reason."""

from __future__ import annotations

import pytest

from shared.retry import Unreachable, until_reachable


async def test_a_dependency_that_comes_up_during_the_wait_is_used() -> None:
    tries = 0

    async def connect_once() -> str:
        nonlocal tries
        tries += 1
        if tries == 1:
            raise ConnectionRefusedError(111, "Connect call failed ('127.0.0.1', 5999)")
        return "connection"

    assert await until_reachable("database", "DP_DATABASE_URL", connect_once, within=5) == "connection"
    assert tries == 2


async def test_after_the_wait_the_reason_names_the_setting_and_hides_the_password() -> None:
    tries = 0

    async def connect_once() -> str:
        nonlocal tries
        tries += 1
        raise OSError("cannot reach amqp://dp:s3cret-pw@broker.internal:5672/")

    with pytest.raises(Unreachable) as raised:
        await until_reachable("broker", "DP_RABBITMQ_URL", connect_once, within=0)
    message = str(raised.value)
    assert message.startswith("broker not reachable within 0 s (cannot reach amqp://dp:")
    assert message.endswith("; check DP_RABBITMQ_URL")
    assert "s3cret-pw" not in message
    assert tries == 1


async def test_an_error_that_is_no_connection_trouble_is_not_waited_out() -> None:
    async def connect_once() -> str:
        raise ValueError("a bug")

    with pytest.raises(ValueError, match="a bug"):
        await until_reachable("database", "DP_DATABASE_URL", connect_once, within=5)

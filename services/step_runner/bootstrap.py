"""The one place that builds the step runner's dependencies."""

from __future__ import annotations

import contextlib
import importlib
import os
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from aio_pika.abc import AbstractIncomingMessage
from prometheus_client import CollectorRegistry

from services.step_runner.adapters.task_records import TaskRecords
from services.step_runner.executors.base import StepRegistry
from services.step_runner.handlers import StepRunner
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.metrics import RunnerMetrics
from shared.broker import (
    RUNNER_CONTROL_EVENT_TYPES,
    Publisher,
    Topology,
    connect_at_start,
    declare_topology,
    handle_delivery,
    open_channel,
)
from shared.connection_url import HostPolicy
from shared.db import pool_context
from shared.deliveries import Delivery, Subscription
from shared.embeddings import EmbeddingSettings
from shared.llm_usage import Prices
from shared.logging import get_logger
from shared.messages import step_commands
from shared.pipeline_settings import PipelineSettings
from shared.secrets import SecretBox, load_or_create_key
from shared.settings import RunnerSettings
from shared.settings_loading import load_settings

log = get_logger()

PROGRAM = "dp-step-runner"


@dataclass(frozen=True)
class ExecutorSettings:
    """What the real executors read besides RunnerSettings: the pipeline, the LLM and the embedder."""

    pipeline: PipelineSettings
    llm: LLMSettings
    embedding: EmbeddingSettings


def executor_settings() -> ExecutorSettings:
    # load_settings: a wrong value (an API key, a URL) is reported by name, never printed.
    return ExecutorSettings(
        pipeline=load_settings(PipelineSettings, PROGRAM),
        llm=load_settings(LLMSettings, PROGRAM),
        embedding=load_settings(EmbeddingSettings, PROGRAM),
    )


def load_registry(settings: RunnerSettings) -> StepRegistry:
    module_name, _, attr = settings.executor_registry.partition(":")
    factory = getattr(importlib.import_module(module_name), attr or "default_registry")
    return factory(settings)


def secret_box(settings: RunnerSettings, data_root: Path | None = None) -> SecretBox:
    """The key from settings, else the one kept in `data_root` (default: DP_DATA_ROOT)."""
    key = settings.encryption_key.get_secret_value() if settings.encryption_key else None
    return SecretBox(load_or_create_key(key, data_root or settings.data_root))


@asynccontextmanager
async def running_runner(settings: RunnerSettings) -> AsyncIterator[StepRunner]:
    topology = Topology(settings.broker_prefix, settings.collector_partitions)
    runner_id = settings.runner_id or f"{socket.gethostname()}-{os.getpid()}"
    connection = await connect_at_start(settings, "step_runner")
    async with connection, pool_context(settings, max_size=2, starting=True) as pool:
        channel = await open_channel(connection, prefetch=settings.runner_concurrency)
        exchanges = await declare_topology(channel, topology)
        runner = StepRunner(
            registry=load_registry(settings),
            publisher=Publisher(
                exchanges,
                producer=f"step_runner:{runner_id}",
                timeout=settings.runner_publish_timeout_seconds,
            ),
            records=TaskRecords(pool),
            secrets=secret_box(settings),
            connections={k: v.get_secret_value() for k, v in settings.connections.items()},
            data_root=settings.data_root,
            runner_id=runner_id,
            heartbeat_interval=settings.heartbeat_interval_seconds,
            channel=channel,
            metrics=RunnerMetrics.build(CollectorRegistry()),
            db_policy=HostPolicy(tuple(settings.allowed_db_hosts), settings.allow_adhoc_connections),
            prices=Prices(
                settings.llm_price_per_1k_prompt_tokens, settings.llm_price_per_1k_completion_tokens
            ),
        )

        control_channel = await connection.channel()
        control = await control_channel.declare_queue(
            topology.runner_control_queue(runner_id), exclusive=True, auto_delete=True
        )
        events = await control_channel.get_exchange(topology.events_exchange)
        for event_type in RUNNER_CONTROL_EVENT_TYPES:
            await control.bind(events, routing_key=f"task.*.{event_type}.#")

        async def on_control(message: AbstractIncomingMessage) -> None:
            await handle_delivery(message, runner.on_control)

        async def on_step(message: Delivery) -> None:
            # Bounded: a retry runs the step again, and a runner stuck on a broker it cannot publish to
            # must hand the step back (events are idempotent by event_id, so a redelivery is safe).
            await handle_delivery(
                message,
                runner.on_run_step,
                transient_budget=settings.runner_transient_budget_seconds,
                envelopes_of=step_commands,
            )

        await control.consume(on_control)
        runner.listening()
        # Fresh orders skip the store only while the control queue is heard (freshness.py): lost with the
        # connection or the channel, it counts again from when it is back.
        connection.close_callbacks.add(runner.deaf)
        connection.reconnect_callbacks.add(runner.listening)
        control_channel.close_callbacks.add(runner.deaf)
        control_channel.reopen_callbacks.add(runner.listening)
        steps = Subscription(channel, topology.steps_queue, on_step)
        await steps.start()
        log.info(
            "step runner consuming",
            queue=topology.steps_queue,
            runner_id=runner_id,
            steps=sorted(s.value for s in runner.registry),
        )
        try:
            yield runner
        finally:
            with contextlib.suppress(Exception):
                await steps.cancel()
            await runner.shutdown(settings.shutdown_grace_seconds)

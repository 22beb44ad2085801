"""The step runner's Prometheus metrics, built on the registry its bootstrap creates."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.llm_usage import LlmUsage

# Steps take from a second (scripted) to an hour (LLM generation over many tables).
_STEP_SECONDS = (0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200)


@dataclass(frozen=True)
class RunnerMetrics:
    registry: CollectorRegistry
    started: Counter
    finished: Counter
    duration: Histogram
    running: Gauge
    skipped: Counter
    llm_calls: Counter
    llm_prompt_tokens: Counter
    llm_completion_tokens: Counter
    llm_seconds: Counter
    llm_cost: Counter

    @classmethod
    def build(cls, registry: CollectorRegistry | None = None) -> RunnerMetrics:
        """Metrics on `registry`; without one, on a private registry nobody scrapes (tests)."""
        registry = registry if registry is not None else CollectorRegistry()
        return cls(
            registry=registry,
            started=Counter(
                "dp_runner_steps_started",
                "Step executions this runner started, by step.",
                ["step"],
                registry=registry,
            ),
            finished=Counter(
                "dp_runner_steps_finished",
                "Step executions this runner ended, by step and outcome (succeeded, failed, cancelled;"
                " interrupted = left for redelivery at shutdown; error = the terminal event was not sent).",
                ["step", "outcome"],
                registry=registry,
            ),
            duration=Histogram(
                "dp_runner_step_duration_seconds",
                "Time from start to terminal event of step executions that ended here, by step.",
                ["step"],
                buckets=_STEP_SECONDS,
                registry=registry,
            ),
            running=Gauge(
                "dp_runner_steps_running", "Step executions running in this runner now.", registry=registry
            ),
            skipped=Counter(
                "dp_runner_commands_skipped",
                "run_step commands skipped as obsolete (execution already ended, or task deleted), by step.",
                ["step"],
                registry=registry,
            ),
            llm_calls=Counter(
                "dp_llm_calls",
                "LLM and embedding calls made by steps that ended here, by model (offline ones too).",
                ["model"],
                registry=registry,
            ),
            llm_prompt_tokens=Counter(
                "dp_llm_prompt_tokens",
                "Prompt tokens of those calls, by model, as the provider's `usage` reports them.",
                ["model"],
                registry=registry,
            ),
            llm_completion_tokens=Counter(
                "dp_llm_completion_tokens",
                "Completion tokens of those calls, by model.",
                ["model"],
                registry=registry,
            ),
            llm_seconds=Counter(
                "dp_llm_latency_seconds",
                "Time spent waiting for those calls (retries included), by model.",
                ["model"],
                registry=registry,
            ),
            llm_cost=Counter(
                "dp_llm_cost",
                "Cost of those calls by model, at DP_LLM_PRICE_PER_1K_* (stays 0 when no price is set).",
                ["model"],
                registry=registry,
            ),
        )

    def count_llm_usage(self, usages: Iterable[LlmUsage]) -> None:
        for u in usages:
            self.llm_calls.labels(u.model).inc(u.calls)
            self.llm_prompt_tokens.labels(u.model).inc(u.prompt_tokens)
            self.llm_completion_tokens.labels(u.model).inc(u.completion_tokens)
            self.llm_seconds.labels(u.model).inc(u.latency_seconds)
            if u.cost is not None:
                self.llm_cost.labels(u.model).inc(u.cost)

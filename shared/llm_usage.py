"""LLM usage accounting: what each model call cost in tokens and time, per step, and the task's budget.

The step runner opens a UsageMeter for each step execution and makes it current (a ContextVar), so every
call made while the step runs (chat or embeddings, however deep in the executor, in any asyncio task or
thread it starts) is recorded by the one place that talks to a provider, `shared.openai_http`, with the
token counts of the answer's `usage`; the offline provider and embedder record their calls with zero
tokens. Outside a step (the gateway's embedder) no meter is current and nothing is recorded.

A meter may carry the task's token budget (`max_llm_tokens`) and what earlier steps of the run used. A
call that would start with the budget spent is refused, and an answer that crosses it marks the meter
exceeded; both raise LlmBudgetExceeded. The runner turns an exceeded meter into a non-retryable
StepFailed (code `llm_budget_exceeded`) whatever the executor did with the exception.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class LlmUsage(BaseModel):
    """One model's calls during one step execution (a field of StepSucceeded / StepFailed)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str
    calls: int = Field(default=0, ge=0)
    prompt_tokens: int = Field(default=0, ge=0)
    completion_tokens: int = Field(default=0, ge=0)
    latency_seconds: float = Field(default=0.0, ge=0)
    cost: float | None = None  # in the currency of DP_LLM_PRICE_PER_1K_*; None when no price is set

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(frozen=True)
class Prices:
    """DP_LLM_PRICE_PER_1K_PROMPT_TOKENS / _COMPLETION_TOKENS; cost is shown only when one is set."""

    per_1k_prompt: float | None = None
    per_1k_completion: float | None = None

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float | None:
        if self.per_1k_prompt is None and self.per_1k_completion is None:
            return None
        return (
            prompt_tokens * (self.per_1k_prompt or 0.0) + completion_tokens * (self.per_1k_completion or 0.0)
        ) / 1000


class LlmBudgetExceeded(Exception):
    """The task's LLM token budget is spent: running the step again cannot help (never retried)."""


class UsageMeter:
    """Usage of one step execution, by model, checked against what is left of the task's budget."""

    def __init__(self, budget: int | None = None, used_before: int = 0, prices: Prices | None = None) -> None:
        self.budget = budget
        self.used_before = used_before
        self.prices = prices or Prices()
        self.exceeded: str | None = None  # the reason, once the budget is crossed
        self._by_model: dict[str, list[float]] = {}  # model -> [calls, prompt, completion, seconds]

    @property
    def total_tokens(self) -> int:
        return int(sum(v[1] + v[2] for v in self._by_model.values()))

    def _over(self, strictly: bool) -> None:
        if self.budget is None:
            return
        used = self.used_before + self.total_tokens
        if used > self.budget or (not strictly and used >= self.budget):
            self.exceeded = self.exceeded or (
                f"LLM token budget exceeded: the task has used {used} tokens of max_llm_tokens={self.budget}"
                f" ({self.total_tokens} in this step); raise max_llm_tokens to run it further"
            )
        if self.exceeded:
            raise LlmBudgetExceeded(self.exceeded)

    def before_call(self) -> None:
        """Refuse a call when the budget is already spent."""
        if self.exceeded:
            raise LlmBudgetExceeded(self.exceeded)
        self._over(strictly=False)

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        row = self._by_model.setdefault(model or "unknown", [0, 0, 0, 0.0])
        row[0] += 1
        row[1] += max(0, prompt_tokens)
        row[2] += max(0, completion_tokens)
        row[3] += max(0.0, seconds)
        self._over(strictly=True)

    def usage(self) -> list[LlmUsage]:
        return [
            LlmUsage(
                model=model,
                calls=int(calls),
                prompt_tokens=int(prompt),
                completion_tokens=int(completion),
                latency_seconds=round(seconds, 3),
                cost=self.prices.cost(int(prompt), int(completion)),
            )
            for model, (calls, prompt, completion, seconds) in sorted(self._by_model.items())
        ]


_CURRENT: ContextVar[UsageMeter | None] = ContextVar("llm_usage_meter", default=None)


@contextmanager
def metering(meter: UsageMeter) -> Iterator[UsageMeter]:
    """Make `meter` the one every LLM call in this context (and the tasks it starts) records into."""
    token = _CURRENT.set(meter)
    try:
        yield meter
    finally:
        _CURRENT.reset(token)


def before_call() -> None:
    meter = _CURRENT.get()
    if meter is not None:
        meter.before_call()


def record_call(model: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
    meter = _CURRENT.get()
    if meter is not None:
        meter.record(model, prompt_tokens, completion_tokens, seconds)


def tokens_of(body: Any) -> tuple[int, int]:
    """(prompt, completion) tokens from an OpenAI-style answer's `usage`; 0 for what it does not say."""
    usage = body.get("usage") if isinstance(body, dict) else None
    if not isinstance(usage, dict):
        return 0, 0

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    return count("prompt_tokens"), count("completion_tokens")


def summarize(usages: Iterable[LlmUsage]) -> dict[str, Any]:
    """Totals and a per-model breakdown, as the task's `result` shows them."""
    by_model: dict[str, dict[str, Any]] = {}
    for u in usages:
        row = by_model.setdefault(
            u.model,
            {"calls": 0, "prompt_tokens": 0, "completion_tokens": 0, "latency_seconds": 0.0, "cost": None},
        )
        row["calls"] += u.calls
        row["prompt_tokens"] += u.prompt_tokens
        row["completion_tokens"] += u.completion_tokens
        row["latency_seconds"] = round(row["latency_seconds"] + u.latency_seconds, 3)
        if u.cost is not None:
            row["cost"] = round((row["cost"] or 0.0) + u.cost, 6)
    for row in by_model.values():
        row["total_tokens"] = row["prompt_tokens"] + row["completion_tokens"]
    costs = [r["cost"] for r in by_model.values() if r["cost"] is not None]
    return {
        "calls": sum(r["calls"] for r in by_model.values()),
        "prompt_tokens": sum(r["prompt_tokens"] for r in by_model.values()),
        "completion_tokens": sum(r["completion_tokens"] for r in by_model.values()),
        "total_tokens": sum(r["total_tokens"] for r in by_model.values()),
        "latency_seconds": round(sum(r["latency_seconds"] for r in by_model.values()), 3),
        "cost": round(sum(costs), 6) if costs else None,
        "by_model": dict(sorted(by_model.items())),
    }


class _CountingMeter(UsageMeter):
    """Counts the calls of one piece of a step's work and passes each on to the step's own meter."""

    def __init__(self, parent: UsageMeter | None) -> None:
        super().__init__()
        self._parent = parent

    def before_call(self) -> None:
        if self._parent is not None:
            self._parent.before_call()

    def record(self, model: str, prompt_tokens: int, completion_tokens: int, seconds: float) -> None:
        super().record(model, prompt_tokens, completion_tokens, seconds)
        if self._parent is not None:
            self._parent.record(model, prompt_tokens, completion_tokens, seconds)


@contextmanager
def counted() -> Iterator[UsageMeter]:
    """A meter of the calls made inside the block (e.g. one table's descriptions), which still count, and
    obey the budget, in the step's meter. Use it inside the asyncio task that makes the calls."""
    with metering(_CountingMeter(_CURRENT.get())) as meter:
        yield meter

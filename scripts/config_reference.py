"""Prints the configuration reference (every DP_* variable, its default and meaning) as a Markdown table.

.venv/bin/python scripts/config_reference.py > docs/configuration.md
"""

from __future__ import annotations

import sys
from pathlib import Path

from pydantic import SecretStr
from pydantic_core import PydanticUndefined

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "deploy" / "k8s"))

from settings_env import settings_classes

OWNERS = {
    "CommonSettings": "all services",
    "GatewaySettings": "api_gateway",
    "SchedulerSettings": "scheduler",
    "RunnerSettings": "step_runner",
    "CollectorSettings": "log_collector",
    "PipelineSettings": "step_runner (steps), api_gateway (training-data search)",
    "LLMSettings": "step_runner",
    "EmbeddingSettings": "step_runner, api_gateway",
    "DpctlSettings": "dpctl",
}

# Meanings of the LLM/embedding fields, which carry no Field(description=...).
FALLBACK = {
    "DP_LLM_PROVIDER": "offline (deterministic, schema-grounded, no network) or openai (any OpenAI-compatible endpoint).",
    "DP_LLM_API_KEY": "API key of the chat-completions endpoint.",
    "DP_LLM_MODEL": "Model name sent to the endpoint.",
    "DP_LLM_TIMEOUT_SECONDS": "Per-request timeout.",
    "DP_LLM_MAX_RETRIES": "Retries on 429, 5xx and timeouts (exponential backoff, Retry-After honoured).",
    "DP_LLM_BACKOFF_BASE_SECONDS": "First retry delay.",
    "DP_LLM_BACKOFF_MAX_SECONDS": "Cap of the retry delay.",
    "DP_LLM_CONCURRENCY": "Requests in flight at once per runner.",
    "DP_LLM_TEMPERATURE": "Sampling temperature.",
    "DP_LLM_MAX_TOKENS": "max_tokens sent with each request (unset: the server's default).",
    "DP_EMBEDDING_PROVIDER": "offline (feature hashing, no model download) or openai (any /v1/embeddings endpoint).",
    "DP_EMBEDDING_BASE_URL": "OpenAI-compatible API root, up to and including /v1.",
    "DP_EMBEDDING_API_KEY": "API key of the embeddings endpoint.",
    "DP_EMBEDDING_MODEL": "Embedding model name.",
    "DP_EMBEDDING_DIMENSIONS": "Vector size stored in the training-data store.",
    "DP_EMBEDDING_BATCH_SIZE": "Texts per embeddings request.",
    "DP_EMBEDDING_TIMEOUT_SECONDS": "Per-request timeout.",
    "DP_EMBEDDING_MAX_RETRIES": "Retries on 429, 5xx and timeouts.",
    "DP_EMBEDDING_BACKOFF_BASE_SECONDS": "First retry delay.",
    "DP_EMBEDDING_BACKOFF_MAX_SECONDS": "Cap of the retry delay.",
}


def _default(field) -> str:  # type: ignore[no-untyped-def]
    if field.default_factory is not None:
        value = field.default_factory()
    elif field.default is PydanticUndefined:
        return "(required)"
    else:
        value = field.default
    if value is None or value == {} or value == []:
        return "(unset)"
    if isinstance(value, SecretStr):
        return "(secret)"
    return f"`{value}`"


def main() -> None:
    classes, _ = settings_classes()
    seen: dict[str, tuple[str, str, str]] = {}
    for cls in sorted(classes, key=lambda c: list(OWNERS).index(c.__name__) if c.__name__ in OWNERS else 99):
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            var = f"{prefix}{name}".upper()
            if var in seen:
                continue
            meaning = field.description or FALLBACK.get(var, "")
            seen[var] = (_default(field), meaning, OWNERS.get(cls.__name__, cls.__name__))
    print("| variable | default | read by | meaning |")
    print("|---|---|---|---|")
    for var, (default, description, owner) in seen.items():
        print(f"| `{var}` | {default} | {owner} | {description} |")


if __name__ == "__main__":
    main()

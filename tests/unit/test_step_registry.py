"""The real executors' wiring (services/step_runner/registry.py): settings come in from the bootstrap,
and every step that needs a model gets it the same way, from one LLMFactory."""

from __future__ import annotations

from services.step_runner.bootstrap import ExecutorSettings
from services.step_runner.llm.settings import LLMSettings
from services.step_runner.registry import build_registry
from shared.embeddings import EmbeddingSettings
from shared.pipeline_settings import PipelineSettings
from shared.settings import RunnerSettings
from shared.steps import STEP_ORDER, StepName

LLM_STEPS = (StepName.DDL_GENERATION, StepName.QA_GENERATION, StepName.SQL_VALIDATION)


def _executors() -> ExecutorSettings:
    return ExecutorSettings(pipeline=PipelineSettings(), llm=LLMSettings(), embedding=EmbeddingSettings())


def test_every_step_is_built_from_the_settings_handed_in() -> None:
    executors = _executors()
    registry = build_registry(RunnerSettings(database_url="postgresql://db/pipeline"), executors)
    assert list(registry) == list(STEP_ORDER)
    assert registry[StepName.DDL_GENERATION]._settings is executors.pipeline  # type: ignore[attr-defined]
    assert registry[StepName.QA_GENERATION]._settings is executors.llm  # type: ignore[attr-defined]


def test_the_model_steps_share_one_factory() -> None:
    registry = build_registry(RunnerSettings(database_url="postgresql://db/pipeline"), _executors())
    factories = {id(registry[step]._llm_factory) for step in LLM_STEPS}  # type: ignore[attr-defined]
    assert len(factories) == 1
    model = registry[StepName.QA_GENERATION]._llm_factory()  # type: ignore[attr-defined]
    assert hasattr(model, "propose_themes")

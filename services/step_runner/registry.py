"""The four real step executors, built from the runner's settings (RunnerSettings.executor_registry)."""

from __future__ import annotations

from services.step_runner.executors.base import StepRegistry
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.executors.qa_generation import QaGenerationExecutor
from services.step_runner.executors.sql_validation import SqlValidationExecutor
from services.step_runner.executors.training_load import TrainingLoadExecutor
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from shared.embeddings import EmbeddingSettings, create_embedder
from shared.pipeline_settings import PipelineSettings
from shared.settings import RunnerSettings, load_settings
from shared.steps import StepName


def default_registry(settings: RunnerSettings) -> StepRegistry:
    # load_settings: a wrong value (an API key, a URL) is reported by name, never printed.
    pipeline = load_settings(PipelineSettings, "dp-step-runner")
    llm = load_settings(LLMSettings, "dp-step-runner")
    embedding = load_settings(EmbeddingSettings, "dp-step-runner")
    training_url = pipeline.training_database_url or settings.database_url
    return {
        StepName.DDL_GENERATION: DdlGenerationExecutor(pipeline, lambda: create_llm(llm)),
        StepName.QA_GENERATION: QaGenerationExecutor(llm),
        StepName.SQL_VALIDATION: SqlValidationExecutor(pipeline, lambda: create_llm(llm)),
        StepName.TRAINING_LOAD: TrainingLoadExecutor(
            pipeline, lambda: create_embedder(embedding), training_url.get_secret_value()
        ),
    }

"""The four real step executors, built from the runner's settings (RunnerSettings.executor_registry).

`default_registry` is the entry point DP_EXECUTOR_REGISTRY names; the settings the executors read are
loaded by the bootstrap (`executor_settings`, with its readable start-up errors) and handed to
`build_registry`, which only wires: every executor that needs a model gets it one way, an `LLMFactory`.
"""

from __future__ import annotations

from services.step_runner.bootstrap import ExecutorSettings, executor_settings
from services.step_runner.executors.base import StepRegistry
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.executors.qa_generation import QaGenerationExecutor
from services.step_runner.executors.sql_validation import SqlValidationExecutor
from services.step_runner.executors.training_load import TrainingLoadExecutor
from services.step_runner.llm.base import LLMFactory
from services.step_runner.llm.factory import create_llm
from shared.embeddings import create_embedder
from shared.settings import RunnerSettings
from shared.steps import StepName


def default_registry(settings: RunnerSettings) -> StepRegistry:
    return build_registry(settings, executor_settings())


def build_registry(settings: RunnerSettings, executors: ExecutorSettings) -> StepRegistry:
    pipeline, llm, embedding = executors.pipeline, executors.llm, executors.embedding
    training_url = pipeline.training_database_url or settings.database_url
    llm_factory: LLMFactory = lambda: create_llm(llm)  # noqa: E731
    return {
        StepName.DDL_GENERATION: DdlGenerationExecutor(pipeline, llm_factory),
        StepName.QA_GENERATION: QaGenerationExecutor(llm, llm_factory),
        StepName.SQL_VALIDATION: SqlValidationExecutor(pipeline, llm_factory),
        StepName.TRAINING_LOAD: TrainingLoadExecutor(
            pipeline, lambda: create_embedder(embedding), training_url.get_secret_value()
        ),
    }

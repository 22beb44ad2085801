"""Running the real steps in tests with the offline LLM and embedder (no network)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.demo_db.generator import TABLES
from services.step_runner.executors.ddl_generation import DdlGenerationExecutor
from services.step_runner.executors.qa_generation import QaGenerationExecutor
from services.step_runner.executors.sql_validation import SqlValidationExecutor
from services.step_runner.llm.factory import create_llm
from services.step_runner.llm.settings import LLMSettings
from shared.parameters import TaskParameters
from shared.pipeline_settings import PipelineSettings
from shared.steps import StepName
from tests.support.step_context import RecordingContext

BUSINESS_CONTEXT = "An online and high-street retail shop: customers, orders, payments, shipments and reviews"


def demo_context(task_dir: Path, url: str, **params: Any) -> RecordingContext:
    params.setdefault("table_list", list(TABLES))
    parameters = TaskParameters(db_connection=url, business_context=BUSINESS_CONTEXT, **params)
    return RecordingContext(task_dir, parameters, url)


def ddl_step(settings: PipelineSettings | None = None) -> DdlGenerationExecutor:
    return DdlGenerationExecutor(settings or PipelineSettings(), lambda: create_llm(LLMSettings()))


def qa_step() -> QaGenerationExecutor:
    return QaGenerationExecutor(LLMSettings(), lambda: create_llm(LLMSettings()))


def validation_step(settings: PipelineSettings | None = None) -> SqlValidationExecutor:
    return SqlValidationExecutor(settings or PipelineSettings(), lambda: create_llm(LLMSettings()))


async def run_steps_1_and_2(ctx: RecordingContext) -> dict[str, Any]:
    await ddl_step().run(ctx.for_step(StepName.DDL_GENERATION))
    return await qa_step().run(ctx.for_step(StepName.QA_GENERATION))

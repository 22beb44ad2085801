"""One table's DDL and Markdown, as step 1 writes them, for a caller outside a task (the gateway's
`POST /api/v0/database/table/ddl`, the earlier implementation's table tool).

The same introspection, description filling and rendering as ddl_generation; nothing is written.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from services.step_runner.llm.base import TextToSQLModel
from services.step_runner.pipeline.ddl_file import render_ddl
from services.step_runner.pipeline.descriptions import fill_descriptions, needs_description
from services.step_runner.pipeline.detail_doc import render_detail
from services.step_runner.pipeline.introspect import (
    IntrospectedTable,
    IntrospectionOptions,
    TableNotFound,
    introspect_table,
)
from services.step_runner.pipeline.table_list import TableListError, parse_entry
from shared import business_db
from shared.connection_url import HostPolicy

__all__ = ["TableDocument", "TableListError", "TableNotFound", "document_table"]


@dataclass(frozen=True)
class TableDocument:
    table: IntrospectedTable
    ddl: str
    markdown: str
    filled: int  # descriptions the LLM filled in


async def document_table(
    url: str,
    table: str,
    business_context: str | None,
    *,
    llm: TextToSQLModel,
    policy: HostPolicy | None,
    statement_timeout_ms: int,
    options: IntrospectionOptions | None = None,
) -> TableDocument:
    """Raises TableListError (not a table name), TableNotFound, business_db.BusinessDbError (cannot
    connect or read), or the LLM's errors. Descriptions are filled only with a business context."""
    ref = parse_entry(table)
    conn = await business_db.connect(url, statement_timeout_ms=statement_timeout_ms, policy=policy)
    try:
        introspected = await introspect_table(conn, ref, options or IntrospectionOptions())
    except BaseException as exc:
        conn.terminate()
        if isinstance(exc, TableNotFound):
            raise
        if isinstance(exc, Exception) and not isinstance(exc, business_db.BusinessDbError):
            raise business_db.BusinessDbError(
                f"cannot read {ref.qualified}: {business_db.describe_error(exc)}"
            ) from None
        raise
    await business_db.close(conn)
    filled = 0
    if business_context and business_context.strip() and needs_description(introspected.info):
        described = await llm.describe_table(introspected.info, business_context.strip())
        info, filled = fill_descriptions(introspected.info, described)
        introspected = dataclasses.replace(introspected, info=info)
    return TableDocument(
        table=introspected, ddl=render_ddl(introspected), markdown=render_detail(introspected), filled=filled
    )

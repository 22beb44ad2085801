"""Constrained string types shared by request models: table names, file names, database names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints

from services.api_gateway.adapters.task_files import is_safe_file_name

# schema.table or table; identifiers start with a letter or underscore (any script), 63 chars each.
TABLE_NAME_PATTERN = r"^[^\W\d][\w$]{0,62}(\.[^\W\d][\w$]{0,62})?$"
_TABLE_NAME = re.compile(TABLE_NAME_PATTERN)


def is_table_name(value: str) -> bool:
    return bool(_TABLE_NAME.fullmatch(value))


def _bare_file_name(value: str) -> str:
    if not is_safe_file_name(value):
        raise ValueError("must be a bare file name (no directories, no '..', no leading dot)")
    return value


TableName = Annotated[str, StringConstraints(pattern=TABLE_NAME_PATTERN, max_length=127)]
BareFileName = Annotated[
    str, StringConstraints(min_length=1, max_length=255), AfterValidator(_bare_file_name)
]
DbName = Annotated[str, StringConstraints(pattern=r"^[\w$.-]{1,100}$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[^\W\d][\w$]{0,62}$")]

"""Constrained string types shared by request models: table names, file names, database names."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, StringConstraints, WithJsonSchema

from services.api_gateway.adapters.task_files import is_safe_file_name
from shared.ids import TASK_ID_MAX_LEN, is_valid_task_id
from shared.vocabulary import LOG_LEVELS

# schema.table or table; identifiers start with a letter or underscore (any script), 63 chars each.
TABLE_NAME_PATTERN = r"^[^\W\d][\w$]{0,62}(\.[^\W\d][\w$]{0,62})?$"
_TABLE_NAME = re.compile(TABLE_NAME_PATTERN)


def is_table_name(value: str) -> bool:
    return bool(_TABLE_NAME.fullmatch(value))


def _task_id(value: str) -> str:
    if not is_valid_task_id(value):
        raise ValueError(
            "must be a task id: task_YYYYMMDD_HHMMSS_<suffix> or manual_..., at most 32 characters"
        )
    return value


def _bare_file_name(value: str) -> str:
    if not is_safe_file_name(value):
        raise ValueError("must be a bare file name (no directories, no '..', no leading dot)")
    return value


# shared.ids.TASK_ID_RE (fullmatch), spelled with [0-9] so it means the same in Python, Rust (pydantic) and ECMA regex.
TASK_ID_PATTERN = r"^(?!.*\n)(task|manual)_[0-9]{8}_[0-9]{6}(_[a-z0-9]{1,10})?$"
# is_safe_file_name as one pattern: word characters first, then word characters, dot, dash, space,
# parentheses or plus; no `..` anywhere, no trailing space or dot (the length bound is maxLength).
# `(?!.*\n)`: Python's `$` would also match before a final newline.
FILE_NAME_PATTERN = r"^(?!.*\n)(?!.*\.\.)\w[\w.\- ()+]*(?<![ .])$"

# What Python's str.strip() removes (str.isspace), as one character class: a value made only of these
# is blank, which the handlers treat as missing.
PY_SPACE = "\\t\\n\\x0b\\x0c\\r\\x1c-\\x20\\x85\\xa0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000"
NOT_BLANK_PATTERN = f"[^{PY_SPACE}]"
# The string form of a table list as the document states it: table names separated by commas or
# new lines, spaces around them (the server also skips blank entries and `#` comments).
_NAME = TABLE_NAME_PATTERN.removeprefix("^").removesuffix("$")
TABLE_NAMES_TEXT_PATTERN = f"^(?!.*\\n$)[ \\t]*{_NAME}[ \\t]*([,\\n][ \\t]*{_NAME}[ \\t]*)*$"

TableName = Annotated[str, StringConstraints(pattern=TABLE_NAME_PATTERN, max_length=127)]
BareFileName = Annotated[
    str,
    StringConstraints(min_length=1, max_length=255),
    AfterValidator(_bare_file_name),
    WithJsonSchema({"type": "string", "minLength": 1, "maxLength": 255, "pattern": FILE_NAME_PATTERN}),
]
TaskId = Annotated[
    str,
    AfterValidator(_task_id),
    WithJsonSchema({"type": "string", "pattern": TASK_ID_PATTERN, "maxLength": TASK_ID_MAX_LEN}),
]
DbName = Annotated[str, StringConstraints(pattern=r"^[\w$.-]{1,100}$")]
SchemaName = Annotated[str, StringConstraints(pattern=r"^[^\W\d][\w$]{0,62}$")]
# Schema names separated by commas, spaces around them; empty means the default (public).
_SCHEMA_ITEM = "[ \\t]*[^\\W\\d][\\w$]{0,62}[ \\t]*"
SCHEMA_LIST_PATTERN = f"^(?!.*\\n$)({_SCHEMA_ITEM}(,{_SCHEMA_ITEM})*)?$"


def spaced_alternatives(alternatives: list[str]) -> str:
    return f"[{PY_SPACE}]*({'|'.join(re.escape(a) for a in alternatives)})[{PY_SPACE}]*"


def any_case_pattern(words: list[str], *, spaced: bool = False, or_exactly: tuple[str, ...] = ()) -> str:
    """These words in any letter case (and, `spaced`, with spaces around), or one of `or_exactly` as
    written: what a validator that upper-cases or strips accepts, as one pattern for the document and
    the check."""
    letters = "|".join(
        "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else re.escape(c) for c in w) for w in words
    )
    space = f"[{PY_SPACE}]*" if spaced else ""
    exact = "".join(f"|{re.escape(w)}" for w in or_exactly)
    return f"^(?!.*\\n)(?:{space}(?:{letters}){space}{exact})$"


def matching(pattern: str, what: str) -> AfterValidator:
    compiled = re.compile(pattern)

    def check(value: str) -> str:
        if not compiled.search(value):
            raise ValueError(f"not a {what}")
        return value

    return AfterValidator(check)


LEVEL_PATTERN = any_case_pattern(list(LOG_LEVELS))
# A log level in any letter case; a model upper-cases it after this check (see LogQueryRequest).
AnyCaseLevel = Annotated[
    str, matching(LEVEL_PATTERN, "log level"), WithJsonSchema({"type": "string", "pattern": LEVEL_PATTERN})
]

"""Building a settings object at start-up, and the error text that never repeats a value."""

from __future__ import annotations

import sys
from typing import TypeVar

from pydantic import ValidationError
from pydantic_settings import BaseSettings
from pydantic_settings.exceptions import SettingsError

S = TypeVar("S", bound=BaseSettings)


def load_settings(cls: type[S], program: str) -> S:
    """Build a settings object from the environment, or exit with a readable list of what is wrong."""
    try:
        return cls()
    except (ValidationError, SettingsError) as exc:
        print(settings_error_text(cls, program, exc), file=sys.stderr)
        raise SystemExit(2) from None


def settings_error_text(cls: type[BaseSettings], program: str, exc: ValidationError | SettingsError) -> str:
    """What is wrong, per variable, without the values: a wrong value may be a secret (pydantic's own
    message repeats every `input_value`)."""
    lines = [f"{program}: invalid settings"]
    prefix = str(cls.model_config.get("env_prefix", ""))
    if isinstance(exc, SettingsError):
        # pydantic-settings names the field it could not parse (as JSON) and nothing else.
        lines.append(f"  {str(exc).split(' from source')[0]}")
        return "\n".join(lines)
    for error in exc.errors(include_input=False, include_url=False, include_context=False):
        loc = [str(p) for p in error["loc"]]
        where = f"{prefix}{loc[0].upper()}{''.join(f'[{p}]' for p in loc[1:])}" if loc else "settings"
        lines.append(f"  {where}: {error['msg']}")
    return "\n".join(lines)

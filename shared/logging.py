"""structlog set-up shared by every service: context variables first, secrets masked, JSON off a TTY."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from shared.secrets import mask_secrets
from shared.settings import CommonSettings


def _mask_processor(_: Any, __: str, event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in event_dict.items():
        if isinstance(value, str):
            event_dict[key] = mask_secrets(value)
    return event_dict


def console_colors() -> bool:
    """Colours only where the lines meet a terminal: stderr is one, or whoever shows the lines says so
    with FORCE_COLOR (`make run` prefixes the services' lines on its own terminal); NO_COLOR wins."""
    if os.environ.get("NO_COLOR"):
        return False
    return sys.stderr.isatty() or bool(os.environ.get("FORCE_COLOR"))


def configure_logging(settings: CommonSettings, *, service: str) -> None:
    level = getattr(logging, settings.log_level)
    use_json = settings.log_format == "json" or (settings.log_format == "auto" and not sys.stderr.isatty())
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if use_json
        else structlog.dev.ConsoleRenderer(colors=console_colors())
    )
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        processors=[*shared, structlog.processors.format_exc_info, _mask_processor, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # The libraries' own warnings (aiormq, asyncpg, aiohttp) go through the same masking and the same
    # format, so a JSON log stays one JSON object per line.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=[*shared, structlog.stdlib.add_logger_name],
            processors=[
                structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                structlog.processors.format_exc_info,
                _mask_processor,
                renderer,
            ],
        )
    )
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(max(level, logging.WARNING))


def get_logger(**initial: Any) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(**initial)

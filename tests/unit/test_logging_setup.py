"""The services' log set-up: console lines carry colour codes only where they meet a terminal
(FORCE_COLOR says so for a program that shows a service's piped lines on one, as `make run` does;
NO_COLOR always wins), and the libraries' own log records come out in the same format, masked."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from shared.logging import configure_logging, get_logger
from shared.settings import CommonSettings

ESC = "\x1b["


@pytest.fixture
def console(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in ("NO_COLOR", "FORCE_COLOR"):
        monkeypatch.delenv(name, raising=False)
    handlers = logging.getLogger().handlers[:]
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    logging.getLogger().handlers[:] = handlers


def _line(capsys: pytest.CaptureFixture[str]) -> str:
    configure_logging(CommonSettings(log_format="console"), service="test")
    get_logger().warning("hello", where="here")
    return capsys.readouterr().err


@pytest.mark.usefixtures("console")
def test_a_pipe_gets_plain_lines(capsys: pytest.CaptureFixture[str]) -> None:
    line = _line(capsys)
    assert "hello" in line and "where=here" in line
    assert ESC not in line


@pytest.mark.usefixtures("console")
def test_force_color_colours_piped_lines(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    assert ESC in _line(capsys)


@pytest.mark.usefixtures("console")
def test_no_color_wins(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("FORCE_COLOR", "1")
    monkeypatch.setenv("NO_COLOR", "1")
    assert ESC not in _line(capsys)


@pytest.mark.usefixtures("console")
def test_a_librarys_warning_is_a_masked_json_line(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging(CommonSettings(log_format="json"), service="test")
    logging.getLogger("aiormq.connection").error("cannot reach %s", "amqp://dp:s3cret-pw@broker:5672/")
    logging.getLogger("asyncpg").info("below the floor of WARNING: not shown")
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1, lines
    record = json.loads(lines[0])
    assert record["level"] == "error" and record["logger"] == "aiormq.connection"
    assert record["service"] == "test" and record["event"].startswith("cannot reach amqp://dp:")
    assert "s3cret-pw" not in lines[0]

"""Human-readable output: tables, sizes, times, progress bars. `--json` output bypasses all of this."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from shared import vocabulary
from shared.final_report import report_lines

STEP_ORDER: tuple[str, ...] = tuple(step.value for step in vocabulary.STEP_ORDER)
TERMINAL_TASK_STATUSES = vocabulary.TASK_TERMINAL


def print_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(value, indent=2, ensure_ascii=False, default=str), file=out or sys.stdout)


def table(
    rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, str]], out: TextIO | None = None
) -> None:
    """`columns`: (key, header) pairs. Empty input prints a short note instead of a bare header."""
    out = out or sys.stdout
    if not rows:
        print("(none)", file=out)
        return
    cells = [[cell(row.get(key)) for key, _ in columns] for row in rows]
    widths = [max(len(header), *(len(r[i]) for r in cells)) for i, (_, header) in enumerate(columns)]
    print("  ".join(h.upper().ljust(w) for (_, h), w in zip(columns, widths, strict=True)).rstrip(), file=out)
    for row in cells:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip(), file=out)


def cell(value: Any, limit: int = 60) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    text = short_time(value) if _is_timestamp(value) else str(value)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_timestamp(value: Any) -> bool:
    if not isinstance(value, str) or len(value) < 19 or value[4] != "-" or value[10] not in "T ":
        return False
    try:
        datetime.fromisoformat(value)
    except ValueError:
        return False
    return True


def short_time(value: str) -> str:
    """ISO timestamp -> `YYYY-MM-DD HH:MM:SS` in local time."""
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return value
    if moment.tzinfo is not None:
        moment = moment.astimezone()
    return moment.strftime("%Y-%m-%d %H:%M:%S")


def size(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    amount = float(value)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if amount < 1024 or unit == "GiB":
            return f"{amount:.0f} {unit}" if unit == "B" else f"{amount:.1f} {unit}"
        amount /= 1024
    return f"{amount:.1f} GiB"


def duration(value: Any) -> str:
    if not isinstance(value, (int, float)):
        return "-"
    seconds = int(value)
    if seconds < 60:
        return f"{value:.1f}s" if isinstance(value, float) and seconds < 10 else f"{seconds}s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes}m{seconds:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


def bar(percent: float, width: int = 24) -> str:
    percent = max(0.0, min(100.0, percent))
    filled = round(width * percent / 100)
    return "[" + "#" * filled + "." * (width - filled) + f"] {percent:5.1f}%"


def log_line(record: dict[str, Any]) -> str:
    """One log line: `time LEVEL [step] message`."""
    when = record.get("timestamp") or record.get("occurred_at") or datetime.now().astimezone().isoformat()
    level = str(record.get("level") or record.get("log_level") or "INFO").upper()
    step = record.get("step_name") or record.get("step")
    text = str(record.get("message", ""))
    prefix = f"{short_time(str(when)):19} {level:8}"
    return f"{prefix} [{step}] {text}" if step else f"{prefix} {text}"


def task_detail(task: dict[str, Any], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    fields = [
        ("task_id", "Task"),
        ("task_name", "Name"),
        ("status", "Status"),
        ("progress", "Progress"),
        ("current_step", "Current step"),
        ("execution_mode", "Mode"),
        ("db_name", "Database"),
        ("created_by", "Created by"),
        ("created_at", "Created"),
        ("started_at", "Started"),
        ("completed_at", "Completed"),
        ("output_directory", "Output directory"),
        ("error_message", "Error"),
    ]
    for key, label in fields:
        value = task.get(key)
        if key == "progress" and value is not None:
            value = f"{value}%"
        if value is not None or key in {"task_id", "status"}:
            print(f"{label + ':':18}{cell(value, limit=200)}", file=out)
    if task.get("duration") is not None:
        print(f"{'Duration:':18}{duration(task['duration'])}", file=out)
    steps = (
        task.get("steps")
        or task.get("step_details")
        or [{"step": name, "status": status} for name, status in (task.get("step_status") or {}).items()]
    )
    if steps:
        print("", file=out)
        table(
            [{**s, "duration": duration(s.get("duration"))} for s in steps],
            [
                ("step", "step"),
                ("status", "status"),
                ("started_at", "started"),
                ("duration", "duration"),
                ("attempts", "attempts"),
                ("error_message", "error"),
            ],
            out,
        )
    left_out = [p for p in task.get("plan") or [] if not p.get("runs")]
    if left_out:
        print("\nNot in this run:", file=out)
        for step in left_out:
            print(f"  {step.get('step')}: {cell(step.get('reason'), limit=200)}", file=out)
    report = report_lines(task.get("result") or {})
    if report:
        print("\nFinal report:", file=out)
        for line in report:
            print(line, file=out)
    parameters = task.get("parameters")
    if parameters:
        print("\nParameters:", file=out)
        for key in sorted(parameters):
            print(f"  {key}: {cell(parameters[key], limit=200)}", file=out)

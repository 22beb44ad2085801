"""Watching a task live over the gateway's server-sent events: per-step progress bars and log lines.

On a terminal the four step bars stay at the bottom and log lines scroll above them; elsewhere (CI
logs, pipes) each change is printed once as a plain line. A stream that ends before the task does
(gateway restart, proxy timeout) is reopened; the task's state is re-read from the API each time,
so nothing is missed for the bars, and log lines resume after the last id seen.

The API's state trails the live events a little (the log collector writes it): an event published
just before the stream was opened may not be in the state read right after. So the state is read a
moment after the stream is open, re-checked while the stream is idle, and read once more at the end.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from services.dpctl.client import (
    KEEPALIVE,
    ApiError,
    EventStream,
    GatewayClient,
    GatewayUnreachable,
    SseEvent,
)
from services.dpctl.formatting import STEP_ORDER, TERMINAL_TASK_STATUSES, bar, log_line
from shared.vocabulary import LOG_LEVELS, TASK_MOVING, TASK_STATUSES

# Where following a task stops: its end, or a review before load only a person can finish.
STOPS = frozenset(TASK_STATUSES) - TASK_MOVING


def watched_exit_code(status: str | None) -> int:
    """A followed or awaited task's exit code: 0 when it completed or waits for its review (it did what
    it can without a person), else 1."""
    return 0 if status in ("completed", "awaiting_review") else 1


MAX_RECONNECTS = 20
STATE_SETTLE_SECONDS = 0.5  # how far the API's state may trail the live events
IDLE_RECHECK_SECONDS = 10.0  # while the stream is idle, look at the task's state this often
CATCH_UP_SECONDS = 3.0  # at the end, how long to wait for the API's state to show it
NOT_YET_VISIBLE_RETRIES = 10
RECONNECT_DELAY_SECONDS = 1.0
STEP_EVENT_STATUS = {
    "step_scheduled": "pending",
    "step_started": "running",
    "step_succeeded": "completed",
    "step_failed": "failed",
    "step_skipped": "skipped",
    "step_cancelled": "cancelled",
}


@dataclass
class StepState:
    status: str = "pending"
    percent: float = 0.0
    message: str = ""


@dataclass
class TaskView:
    steps: dict[str, StepState] = field(default_factory=lambda: {s: StepState() for s in STEP_ORDER})

    def load(self, task: dict[str, Any]) -> None:
        for name, status in (task.get("step_status") or {}).items():
            self.steps.setdefault(name, StepState()).status = status
        for step in task.get("steps") or []:
            state = self.steps.setdefault(step.get("step", "?"), StepState())
            state.status = step.get("status") or state.status
            state.percent = float(step.get("progress") or (100 if state.status == "completed" else 0))

    def apply(self, kind: str, payload: dict[str, Any]) -> bool:
        """Update from one event; True when a step changed."""
        step = payload.get("step")
        if not step:
            return False
        state = self.steps.setdefault(step, StepState())
        if kind == "step_progress":
            state.percent = float(payload.get("percent") or 0)
            state.message = str(payload.get("message") or "")
            state.status = "running"
            return True
        if kind in STEP_EVENT_STATUS:
            state.status = STEP_EVENT_STATUS[kind]
            if kind in {"step_started", "step_scheduled"}:
                state.percent, state.message = 0.0, ""
            elif kind == "step_succeeded":
                state.percent, state.message = 100.0, ""
            elif kind == "step_failed":
                state.message = str(payload.get("error") or "")
                if payload.get("retryable"):
                    state.status = "failed, retrying"
            return True
        return False

    def lines(self) -> list[str]:
        width = max(len(s) for s in self.steps)
        return [
            f"{name:{width}}  {bar(state.percent)}  {state.status}{'  ' + state.message if state.message else ''}"[
                :160
            ]
            for name, state in self.steps.items()
        ]


def event_kind_and_payload(event: SseEvent) -> tuple[str, dict[str, Any]]:
    data: dict[str, Any] = event.data if isinstance(event.data, dict) else {"message": str(event.data)}
    nested = data.get("payload")
    payload: dict[str, Any] = nested if isinstance(nested, dict) else data
    kind = str(data.get("type") or event.event)
    return kind, payload


class Follower:
    def __init__(
        self,
        client: GatewayClient,
        out: TextIO | None = None,
        *,
        as_json: bool = False,
        show_logs: bool = True,
        min_level: str | None = None,
        tty: bool | None = None,
    ) -> None:
        self.client = client
        self.out = out or sys.stdout
        self.as_json = as_json
        self.show_logs = show_logs
        self.min_level = LOG_LEVELS.index(min_level.upper()) if min_level else 0
        self.tty = self.out.isatty() if tty is None else tty
        self.view = TaskView()
        self._drawn = 0
        self._printed: dict[str, str] = {}
        self._seen_logs: set[Any] = set()
        self._log_after: int | None = None
        self._seen_task = False
        self._checked = 0.0

    # --- output ---

    def _emit(self, text: str) -> None:
        self._erase()
        print(text, file=self.out)
        self._draw()

    def _erase(self) -> None:
        if self.tty and self._drawn:
            self.out.write(f"\x1b[{self._drawn}F\x1b[J")
            self._drawn = 0

    def _draw(self) -> None:
        if not self.tty:
            return
        lines = self.view.lines()
        self.out.write("\n".join(lines) + "\n")
        self._drawn = len(lines)
        self.out.flush()

    def _step_changed(self) -> None:
        if self.tty:
            self._erase()
            self._draw()
            return
        # Plain output: a line when a step's status or its progress quarter changes.
        for line, (name, state) in zip(self.view.lines(), self.view.steps.items(), strict=True):
            key = f"{state.status}:{int(state.percent // 25)}"
            if self._printed.get(name) != key:
                self._printed[name] = key
                print(line, file=self.out)
        self.out.flush()

    # --- the loop ---

    def run(self, task_id: str) -> str:
        """Follow until the task ends; returns its final status."""
        reconnects = 0
        while True:
            try:
                # The stream is open (subscribed) before the state and the log backlog are read, so
                # nothing published in between is lost; what is seen twice changes nothing or is skipped.
                with self._open_stream(task_id) as events:
                    time.sleep(STATE_SETTLE_SECONDS)
                    task = self.client.get_task(task_id)
                    self._checked = time.monotonic()
                    self._seen_task = True
                    self.view.load(task)
                    if self.as_json:
                        print(json.dumps({"type": "task_state", "task": task}, default=str), file=self.out)
                    else:
                        self._step_changed()
                    self._backfill_logs(task_id)
                    if task.get("status") in STOPS:
                        return self._finish(task_id, str(task["status"]), _why(task))
                    final = self._consume(task_id, events)
                if final is not None:
                    return self._finish(task_id, final[0], final[1])
                # The stream ended without the task's end (gateway restart, proxy timeout)?
                task = self.client.get_task(task_id)
                if task.get("status") in STOPS:
                    return self._finish(task_id, str(task["status"]), _why(task))
            except GatewayUnreachable:
                if reconnects >= MAX_RECONNECTS:
                    raise
            # The stream ended (or the gateway went away) while the task runs on: reopen it.
            reconnects += 1
            if reconnects > MAX_RECONNECTS:
                task = self.client.get_task(task_id)
                return self._finish(task_id, str(task.get("status")), task.get("error_message"))
            time.sleep(RECONNECT_DELAY_SECONDS)

    def _open_stream(self, task_id: str) -> EventStream:
        """The task's event stream; a task accepted (202) but not yet visible gets a few seconds to appear."""
        attempts = 0
        while True:
            try:
                return self.client.stream(f"/tasks/{task_id}/stream", keepalives=True)
            except ApiError as exc:
                attempts += 1
                if exc.status != 404 or self._seen_task or attempts >= NOT_YET_VISIBLE_RETRIES:
                    raise
                time.sleep(0.5)

    def _backfill_logs(self, task_id: str) -> None:
        """Log lines stored before the stream was opened (the task's start, or while reconnecting)."""
        if not self.show_logs:
            return
        params: dict[str, Any] = {"after": self._log_after, "limit": 1000, "order": "asc"}
        if self.min_level:
            params["level"] = LOG_LEVELS[self.min_level]
        while True:
            page = self.client.logs(task_id, **params)
            for line in page.get("logs") or []:
                if isinstance(line.get("id"), int):
                    self._log_after = max(self._log_after or 0, line["id"])
                key = line.get("event_id") or line.get("id")
                if self.as_json:
                    if self._first_sight(key):
                        print(json.dumps({"type": "log_emitted", **line}, default=str), file=self.out)
                else:
                    self._log(line, key)
            if not page.get("next_cursor") or not page.get("logs"):
                break
            params = {"cursor": page["next_cursor"], "limit": 1000, "level": params.get("level")}
        self.out.flush()

    def _first_sight(self, key: Any) -> bool:
        """False for a log line already shown (by its event id, or its log id)."""
        if key is None or key == "":
            return True
        if key in self._seen_logs:
            return False
        self._seen_logs.add(key)
        return True

    def _consume(self, task_id: str, events: Iterable[SseEvent]) -> tuple[str, str | None] | None:
        for event in events:
            if event.event == KEEPALIVE:
                # Idle: did the task end before the stream was opened, unseen by the state read then?
                if time.monotonic() - self._checked >= IDLE_RECHECK_SECONDS:
                    self._checked = time.monotonic()
                    task = self.client.get_task(task_id)
                    if task.get("status") in TERMINAL_TASK_STATUSES:
                        return str(task["status"]), task.get("error_message")
                continue
            kind, payload = event_kind_and_payload(event)
            event_id = event.data.get("event_id") if isinstance(event.data, dict) else None
            if self.as_json:
                if kind != "log_emitted" or self._first_sight(event_id):
                    print(json.dumps({"type": kind, **payload}, default=str), file=self.out)
                    self.out.flush()
            elif kind == "log_emitted" or (kind == "log" and "message" in payload):
                self._log(payload, event_id)
            elif kind == "step_retry_scheduled":
                self._emit(
                    f"-- {payload.get('step')}: retry {payload.get('next_attempt')} in "
                    f"{payload.get('delay_seconds')}s ({payload.get('reason')})"
                )
            elif self.view.apply(kind, payload):
                self._step_changed()
            if kind == "task_finished":
                return str(payload.get("status")), payload.get("error_message")
            if kind == "review_requested":
                return "awaiting_review", _why({"status": "awaiting_review", "task_id": task_id})
            if kind == "task_deleted":
                return "deleted", None
        return None

    def _log(self, payload: dict[str, Any], event_id: Any = None) -> None:
        if not self.show_logs or not self._first_sight(event_id):
            return
        level = str(payload.get("level") or "INFO").upper()
        if level in LOG_LEVELS and LOG_LEVELS.index(level) < self.min_level:
            return
        self._emit(log_line(payload))

    def _catch_up(self, task_id: str) -> None:
        """At the end: every step's final state and the log lines the stream did not bring."""
        deadline = time.monotonic() + CATCH_UP_SECONDS
        while True:
            try:
                task = self.client.get_task(task_id)
            except (ApiError, GatewayUnreachable):
                return
            if task.get("status") in STOPS:
                break  # the API's state has caught up with the end
            if time.monotonic() >= deadline:
                return
            time.sleep(0.2)
        self._backfill_logs(task_id)
        self.view.load(task)
        if self.as_json:
            print(json.dumps({"type": "task_state", "task": task}, default=str), file=self.out)
        else:
            self._step_changed()

    def _finish(self, task_id: str, status: str, error: str | None) -> str:
        if status != "deleted":
            self._catch_up(task_id)
        if self.as_json:
            print(
                json.dumps({"type": "result", "task_id": task_id, "status": status, "error": error}),
                file=self.out,
            )
        else:
            self._erase()
            self._draw()
            self._drawn = 0
            print(f"task {task_id}: {status}" + (f" ({error})" if error else ""), file=self.out)
        self.out.flush()
        return status


def _why(task: dict[str, Any]) -> str | None:
    """What the task's end says; a task awaiting review says how to go on."""
    if task.get("status") == "awaiting_review":
        return f"review its pairs: dpctl task review {task.get('task_id')}"
    return task.get("error_message")


def follow_logs(
    client: GatewayClient, task_id: str, params: dict[str, Any], out: TextIO, *, as_json: bool = False
) -> None:
    """Stream log lines until the task ends (the gateway closes the stream and the task is finished)."""
    after = params.pop("after", None)
    reconnects = 0

    def show(line: dict[str, Any]) -> None:
        nonlocal after
        if isinstance(line.get("id"), int):
            after = line["id"]
        print(json.dumps(line, default=str) if as_json else log_line(line), file=out)
        out.flush()

    while True:
        got_any = False
        checked = time.monotonic()
        try:
            with client.stream(
                f"/tasks/{task_id}/logs", params={**params, "follow": True, "after": after}, keepalives=True
            ) as events:
                for event in events:
                    if event.event == KEEPALIVE:
                        # Idle: the task may have ended just before the stream was opened.
                        if time.monotonic() - checked >= IDLE_RECHECK_SECONDS:
                            checked = time.monotonic()
                            if client.get_task(task_id).get("status") in TERMINAL_TASK_STATUSES:
                                break
                        continue
                    kind, payload = event_kind_and_payload(event)
                    if "message" in payload and kind not in {"end", "error"}:
                        got_any = True
                        show(payload)
                    elif kind in {"task_finished", "end", "done"}:
                        return
        except GatewayUnreachable:
            pass  # reconnect below
        task = client.get_task(task_id)
        if task.get("status") in TERMINAL_TASK_STATUSES:
            # Lines stored after the stream's backlog was read but never streamed.
            for line in (
                client.logs(task_id, **{**params, "after": after, "limit": 1000, "order": "asc"}).get("logs")
                or []
            ):
                if not (isinstance(line.get("id"), int) and after is not None and line["id"] <= after):
                    show(line)
            return
        reconnects = 0 if got_any else reconnects + 1
        if reconnects > MAX_RECONNECTS:
            return
        time.sleep(RECONNECT_DELAY_SECONDS)

// The open task kept live: server-sent events read with fetch (so the Authorization header can be sent).
// follow() keeps the open task live: it (re)opens the stream while the task runs; when the connection
// drops it retries with backoff (1, 2, 4 … 15 s), sends the last event id it saw, and polls the task
// meanwhile, so the page never shows a frozen state as if it were live.

import { $ } from "./dom.js";
import { authHeaders, setConn, sleep } from "./http.js";
import { loadFiles } from "./files.js";
import { appendLog, catchUpLogs } from "./logs.js";
import { TERMINAL, isRunning } from "./steps.js";
import { loadTasks } from "./tasklist.js";
import { timelineChanged } from "./timeline.js";

let state = null; // the detail's state (app.js): selected, task, stream, watch, timers, lastEventId
let hooks = null; // refreshDetail, renderDetail, redrawSteps, streamUrl

export function initLive(detailState, detailHooks) {
  state = detailState;
  hooks = detailHooks;
}

export function setLive(kind, text) {
  const texts = { on: "● live", off: "○ not live", wait: text, lost: text };
  $("live").textContent = texts[kind];
  $("live").className = `live ${kind === "on" ? "on" : kind === "lost" ? "lost" : "muted"}`;
}

export function closeStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  setLive("off");
}

export function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(() => { hooks.refreshDetail(); loadTasks(); }, 3000);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { hooks.refreshDetail(); loadTasks(); timelineChanged(); }, 300);
}

export async function follow(taskId, gen) {
  let failures = 0;
  while (gen === state.watch) {
    const outcome = await streamOnce(taskId, gen);
    if (gen !== state.watch) return;
    if (outcome.connected) failures = 0;
    const ended = outcome.end && TERMINAL.includes(outcome.end.status);
    if (ended || outcome.finished) {
      // The run is over. The task's row may lag a moment behind the stream's end: ask until it agrees.
      stopPolling();
      setLive("off");
      for (let i = 0; i < 40 && gen === state.watch; i++) {
        const t = await hooks.refreshDetail();
        if (gen !== state.watch || state.selected !== taskId) return; // gone (404): refreshDetail said so
        if (t && !isRunning(t)) break;
        await sleep(750);
      }
      catchUpLogs(); // lines stored after the stream's end
      timelineChanged(); // and events
      loadTasks();
      return;
    }
    if (outcome.end && outcome.end.reason !== "shutdown" && outcome.end.reason !== "overflow") {
      stopPolling();
      const t = await hooks.refreshDetail();
      if (gen !== state.watch || state.selected !== taskId) return;
      if (t && !isRunning(t)) {
        setLive("off");
        catchUpLogs();
        loadTasks();
        return;
      }
      if (t) continue; // ended while the task still runs: open it again
    }
    failures += 1;
    const delay = Math.min(15000, 500 * 2 ** (failures - 1));
    const why = outcome.reason || "connection lost";
    setLive("lost", `○ ${why}: reconnecting in ${Math.ceil(delay / 1000)}s (attempt ${failures}); polling meanwhile`);
    startPolling();
    await sleep(delay);
  }
}

// One connection: resolves with {connected, end} (end: the server's "end" data, when it sent one).
async function streamOnce(taskId, gen) {
  const controller = new AbortController();
  controller.taskId = taskId;
  state.stream = controller;
  const outcome = { connected: false, end: null, finished: false, reason: null };
  const headers = { ...authHeaders(), Accept: "text/event-stream" };
  if (state.lastEventId) headers["Last-Event-ID"] = state.lastEventId;
  try {
    const resp = await fetch(hooks.streamUrl(taskId), { headers, signal: controller.signal });
    if (resp.status === 404) {
      hooks.refreshDetail(); // shows "not found" and stops watching
      return { connected: true, end: { reason: "deleted" } };
    }
    if (!resp.ok || !resp.body) {
      outcome.reason = `live updates refused (HTTP ${resp.status})`;
      throw new Error(outcome.reason);
    }
    outcome.connected = true;
    setConn(true);
    stopPolling();
    setLive("on");
    const reader = resp.body.pipeThrough(new TextDecoderStream()).getReader();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += value;
      let cut;
      while ((cut = buffer.indexOf("\n\n")) >= 0) {
        const frame = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        if (gen !== state.watch) return outcome;
        const end = handleFrame(frame);
        if (end) outcome.end = end;
      }
    }
  } catch (err) {
    if (err.name !== "AbortError" && gen === state.watch && !outcome.connected) setConn(false);
    outcome.finished = Boolean(controller.finished);
  } finally {
    if (state.stream === controller) state.stream = null;
  }
  return outcome;
}

// Applies one SSE frame; returns the "end" event's data.
function handleFrame(frame) {
  let event = "message";
  let id = null;
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
    else if (line.startsWith("id:")) id = line.slice(3).trim();
  }
  if (!data.length) return null;
  if (id) state.lastEventId = id;
  const payload = JSON.parse(data.join("\n"));
  if (event === "end") return payload;
  if (event === "snapshot") {
    // The current state on every (re)connection; the log view catches up with what was missed.
    if (payload.task_id === state.selected) {
      hooks.renderDetail(payload);
      loadFiles(payload.task_id);
      catchUpLogs();
    }
    return null;
  }
  const p = payload.payload || {};
  const t = state.task;
  if (event === "log_emitted") {
    appendLog({ event_id: payload.event_id, timestamp: payload.occurred_at, level: p.level, message: p.message, step_name: p.step });
    return null;
  }
  const step = t && t.steps.find((s) => s.step === p.step);
  if (event === "step_started" && step) {
    Object.assign(step, { status: "running", progress: 0, started_at: payload.occurred_at, attempts: Math.max(step.attempts, p.attempt || 1) });
    hooks.redrawSteps();
  }
  if (event === "step_progress" && step) {
    // Progress of a step that is already finished (a late event) does not make it "running" again.
    if (!["completed", "failed", "cancelled", "skipped"].includes(step.status)) {
      step.status = "running";
      step.progress = Math.round(p.percent);
      hooks.redrawSteps();
    }
    return null;
  }
  if (event !== "step_heartbeat") scheduleRefresh();
  return null;
}

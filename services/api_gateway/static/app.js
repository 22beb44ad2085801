// The Data Pipeline web UI, plain ES modules over the gateway's JSON API and its server-sent events (no
// build step). This module is the composition root: the task detail (steps, progress, commands) and its
// live stream; the other modules hold one part each (tasklist, form, logs, files, timeline, report) or one
// view (training, system; views.js routes between them).

import { $, badge, el, flash, fmtDur, fmtTime } from "./dom.js";
import { TOKEN_KEY, api, authHeaders, setConn, sleep } from "./http.js";
import { initFiles, loadFiles } from "./files.js";
import { initForm } from "./form.js";
import { appendLog, catchUpLogs, initLogs, loadLogs, resetLogs } from "./logs.js";
import { executionsRow } from "./executions.js";
import { renderReport } from "./report.js";
import { initTaskList, loadTasks } from "./tasklist.js";
import { initTimeline, showTimeline, timelineChanged } from "./timeline.js";
import { currentView, registerView, route } from "./views.js";
import "./training.js";
import "./system.js";

const API = "/api/v0/data_pipeline";
const TERMINAL = ["completed", "partial_completed", "failed", "cancelled"];

const state = {
  selected: null, // the task whose detail is open
  task: null, // its latest detail (the snapshot, then updated by events and refreshes)
  stream: null, watch: 0, // the open event stream's AbortController; the generation of the detail being watched
  refreshTimer: null, pollTimer: null,
  openSteps: new Set(), // the steps whose execution history is open
};

// An action's failure under the detail; a 401 is left to the token prompt, the one place that asks for it.
function reportError(err, prefix = "") {
  if (err.status !== 401) flash("detail-msg", prefix + err.message, false);
}

// --- detail -------------------------------------------------------------------------------------

// A task chosen by the user is a history entry of its own (Back returns to the previous one).
function openTask(taskId) {
  if (location.hash.slice(1) !== taskId) history.pushState(null, "", "#" + taskId);
  selectTask(taskId);
}

function hashTask() {
  const id = decodeURIComponent(location.hash.slice(1));
  return /^(task|manual)_[0-9_a-z]+$/.test(id) ? id : null;
}

window.addEventListener("popstate", () => {
  if (currentView() !== "tasks") return; // another view: the task stays as it was
  const id = hashTask();
  if (id && id !== state.selected) selectTask(id);
  else if (!id) clearDetail("Select a task");
});

function clearDetail(title) {
  state.watch += 1;
  closeStream();
  stopPolling();
  state.selected = null;
  state.task = null;
  $("detail").hidden = true;
  $("detail-title").textContent = title;
  showPane(false);
  document.querySelectorAll("tr.task").forEach((r) => { r.classList.remove("sel"); r.removeAttribute("aria-current"); });
}

// On a phone the list and the detail are separate views (app.css): the body says which one is shown.
function showPane(detail) {
  const was = document.body.classList.contains("detail-open");
  document.body.classList.toggle("detail-open", detail);
  if (was !== detail && window.matchMedia("(max-width: 700px)").matches) window.scrollTo(0, 0);
}

async function selectTask(taskId) {
  const gen = ++state.watch;
  showPane(true);
  closeStream();
  stopPolling();
  if (taskId !== state.selected) state.openSteps.clear();
  state.selected = taskId;
  state.task = null;
  state.lastEventId = null;
  document.querySelectorAll("tr.task").forEach((r) => {
    r.classList.toggle("sel", r.dataset.id === taskId);
    if (r.dataset.id === taskId) r.setAttribute("aria-current", "true"); else r.removeAttribute("aria-current");
  });
  $("missing").hidden = true;
  $("table-list-note").hidden = true;
  resetLogs();
  showTimeline(taskId);
  const t = await refreshDetail();
  if (gen !== state.watch || !t) return;
  $("detail").hidden = false;
  loadLogs();
  follow(taskId, gen);
}

// GET the task and show it; null (and the reason shown) when it cannot be read.
async function refreshDetail() {
  const taskId = state.selected;
  if (!taskId) return null;
  let t;
  try {
    t = await api("GET", `/tasks/${taskId}`);
  } catch (err) {
    if (taskId !== state.selected) return null;
    if (err.status === 404) {
      // Deleted (or never existed): nothing to act on, and nothing more to ask the server.
      clearDetail("Task not found");
      showPane(true);
      $("missing").textContent = `Task ${taskId} was not found: it was deleted, or the link is wrong.`;
      $("missing").hidden = false;
      history.replaceState(null, "", location.pathname + location.search);
      loadTasks();
    } else if (err.status === 401) {
      $("detail-title").textContent = `Task ${taskId}: enter the API token to open it`;
    } else {
      reportError(err);
    }
    return null;
  }
  if (taskId !== state.selected) return null;
  renderDetail(t);
  loadFiles(taskId);
  return t;
}

const isRunning = (t) => t && !TERMINAL.includes(t.status);

function renderDetail(t) {
  const before = state.task;
  state.task = t;
  $("detail-title").replaceChildren(t.task_name || t.task_id, " ", badge(t.status));
  if (before && before.task_id === t.task_id && before.status !== t.status) announce(`Task ${t.task_name || t.task_id} is ${t.status}`);
  const p = t.parameters || {};
  const kv = [
    ["task id", t.task_id], ["database", p.db_connection || "—"], ["business context", t.business_context || "—"],
    ["mode", t.execution_mode + (t.single_step ? ` (step ${t.single_step})` : "")],
    ["current step", t.current_step || "—"], ["created", fmtTime(t.created_at)],
    ["started", fmtTime(t.started_at)], ["completed", fmtTime(t.completed_at)],
    ["duration", el("span", { id: "task-duration" }, fmtDur(t.duration))],
    ["output directory", t.output_directory || "—"],
  ];
  $("detail-kv").replaceChildren(...kv.flatMap(([k, v]) => [el("div", {}, k), el("div", {}, v instanceof Node ? v : String(v))]));
  if (t.error_message) $("detail-kv").append(el("div", {}, "error"), el("div", { class: "err" }, t.error_message));
  const running = isRunning(t);
  // A refresh that finds the run over ends a stream still open for it (its end may never come if the
  // stream was opened after the task's last event).
  if (!running && state.stream && state.stream.taskId === t.task_id) {
    state.stream.finished = true;
    state.stream.abort();
  }
  $("cancel").disabled = !running;
  $("rerun").disabled = running;
  showTableListSource(p);
  renderSteps();
  renderReport(t.result);
  tick();
}

// A task created with table names runs those names every time (step 1 prefers them to any file), so an
// upload would change nothing: the control is offered only to tasks whose tables come from a file.
function showTableListSource(p) {
  const names = Array.isArray(p.table_list) && p.table_list.length && !p.table_list_file ? p.table_list : null;
  $("table-list-upload").hidden = Boolean(names);
  $("table-list-fixed").hidden = !names;
  if (names) {
    $("table-list-fixed").textContent =
      `This task's ${names.length} table(s) were given as names when it was created; every run uses them. ` +
      "To run other tables, create a task with them (or with a table-list file, which can then be replaced here).";
  }
}

// The run's steps from the model in state.task (live events update the model, then this redraws it).
function renderSteps() {
  const t = state.task;
  const running = isRunning(t);
  // The plan: why a step is not part of this run (outside the range, single mode, disabled).
  const notRun = Object.fromEntries((t.plan || []).filter((p) => !p.runs).map((p) => [p.step, p.reason]));
  // The attempts cell opens the step's execution history (kept open across redraws).
  const history = (s) => {
    const open = state.openSteps.has(s.step);
    return el("button", {
      class: "ghost small-btn", type: "button", "aria-expanded": String(open), "aria-controls": `execs-${s.step}`,
      "aria-label": `${s.attempts} execution(s) of ${s.step}: ${open ? "hide" : "show"} the history`,
      onclick: () => { if (open) state.openSteps.delete(s.step); else state.openSteps.add(s.step); renderSteps(); },
    }, String(s.attempts));
  };
  $("steps").replaceChildren(
    ...t.steps.flatMap((s) => [
      el(
        "tr",
        { "data-step": s.step },
        el("td", {}, String(s.step_number)),
        el("td", {}, s.step),
        el("td", {}, stepBadge(s, running), s.status === "running" ? ` ${s.progress}%` : ""),
        el("td", {}, history(s)),
        el("td", { class: "dur", title: s.started_at ? `started ${fmtTime(s.started_at)}${s.completed_at ? `, ended ${fmtTime(s.completed_at)}` : ""}` : null }, fmtDur(s.duration)),
        stepNote(s, notRun[s.step]),
        el("td", {}, el("button", { class: "ghost", "aria-label": `run step ${s.step_number} ${s.step}`, onclick: () => execute({ single_step: s.step_number }), ...(running ? { disabled: "" } : {}) }, "run")),
      ),
      ...(state.openSteps.has(s.step) ? [executionsRow(s, 7)] : []),
    ]),
  );
  showProgress();
}

// What the step's latest execution reported: failed tables (step 1 documents the others) or another
// partial outcome make a completed step "completed with warnings", never a plain green "completed".
function stepWarning(s) {
  if (s.status !== "completed") return null;
  const r = (s.executions || []).at(-1)?.result || {};
  const failed = Array.isArray(r.tables_failed) ? r.tables_failed.map((f) => (typeof f === "string" ? f : f.table)) : [];
  if (failed.length) {
    const requested = r.tables_requested ?? failed.length + (r.tables_succeeded ?? 0);
    const names = failed.slice(0, 5).join(", ") + (failed.length > 5 ? ` and ${failed.length - 5} more` : "");
    return `${failed.length} of ${requested} tables failed: ${names}`;
  }
  return r.partial ? r.partial_reason || "completed only in part" : null;
}

function stepBadge(s, running) {
  if (stepWarning(s)) return el("span", { class: "status s-partial_completed" }, "completed with warnings");
  // A finished task's step that never ran is not waiting for anything.
  if (!running && s.status === "pending") return el("span", { class: "status s-skipped" }, "not run");
  return badge(s.status);
}

// The step's last cell: its error while failed, its warning, or why it is not part of this run. Only the
// latest execution speaks: an old failure is not shown once a later run of the step succeeded.
function stepNote(s, notRunReason) {
  const warning = stepWarning(s);
  if (warning) return el("td", { class: "warn" }, warning);
  if (s.error_message && ["failed", "cancelled"].includes(s.status)) return el("td", { class: "err" }, s.error_message);
  if (notRunReason) return el("td", { class: "muted" }, `not in this run: ${notRunReason}`);
  return el("td", { class: "err" }, "");
}

// The overall progress: the steps this run does, each counted by its own progress (a finished one as
// 100%). The bar and the task's row in the list show the same number.
function overallProgress(t) {
  if (!isRunning(t)) return t.progress;
  const runs = new Set((t.plan || []).filter((p) => p.runs).map((p) => p.step));
  const steps = t.steps.filter((s) => !runs.size || runs.has(s.step));
  if (!steps.length) return t.progress;
  const done = steps.reduce((sum, s) => sum + (["completed", "skipped"].includes(s.status) ? 100 : s.status === "running" ? s.progress : 0), 0);
  return Math.max(0, Math.min(100, Math.round(done / steps.length)));
}

function showProgress() {
  const pct = overallProgress(state.task);
  $("progress").style.width = `${pct}%`;
  $("progress-box").setAttribute("aria-valuenow", String(pct));
  $("progress-text").textContent = `${pct}%`;
  showListProgress(state.task);
}

function showListProgress(t) {
  const cell = document.querySelector(`tr.task[data-id="${CSS.escape(t.task_id)}"] .pct`);
  if (cell) cell.textContent = `${overallProgress(t)}%`;
}

// Running durations tick once a second (from started_at), for the task and its running steps.
function tick() {
  const t = state.task;
  if (!t || !isRunning(t)) return;
  const since = (iso) => (iso ? Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000) : null);
  if (t.started_at && $("task-duration")) $("task-duration").textContent = fmtDur(since(t.started_at));
  t.steps.forEach((s) => {
    const row = $("steps").querySelector(`tr[data-step="${s.step}"]`);
    if (s.status === "running" && s.started_at && row) row.querySelector(".dur").textContent = fmtDur(since(s.started_at));
  });
}
setInterval(tick, 1000);

function announce(text) {
  $("announce").textContent = text;
}

// The final report (`result`) of a finished run, compact: a line per step with its counts, then the

// --- commands -----------------------------------------------------------------------------------

// Which run the detail shows: a re-run has started when any of these changes.
const runMark = (t) => JSON.stringify([t.status, t.started_at, t.completed_at, t.steps.map((s) => s.attempts)]);

async function execute(body) {
  const taskId = state.selected;
  const gen = ++state.watch; // whatever watched the finished run stops here
  closeStream();
  const before = state.task ? runMark(state.task) : null;
  try {
    const data = await api("POST", `/tasks/${taskId}/execute`, body);
    flash("detail-msg", data.response, true);
  } catch (err) {
    reportError(err);
    return;
  }
  $("rerun").disabled = true;
  setLive("wait", "starting…");
  // The command is accepted, not yet applied: wait until the task shows the new run, then follow it live.
  const deadline = Date.now() + 60000;
  while (gen === state.watch && Date.now() < deadline) {
    const t = await refreshDetail();
    if (gen !== state.watch) return;
    if (t && runMark(t) !== before) break; // the new run started (or already finished)
    await sleep(500);
  }
  if (gen !== state.watch) return;
  loadLogs();
  follow(taskId, gen);
}

$("to-list").addEventListener("click", () => {
  clearDetail("Select a task");
  history.pushState(null, "", location.pathname + location.search);
});
$("rerun").addEventListener("click", () => execute({ execution_mode: "complete" }));
$("cancel").addEventListener("click", async () => {
  try {
    flash("detail-msg", (await api("POST", `/tasks/${state.selected}/cancel`, {})).response, true);
  } catch (err) {
    reportError(err);
  }
});
$("delete").addEventListener("click", async () => {
  if (!confirm(`Delete ${state.selected} with its files and records?`)) return;
  try {
    await api("DELETE", `/tasks/${state.selected}`);
    clearDetail("Select a task");
    history.pushState(null, "", location.pathname + location.search);
    await loadTasks();
  } catch (err) {
    reportError(err);
  }
});
$("upload").addEventListener("click", async () => {
  const file = $("table-file").files[0];
  if (!file) return flash("detail-msg", "choose a .txt file first", false);
  const form = new FormData();
  form.append("file", file, file.name);
  const taskId = state.selected;
  try {
    const data = await api("POST", `/tasks/${taskId}/upload-table-list`, form);
    if (taskId !== state.selected) return;
    const names = data.tables.slice(0, 5).join(", ") + (data.tables.length > 5 ? ", …" : "");
    $("table-list-note").textContent =
      `${data.file_name}: ${data.table_count} tables (${names}). The next run of this task reads it (Run again, or step 1).`;
    $("table-list-note").hidden = false;
    $("table-file").value = "";
  } catch (err) {
    reportError(err);
  }
});

// --- live events (SSE read with fetch, so the Authorization header can be sent) ----------------
// follow() keeps the open task live: it (re)opens the stream while the task runs; when the connection
// drops it retries with backoff (1, 2, 4 … 15 s), sends the last event id it saw, and polls the task
// meanwhile, so the page never shows a frozen state as if it were live.

function setLive(kind, text) {
  const texts = { on: "● live", off: "○ not live", wait: text, lost: text };
  $("live").textContent = texts[kind];
  $("live").className = `live ${kind === "on" ? "on" : kind === "lost" ? "lost" : "muted"}`;
}

function closeStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  setLive("off");
}

function stopPolling() {
  clearInterval(state.pollTimer);
  state.pollTimer = null;
}

function startPolling() {
  if (state.pollTimer) return;
  state.pollTimer = setInterval(() => { refreshDetail(); loadTasks(); }, 3000);
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { refreshDetail(); loadTasks(); timelineChanged(); }, 300);
}

async function follow(taskId, gen) {
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
        const t = await refreshDetail();
        if (gen !== state.watch || state.selected !== taskId) return; // gone (404): refreshDetail said so
        if (t && !isRunning(t)) break;
        await sleep(750);
      }
      catchUpLogs(); // lines stored after the stream's end
      loadTasks();
      return;
    }
    if (outcome.end && outcome.end.reason !== "shutdown" && outcome.end.reason !== "overflow") {
      stopPolling();
      const t = await refreshDetail();
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
    const resp = await fetch(`${API}/tasks/${taskId}/stream`, { headers, signal: controller.signal });
    if (resp.status === 404) {
      refreshDetail(); // shows "not found" and stops watching
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
      renderDetail(payload);
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
    renderSteps();
    tick();
  }
  if (event === "step_progress" && step) {
    // Progress of a step that is already finished (a late event) does not make it "running" again.
    if (!["completed", "failed", "cancelled", "skipped"].includes(step.status)) {
      step.status = "running";
      step.progress = Math.round(p.percent);
      renderSteps();
      tick();
    }
    return null;
  }
  if (event !== "step_heartbeat") scheduleRefresh();
  return null;
}


// --- wiring -------------------------------------------------------------------------------------

registerView("tasks", { label: "Tasks" });
$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("token").addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-msg").hidden = true;
  $("token").removeAttribute("aria-invalid");
  $("detail-msg").className = "msg"; // what failed without the token is not this token's failure
  loadTasks();
  if (state.selected) selectTask(state.selected); // the open detail is fetched again with the new token
  route(); // the open view reads again too
});
initTaskList({
  openTask,
  currentTask: () => state.selected,
  afterLoad: () => { if (state.task) showListProgress(state.task); },
  onDeleted: (ids) => {
    if (ids.includes(state.selected)) {
      clearDetail("Select a task");
      history.pushState(null, "", location.pathname + location.search);
    }
  },
});
initForm({ onCreated: async (taskId) => { await loadTasks(); openTask(taskId); } });
initLogs({ currentTask: () => state.selected, reportError });
initFiles();
initTimeline();
route();
loadTasks();
// A link to /#<task_id> opens that task (make run and dpctl print such links).
if (hashTask()) selectTask(hashTask());
setInterval(() => { if (!document.hidden && currentView() === "tasks") loadTasks(); }, 10000);

// The Data Pipeline web UI, plain ES modules over the gateway's JSON API and its server-sent events (no
// build step). This module is the composition root: it opens and closes the task detail and runs its
// commands; the other modules hold one part each (tasklist, form, steps, executions, live, logs, files,
// timeline, report) or one view (training, system; views.js routes between the views).

import { $, badge, el, flash, fmtDur, fmtTime } from "./dom.js";
import { TOKEN_KEY, api, sleep } from "./http.js";
import { initFiles, loadFiles } from "./files.js";
import { initForm } from "./form.js";
import { initLogs, loadLogs, resetLogs } from "./logs.js";
import { closeStream, follow, initLive, setLive, stopPolling } from "./live.js";
import { renderReport } from "./report.js";
import { isRunning, renderSteps, showListProgress, tick } from "./steps.js";
import { initTaskList, loadTasks } from "./tasklist.js";
import { initTimeline, showTimeline } from "./timeline.js";
import { currentView, registerView, route } from "./views.js";
import "./training.js";
import "./system.js";

const API = "/api/v0/data_pipeline";

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
  if (location.hash.startsWith("#review=")) return; // the review screen (review.js) opens over the detail
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
  // Waiting for a person: the way to the review screen (review.js opens #review=<id> over the detail).
  $("review-box").hidden = t.status !== "awaiting_review";
  $("review-link").href = `#review=${encodeURIComponent(t.task_id)}`;
  showTableListSource(p);
  redrawSteps();
  renderReport(t.result);
}

// Where the task's tables come from. A task created with names has them written to table_list.txt by its
// first run; an upload replaces that file (or the task's own table-list file), and the next run reads it.
function showTableListSource(p) {
  const names = Array.isArray(p.table_list) && p.table_list.length && !p.table_list_file ? p.table_list : null;
  const box = $("table-list-source");
  const shown = names ? names.slice(0, 5).join(", ") + (names.length > 5 ? ", …" : "") : "";
  box.textContent = names
    ? `Created with ${names.length} table name(s) (${shown}); its runs read them from table_list.txt. ` +
      "An uploaded .txt replaces that list: the next run uses the uploaded tables instead of these names."
    : p.table_list_file ? `Created with the table-list file ${p.table_list_file}.` : "";
  box.hidden = !box.textContent;
}

function redrawSteps() {
  renderSteps(state.task, { openSteps: state.openSteps, run: (n) => execute({ single_step: n }), redraw: redrawSteps });
  tick(state.task);
}
setInterval(() => tick(state.task), 1000);

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
      `${data.file_name}: ${data.table_count} tables (${names}). The next run of this task (Run again, or step 1) uses these tables.`;
    $("table-list-note").hidden = false;
    $("table-file").value = "";
  } catch (err) {
    reportError(err);
  }
});

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
initLive(state, { refreshDetail, renderDetail, redrawSteps, streamUrl: (id) => `${API}/tasks/${id}/stream` });
initTimeline();
route();
loadTasks();
// A link to /#<task_id> opens that task (make run and dpctl print such links).
if (hashTask()) selectTask(hashTask());
setInterval(() => { if (!document.hidden && currentView() === "tasks") loadTasks(); }, 10000);

// The Data Pipeline web UI: plain JavaScript over the gateway's JSON API and its server-sent events.
// Every response is the envelope {code, success, message, data}; `data.response` is the text to show.
"use strict";

const API = "/api/v0/data_pipeline";
const TERMINAL = ["completed", "partial_completed", "failed", "cancelled"];
const $ = (id) => document.getElementById(id);

const state = {
  selected: null, // the task whose detail is open
  task: null, // its latest detail (the snapshot, then updated by events and refreshes)
  cursor: null, listRows: 0, // the task list's next page and how many rows the user has loaded
  stream: null, watch: 0, // the open event stream's AbortController; the generation of the detail being watched
  refreshTimer: null, pollTimer: null,
  log: { seen: new Set(), older: null, total: 0, live: 0, loading: null, buffer: [], maxId: null },
};

// --- HTTP ---------------------------------------------------------------------------------------

// The token lives in sessionStorage (this tab only, gone when it closes), never in localStorage, which
// every tab and every later visit could read. A token an older version left in localStorage is removed.
const TOKEN_KEY = "dp_token";
try { localStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }

function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  return token ? { Authorization: `Bearer ${token}` } : {};
}

async function api(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(API + path, init);
  } catch (err) {
    setConn(false);
    throw new Error(`gateway unreachable: ${err.message}`);
  }
  setConn(true);
  if (resp.status === 401) askForToken();
  const envelope = await resp.json().catch(() => ({ success: false, data: { response: `HTTP ${resp.status}` } }));
  if (!envelope.success) {
    const d = envelope.data || {};
    const names = [...(d.missing_params || []), ...(d.invalid_params || [])];
    const text = d.response || `HTTP ${resp.status}`;
    const error = new Error(text + (names.length && !text.includes(names[0]) ? ` (${names.join(", ")})` : ""));
    error.status = resp.status;
    error.data = d;
    throw error;
  }
  return envelope.data;
}

function setConn(ok) {
  $("conn").textContent = ok ? "" : "gateway unreachable";
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A 401 means this gateway has tokens configured: say so next to the token field and put the cursor there
// (once, so a later 401 never pulls focus away from what the user is typing).
function askForToken() {
  const had = Boolean(sessionStorage.getItem(TOKEN_KEY));
  const msg = $("token-msg");
  msg.textContent = had ? "This token was refused: enter a valid API token." : "This gateway needs an API token: enter it here.";
  msg.hidden = false;
  $("token").setAttribute("aria-invalid", "true");
  if (document.activeElement === document.body) $("token").focus();
}

// --- small DOM helpers (text only: nothing from the server is inserted as HTML) ---------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

const badge = (status) => el("span", { class: `status s-${status}` }, status);
const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
const fmtDur = (s) => (s == null ? "—" : s < 90 ? `${Math.round(s)}s` : `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`);
const fmtSize = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

// An action's failure under the detail; a 401 is left to the token prompt, the one place that asks for it.
function reportError(err, prefix = "") {
  if (err.status !== 401) flash("detail-msg", prefix + err.message, false);
}

function flash(id, text, good) {
  const box = $(id);
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
  clearTimeout(box._t);
  box._t = setTimeout(() => (box.className = "msg"), 6000);
}

// --- task list ----------------------------------------------------------------------------------

function listParams() {
  const params = new URLSearchParams();
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  if ($("filter-search").value.trim()) params.set("search", $("filter-search").value.trim());
  return params;
}

function taskRow(t) {
  const open = () => openTask(t.task_id);
  const row = el(
    "tr",
    {
      class: `task${t.task_id === state.selected ? " sel" : ""}`, tabindex: "0", onclick: open,
      onkeydown: (ev) => { if (ev.key === "Enter" || ev.key === " ") { ev.preventDefault(); open(); } },
    },
    el("td", {}, el("div", {}, t.task_name || t.task_id), el("div", { class: "muted" }, t.task_name ? t.task_id : t.db_name || "")),
    el("td", {}, badge(t.status)),
    el("td", { class: "pct" }, `${t.progress}%`),
    el("td", { class: "muted" }, fmtTime(t.created_at)),
  );
  row.dataset.id = t.task_id;
  if (t.task_id === state.selected) row.setAttribute("aria-current", "true");
  return row;
}

// The server's `search` looks at task names and business contexts only; a task id and a database name
// are found by exact lookups (GET /tasks/{id}, GET /tasks?db_name=) shown above the search's rows.
// Only a whole id is looked up (a half-typed one would be a 404 on every keystroke).
const TASK_ID = /^(task|manual)_\d{8}_\d{6}(_[0-9a-z]+)?$/;

async function exactMatches(text) {
  const found = [];
  if (TASK_ID.test(text)) {
    try {
      found.push(await api("GET", `/tasks/${encodeURIComponent(text)}`));
    } catch (err) {
      if (err.status !== 404) throw err;
    }
  }
  if (/^[\w$-]{1,100}$/.test(text)) {
    const params = listParams();
    params.delete("search");
    params.set("db_name", text);
    params.set("limit", "100");
    found.push(...(await api("GET", `/tasks?${params}`)).tasks);
  }
  const status = $("filter-status").value;
  return found.filter((t) => !status || t.status === status);
}

// The list's filters live in the query string (?status=&q=), the open task in the hash.
function saveListFilters() {
  const q = new URLSearchParams();
  if ($("filter-status").value) q.set("status", $("filter-status").value);
  if ($("filter-search").value.trim()) q.set("q", $("filter-search").value.trim());
  const search = q.toString() ? `?${q}` : "";
  if (search !== location.search) history.replaceState(history.state, "", location.pathname + search + location.hash);
}

function loadListFilters() {
  const q = new URLSearchParams(location.search);
  $("filter-status").value = q.get("status") || "";
  $("filter-search").value = q.get("q") || "";
}

// `append`: the next page ("more"). Otherwise the list is fetched again from the top, as many rows as the
// user has loaded (so the auto-refresh never takes back what "more" showed).
async function loadTasks(append = false) {
  const want = append ? 20 : Math.max(20, state.listRows);
  const rows = [];
  let cursor = append ? state.cursor : null;
  let data;
  try {
    do {
      const params = listParams();
      params.set("limit", String(Math.min(100, want - rows.length)));
      if (cursor) params.set("cursor", cursor);
      data = await api("GET", `/tasks?${params}`);
      rows.push(...data.tasks);
      cursor = data.next_cursor;
    } while (cursor && rows.length < want);
    const text = $("filter-search").value.trim();
    if (text && !append) {
      const seen = new Set(rows.map((t) => t.task_id));
      const extra = (await exactMatches(text)).filter((t) => !seen.has(t.task_id) && seen.add(t.task_id));
      rows.unshift(...extra);
      data = { ...data, total: data.total + extra.length };
    }
  } catch (err) {
    $("total").textContent = err.status === 401 ? "enter the API token to see the tasks" : err.message;
    return;
  }
  const body = $("task-rows");
  const focused = document.activeElement?.closest?.("tr.task")?.dataset.id;
  if (!append) body.replaceChildren();
  body.append(...rows.map(taskRow));
  if (focused) body.querySelector(`tr.task[data-id="${CSS.escape(focused)}"]`)?.focus();
  state.listRows = body.children.length;
  state.cursor = cursor;
  $("more").hidden = !cursor;
  $("total").textContent = `${state.listRows} of ${data.total} task(s)`;
  if (state.task) showListProgress(state.task);
}

// --- create -------------------------------------------------------------------------------------

// Errors are shown under their own field (the API's errors[] name the field and say what is wrong) and
// stay until that field is changed; the banner only sums up. Fields the form has no place for go there.
const FORM_FIELDS = ["db_connection", "table_list", "table_list_file", "business_context", "task_name", "db_name",
  "single_step", "theme_count", "questions_per_theme", "llm_repair_rounds"];

function fieldInput(name) {
  return $("create").elements[name];
}

function setFieldError(name, text) {
  const box = $(`err-${name}`);
  const input = fieldInput(name);
  if (!box || !input) return false;
  box.textContent = text;
  box.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  return true;
}

function clearFieldErrors() {
  FORM_FIELDS.forEach((name) => setFieldError(name, ""));
}

// Returns the messages no field could take.
function showFieldErrors(err) {
  const d = err.data || {};
  const byField = {};
  for (const e of d.errors || []) (byField[e.field] ||= []).push(e.message);
  for (const name of d.missing_params || []) (byField[name] ||= []).push("required");
  for (const name of d.invalid_params || []) if (!byField[name]) byField[name] = [d.response || "invalid"];
  if (!Object.keys(byField).length) return [err.message];
  const rest = [];
  for (const [name, messages] of Object.entries(byField)) {
    const text = [...new Set(messages)].join("; ");
    if (!setFieldError(name, text)) rest.push(`${name}: ${text}`);
  }
  return rest;
}

function showFormMessage(text, good) {
  const box = $("create-msg");
  clearTimeout(box._t);
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
  if (good) box._t = setTimeout(() => (box.className = "msg"), 6000);
}

for (const name of FORM_FIELDS) {
  const input = fieldInput(name);
  input?.addEventListener(input.type === "file" || input.tagName === "SELECT" ? "change" : "input", () => setFieldError(name, ""));
}

function syncStepMenu() {
  const single = $("f-execution-mode").value === "single";
  $("f-single-step").disabled = !single;
  if (!single) { $("f-single-step").value = ""; setFieldError("single_step", ""); }
  $("step-hint").hidden = !(single && Number($("f-single-step").value) > 1);
}
$("f-execution-mode").addEventListener("change", syncStepMenu);
$("f-single-step").addEventListener("change", syncStepMenu);
syncStepMenu();

$("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  clearFieldErrors();
  const tables = f.table_list.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  const file = f.table_list_file.files[0];
  const parameters = {
    db_connection: f.db_connection.value.trim(),
    business_context: f.business_context.value.trim(),
    execution_mode: f.execution_mode.value,
    enable_sql_validation: f.enable_sql_validation.checked,
    enable_llm_repair: f.enable_llm_repair.checked,
    modify_original_file: f.modify_original_file.checked,
    enable_training_data_load: f.enable_training_data_load.checked,
  };
  // Checked here too, so the obvious mistakes are marked at once (the server checks everything again).
  const local = {};
  if (!parameters.db_connection) local.db_connection = "required";
  if (!parameters.business_context) local.business_context = "required";
  if (tables.length && file) local.table_list_file = "give the tables as names or as a file, not both";
  if (parameters.execution_mode === "single" && !f.single_step.value) local.single_step = "choose the step to run";
  if (Object.keys(local).length) {
    Object.entries(local).forEach(([name, text]) => setFieldError(name, text));
    showFormMessage("Fix the marked fields.", false);
    fieldInput(Object.keys(local)[0]).focus();
    return;
  }
  if (tables.length) parameters.table_list = tables;
  for (const name of ["task_name", "db_name"]) if (f[name].value.trim()) parameters[name] = f[name].value.trim();
  for (const name of ["theme_count", "questions_per_theme", "llm_repair_rounds"]) {
    if (f[name].value !== "") parameters[name] = Number(f[name].value);
  }
  if (f.single_step.value) parameters.single_step = Number(f.single_step.value);
  let body = { task_type: "complete_workflow", parameters };
  if (file) {
    // The file goes with the create (multipart): step 1 reads it from the new task's directory.
    body = new FormData();
    body.append("task_type", "complete_workflow");
    body.append("parameters", JSON.stringify(parameters));
    body.append("table_list_file", file, file.name);
  }
  try {
    const data = await api("POST", "/tasks", body);
    showFormMessage(`created ${data.task_id}`, true);
    // The connection, database, context and settings stay for the next task; what names one task goes.
    for (const name of ["task_name", "table_list", "table_list_file"]) f[name].value = "";
    await loadTasks();
    openTask(data.task_id);
  } catch (err) {
    const rest = showFieldErrors(err);
    showFormMessage(rest.length ? rest.join("\n") : "Fix the marked fields.", false);
    const first = $("create").querySelector("[aria-invalid='true']");
    if (first) first.focus();
  }
});

// "Test connection": the tables the database offers, to tick into the list.
$("test-conn").addEventListener("click", async () => {
  const conn = $("f-db-connection").value.trim();
  setFieldError("db_connection", "");
  $("table-picker").hidden = true;
  if (!conn) return setFieldError("db_connection", "required");
  $("conn-result").textContent = "connecting…";
  let data;
  try {
    const schema = $("f-schema").value.trim();
    data = await api("POST", "/database/tables", { db_connection: conn, ...(schema ? { schema } : {}) });
  } catch (err) {
    $("conn-result").textContent = "";
    const rest = showFieldErrors(err);
    if (rest.length) setFieldError("db_connection", rest.join("; "));
    return;
  }
  const names = data.tables.map((t) => (typeof t === "string" ? t : `${t.schema}.${t.name}`));
  $("conn-result").textContent = `connection ok: ${data.total} table(s)`;
  const listed = () => new Set($("f-table-list").value.split(/[\n,]/).map((x) => x.trim()).filter(Boolean));
  const shown = names.slice(0, 300);
  $("table-picker-list").replaceChildren(
    ...shown.map((name, i) => el("label", { class: "pick" },
      el("input", { type: "checkbox", id: `pick-${i}`, value: name, ...(listed().has(name) ? { checked: "" } : {}),
        onchange: (ev) => {
          const set = listed();
          if (ev.target.checked) set.add(name); else set.delete(name);
          $("f-table-list").value = [...set].join("\n");
          setFieldError("table_list", "");
        } }),
      ` ${name}`)),
  );
  if (names.length > shown.length) $("table-picker-list").append(el("p", { class: "muted small" }, `first ${shown.length} shown`));
  $("table-picker").hidden = !names.length;
});

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
  showView(false);
  document.querySelectorAll("tr.task").forEach((r) => { r.classList.remove("sel"); r.removeAttribute("aria-current"); });
}

// On a phone the list and the detail are separate views (app.css): the body says which one is shown.
function showView(detail) {
  const was = document.body.classList.contains("detail-open");
  document.body.classList.toggle("detail-open", detail);
  if (was !== detail && window.matchMedia("(max-width: 700px)").matches) window.scrollTo(0, 0);
}

async function selectTask(taskId) {
  const gen = ++state.watch;
  showView(true);
  closeStream();
  stopPolling();
  state.selected = taskId;
  state.task = null;
  state.lastEventId = null;
  document.querySelectorAll("tr.task").forEach((r) => {
    r.classList.toggle("sel", r.dataset.id === taskId);
    if (r.dataset.id === taskId) r.setAttribute("aria-current", "true"); else r.removeAttribute("aria-current");
  });
  $("missing").hidden = true;
  $("table-list-note").hidden = true;
  $("logs").replaceChildren();
  state.log = { seen: new Set(), older: null, total: 0, live: 0, loading: null, buffer: [], maxId: null };
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
      showView(true);
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
  loadFiles();
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
  $("steps").replaceChildren(
    ...t.steps.map((s) =>
      el(
        "tr",
        {},
        el("td", {}, String(s.step_number)),
        el("td", {}, s.step),
        el("td", {}, stepBadge(s, running), s.status === "running" ? ` ${s.progress}%` : ""),
        el("td", {}, String(s.attempts)),
        el("td", { class: "dur" }, fmtDur(s.duration)),
        stepNote(s, notRun[s.step]),
        el("td", {}, el("button", { class: "ghost", "aria-label": `run step ${s.step_number} ${s.step}`, onclick: () => execute({ single_step: s.step_number }), ...(running ? { disabled: "" } : {}) }, "run")),
      ),
    ),
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
  const rows = $("steps").children;
  t.steps.forEach((s, i) => {
    if (s.status === "running" && s.started_at && rows[i]) rows[i].querySelector(".dur").textContent = fmtDur(since(s.started_at));
  });
}
setInterval(tick, 1000);

function announce(text) {
  $("announce").textContent = text;
}

// The final report (`result`) of a finished run, compact: a line per step with its counts, then the
// primary files, the run's duration and its LLM usage. Text nodes only, never HTML.
function reportCounts(s) {
  const parts = [];
  if ("tables_ok" in s || "tables_failed" in s) {
    const names = (s.failed_tables || []).slice(0, 5).join(", ");
    parts.push(`tables ok ${s.tables_ok ?? 0}, failed ${s.tables_failed ?? 0}${names ? ` (${names})` : ""}`);
  }
  if ("themes" in s || "pairs" in s) parts.push(`themes ${s.themes ?? 0}, pairs ${s.pairs ?? 0}`);
  if ("sql_total" in s) {
    parts.push(`SQL valid ${s.sql_valid ?? 0}, invalid ${s.sql_invalid ?? 0}, repaired ${s.sql_repaired ?? 0}, dropped ${s.sql_dropped ?? 0}`);
  }
  if ("training_inserted" in s) {
    parts.push(`rows inserted ${s.training_inserted}, already present ${s.training_already_present ?? 0}, removed ${s.training_removed ?? 0}`);
  }
  return parts.join("; ");
}

function usageText(u) {
  if (!u || !u.calls) return "no LLM calls";
  const cost = u.cost == null ? "" : `, cost ${u.cost}`;
  return `${u.calls} calls, ${u.total_tokens} tokens (${u.prompt_tokens} prompt + ${u.completion_tokens} completion)${cost}`;
}

function renderReport(r) {
  let box = $("report");
  if (!box) {
    box = el("div", { id: "report", class: "kv" });
    $("steps").closest("table").after(box);
  }
  if (!r || !r.steps) {
    box.replaceChildren();
    return;
  }
  const rows = [["final report", `${r.status || ""}, ${fmtDur(r.duration_seconds)}; LLM: ${usageText(r.llm_usage)}`]];
  for (const name of r.plan || Object.keys(r.steps)) {
    const s = r.steps[name];
    if (!s) continue;
    const detail = s.error || s.reason || reportCounts(s);
    rows.push([name, `${s.status}, ${s.attempts} attempt(s), ${fmtDur(s.duration_seconds)}${detail ? ` — ${detail}` : ""}`]);
    for (const fix of s.repaired_statements || []) rows.push(["repaired", `${fix.question}: ${fix.before} → ${fix.after}`]);
  }
  const files = (r.primary_files || []).map((f) => f.file_name).join(", ");
  if (files) rows.push(["primary files", files]);
  box.replaceChildren(...rows.flatMap(([k, v]) => [el("div", {}, k), el("div", {}, v)]));
}

// --- log viewer ---------------------------------------------------------------------------------
// The newest page of lines matching the filters (level, step, text: the API's own filters), "load older"
// pages back with the API's keyset cursor, live lines are appended while "follow" keeps the end in view.

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const LOG_PAGE = 200;

function logFilters() {
  return { level: $("log-level").value, step: $("log-step").value, q: $("log-q").value.trim() };
}

function logMatches(line, f) {
  if (f.level && LEVELS.indexOf(line.level) < LEVELS.indexOf(f.level)) return false;
  if (f.step && line.step_name !== f.step) return false;
  return !(f.q && !String(line.message).toLowerCase().includes(f.q.toLowerCase()));
}

function logNode(line) {
  const time = new Date(line.timestamp).toLocaleTimeString();
  return el("div", { class: `l-${line.level}` }, `${time} ${line.level.padEnd(8)} ${line.step_name ? `[${line.step_name}] ` : ""}${line.message}`);
}

function showLogCount() {
  const log = state.log;
  const shown = $("logs").querySelectorAll("div[class^='l-']").length;
  const total = log.total + log.live;
  $("log-count").textContent = `${shown} of ${total}${log.exact === false ? "+" : ""} line(s)`;
  $("log-older").hidden = !log.older;
  let empty = $("logs").querySelector(".empty");
  if (!shown && !empty) {
    const f = logFilters();
    empty = el("p", { class: "empty" }, f.level || f.step || f.q ? "No log lines match these filters." : "No log lines yet.");
    $("logs").append(empty);
  } else if (shown && empty) {
    empty.remove();
  }
}

function followEnd() {
  if ($("log-follow").checked) $("logs").scrollTop = $("logs").scrollHeight;
}

// A line from the live stream: buffered while a page is loading, dropped when already shown.
function appendLog(line) {
  const log = state.log;
  if (log.loading) {
    log.buffer.push(line);
    return;
  }
  if (log.seen.has(line.event_id)) return;
  log.seen.add(line.event_id);
  if (!logMatches(line, logFilters())) return;
  log.live += 1;
  $("logs").append(logNode(line));
  showLogCount();
  followEnd();
}

// (Re)loads the newest page for the open task; lines streamed meanwhile are shown after it.
async function loadLogs() {
  const taskId = state.selected;
  const log = state.log;
  const params = new URLSearchParams({ limit: String(LOG_PAGE) });
  const f = logFilters();
  if (f.level) params.set("level", f.level);
  if (f.step) params.set("step", f.step);
  if (f.q) params.set("q", f.q);
  const loading = api("GET", `/tasks/${taskId}/logs?${params}`);
  log.loading = loading;
  let data = null;
  try {
    data = await loading;
  } catch (err) {
    if (log.loading === loading) reportError(err, "logs: ");
  }
  if (log.loading !== loading || taskId !== state.selected) return;
  log.loading = null;
  const buffered = log.buffer;
  log.buffer = [];
  if (data) {
    log.seen = new Set(data.logs.map((l) => l.event_id));
    log.maxId = data.logs.reduce((max, l) => (l.id != null && l.id > max ? l.id : max), 0);
    log.older = data.next_cursor;
    log.total = data.total;
    log.exact = data.total_exact;
    log.live = 0;
    $("logs").replaceChildren(...data.logs.map(logNode));
  }
  buffered.forEach(appendLog);
  showLogCount();
  followEnd();
}

// Lines the page has not seen yet (after a reconnection, or stored after the stream ended), appended in
// order; the older pages the user loaded stay.
async function catchUpLogs() {
  const taskId = state.selected;
  const log = state.log;
  if (log.loading) return; // the page being loaded has them
  if (log.maxId == null) return loadLogs();
  const params = new URLSearchParams({ limit: "1000", order: "asc", after: String(log.maxId) });
  const f = logFilters();
  if (f.level) params.set("level", f.level);
  if (f.step) params.set("step", f.step);
  if (f.q) params.set("q", f.q);
  const loading = api("GET", `/tasks/${taskId}/logs?${params}`);
  log.loading = loading;
  let data = null;
  try {
    data = await loading;
  } catch (err) {
    if (log.loading === loading) reportError(err, "logs: ");
  }
  if (log.loading !== loading || taskId !== state.selected) return;
  log.loading = null;
  const buffered = log.buffer;
  log.buffer = [];
  if (data) {
    const fresh = data.logs.filter((l) => !log.seen.has(l.event_id));
    fresh.forEach((l) => log.seen.add(l.event_id));
    data.logs.forEach((l) => { if (l.id != null) log.maxId = Math.max(log.maxId, l.id); });
    $("logs").append(...fresh.map(logNode));
    log.live += fresh.length;
  }
  buffered.forEach(appendLog);
  showLogCount();
  followEnd();
}

async function loadOlderLogs() {
  const log = state.log;
  if (!log.older) return;
  const box = $("logs");
  try {
    const data = await api("GET", `/tasks/${state.selected}/logs?limit=${LOG_PAGE}&cursor=${encodeURIComponent(log.older)}`);
    const fromBottom = box.scrollHeight - box.scrollTop;
    const fresh = data.logs.filter((l) => !log.seen.has(l.event_id));
    fresh.forEach((l) => log.seen.add(l.event_id));
    box.prepend(...fresh.map(logNode));
    box.scrollTop = box.scrollHeight - fromBottom; // the lines being read stay in place
    log.older = data.next_cursor;
    $("log-follow").checked = false;
  } catch (err) {
    reportError(err, "logs: ");
  }
  showLogCount();
}

async function loadFiles() {
  let data;
  try {
    data = await api("GET", `/tasks/${state.selected}/files`);
  } catch {
    return;
  }
  $("files").replaceChildren(
    ...data.files.map((f) =>
      el(
        "tr",
        {},
        el("td", {}, el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); download(f); } }, f.file_name), f.is_primary ? " ★" : ""),
        el("td", {}, f.file_type),
        el("td", {}, fmtSize(f.size)),
        el("td", { class: "muted" }, f.step || ""),
      ),
    ),
  );
  if (!data.files.length) $("files").append(el("tr", {}, el("td", { class: "muted", colspan: "4" }, "no files yet")));
}

async function download(file) {
  // fetch + blob rather than a plain link, so the bearer token goes with the request.
  const resp = await fetch(file.download_url, { headers: authHeaders() });
  if (!resp.ok) return flash("detail-msg", `download failed (HTTP ${resp.status})`, false);
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: file.file_name });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10000);
}

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
  state.refreshTimer = setTimeout(() => { refreshDetail(); loadTasks(); }, 300);
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
      loadFiles();
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

$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("token").addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-msg").hidden = true;
  $("token").removeAttribute("aria-invalid");
  $("detail-msg").className = "msg"; // what failed without the token is not this token's failure
  loadTasks();
  if (state.selected) selectTask(state.selected); // the open detail is fetched again with the new token
});
loadListFilters();
window.addEventListener("popstate", loadListFilters);
$("filter-status").addEventListener("change", () => { state.listRows = 0; saveListFilters(); loadTasks(); });
$("filter-search").addEventListener("input", () => {
  clearTimeout(state.searchTimer);
  state.searchTimer = setTimeout(() => { state.listRows = 0; saveListFilters(); loadTasks(); }, 300);
});
$("more").addEventListener("click", () => loadTasks(true));
$("log-level").addEventListener("change", () => loadLogs());
$("log-step").addEventListener("change", () => loadLogs());
$("log-q").addEventListener("input", () => { clearTimeout(state.logTimer); state.logTimer = setTimeout(loadLogs, 300); });
$("log-follow").addEventListener("change", followEnd);
$("log-older").addEventListener("click", loadOlderLogs);
// Scrolling up (wheel or keys) to read stops following; ticking "follow" again jumps to the end.
$("logs").addEventListener("wheel", (ev) => { if (ev.deltaY < 0) $("log-follow").checked = false; }, { passive: true });
$("logs").addEventListener("keydown", (ev) => { if (["ArrowUp", "PageUp", "Home"].includes(ev.key)) $("log-follow").checked = false; });
loadTasks();
// A link to /#<task_id> opens that task (make run and dpctl print such links).
if (hashTask()) selectTask(hashTask());
setInterval(() => { if (!document.hidden) loadTasks(); }, 10000);

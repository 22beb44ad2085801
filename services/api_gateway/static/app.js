// The Data Pipeline web UI: plain JavaScript over the gateway's JSON API and its server-sent events.
// Every response is the envelope {code, success, message, data}; `data.response` is the text to show.
"use strict";

const API = "/api/v0/data_pipeline";
const TERMINAL = ["completed", "partial_completed", "failed", "cancelled"];
const $ = (id) => document.getElementById(id);

const state = { selected: null, cursor: null, stream: null, refreshTimer: null, seenLogs: new Set() };

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
    throw new Error((d.response || `HTTP ${resp.status}`) + (names.length && !d.response.includes(names[0]) ? ` (${names.join(", ")})` : ""));
  }
  return envelope.data;
}

function setConn(ok) {
  $("conn").textContent = ok ? "" : "gateway unreachable";
}

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

function flash(id, text, good) {
  const box = $(id);
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
  clearTimeout(box._t);
  box._t = setTimeout(() => (box.className = "msg"), 6000);
}

// --- task list ----------------------------------------------------------------------------------

async function loadTasks(append = false) {
  const params = new URLSearchParams({ limit: "20" });
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  if ($("filter-search").value.trim()) params.set("search", $("filter-search").value.trim());
  if (append && state.cursor) params.set("cursor", state.cursor);
  let data;
  try {
    data = await api("GET", `/tasks?${params}`);
  } catch (err) {
    $("total").textContent = err.message;
    return;
  }
  const body = $("task-rows");
  if (!append) body.replaceChildren();
  for (const t of data.tasks) {
    const row = el(
      "tr",
      { class: `task${t.task_id === state.selected ? " sel" : ""}`, onclick: () => selectTask(t.task_id) },
      el("td", {}, el("div", {}, t.task_name || t.task_id), el("div", { class: "muted" }, t.task_name ? t.task_id : t.db_name || "")),
      el("td", {}, badge(t.status)),
      el("td", {}, `${t.progress}%`),
      el("td", { class: "muted" }, fmtTime(t.created_at)),
    );
    row.dataset.id = t.task_id;
    body.append(row);
  }
  state.cursor = data.next_cursor;
  $("more").hidden = !data.next_cursor;
  $("total").textContent = `${data.total} task(s)`;
}

// --- create -------------------------------------------------------------------------------------

$("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  const tables = f.table_list.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  const parameters = {
    db_connection: f.db_connection.value.trim(),
    business_context: f.business_context.value.trim(),
    execution_mode: f.execution_mode.value,
    enable_sql_validation: f.enable_sql_validation.checked,
    enable_llm_repair: f.enable_llm_repair.checked,
    modify_original_file: f.modify_original_file.checked,
    enable_training_data_load: f.enable_training_data_load.checked,
  };
  if (tables.length) parameters.table_list = tables;
  if (f.task_name.value.trim()) parameters.task_name = f.task_name.value.trim();
  if (f.single_step.value) parameters.single_step = Number(f.single_step.value);
  try {
    const data = await api("POST", "/tasks", { task_type: "complete_workflow", parameters });
    flash("create-msg", `created ${data.task_id}`, true);
    f.db_connection.value = "";
    await loadTasks();
    selectTask(data.task_id);
  } catch (err) {
    flash("create-msg", err.message, false);
  }
});

// --- detail -------------------------------------------------------------------------------------

async function selectTask(taskId) {
  state.selected = taskId;
  if (location.hash.slice(1) !== taskId) history.replaceState(null, "", "#" + taskId);
  state.seenLogs = new Set();
  document.querySelectorAll("tr.task").forEach((r) => r.classList.toggle("sel", r.dataset.id === taskId));
  $("detail").hidden = false;
  $("logs").replaceChildren();
  await refreshDetail();
  await loadLogs();
  openStream(taskId);
}

async function refreshDetail() {
  const taskId = state.selected;
  if (!taskId) return;
  let t;
  try {
    t = await api("GET", `/tasks/${taskId}`);
  } catch (err) {
    $("detail-title").textContent = err.message;
    return;
  }
  if (taskId !== state.selected) return;
  $("detail-title").replaceChildren(t.task_name || t.task_id, " ", badge(t.status));
  const p = t.parameters || {};
  const kv = [
    ["task id", t.task_id], ["database", p.db_connection || "—"], ["business context", t.business_context || "—"],
    ["mode", t.execution_mode + (t.single_step ? ` (step ${t.single_step})` : "")],
    ["current step", t.current_step || "—"], ["created", fmtTime(t.created_at)],
    ["started", fmtTime(t.started_at)], ["completed", fmtTime(t.completed_at)], ["duration", fmtDur(t.duration)],
    ["output directory", t.output_directory || "—"],
  ];
  $("detail-kv").replaceChildren(...kv.flatMap(([k, v]) => [el("div", {}, k), el("div", {}, String(v))]));
  if (t.error_message) $("detail-kv").append(el("div", {}, "error"), el("div", { class: "err" }, t.error_message));
  $("progress").style.width = `${t.progress}%`;
  const running = !TERMINAL.includes(t.status);
  $("cancel").disabled = !running;
  $("rerun").disabled = running;
  // The plan: why a step is not part of this run (outside the range, single mode, disabled).
  const notRun = Object.fromEntries((t.plan || []).filter((p) => !p.runs).map((p) => [p.step, p.reason]));
  $("steps").replaceChildren(
    ...t.steps.map((s) =>
      el(
        "tr",
        {},
        el("td", {}, String(s.step_number)),
        el("td", {}, s.step),
        el("td", {}, badge(s.status), s.status === "running" ? ` ${s.progress}%` : ""),
        el("td", {}, String(s.attempts)),
        el("td", {}, fmtDur(s.duration)),
        s.error_message || !notRun[s.step]
          ? el("td", { class: "err" }, s.error_message || "")
          : el("td", { class: "muted" }, `not in this run: ${notRun[s.step]}`),
        el("td", {}, el("button", { class: "ghost", onclick: () => execute({ single_step: s.step_number }), ...(running ? { disabled: "" } : {}) }, "run")),
      ),
    ),
  );
  renderReport(t.result);
  await loadFiles();
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

function appendLog(line) {
  if (line.event_id && state.seenLogs.has(line.event_id)) return;
  if (line.event_id) state.seenLogs.add(line.event_id);
  const min = $("log-level").value;
  const order = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
  if (min && order.indexOf(line.level) < order.indexOf(min)) return;
  const box = $("logs");
  const stick = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
  const time = new Date(line.timestamp).toLocaleTimeString();
  box.append(el("div", { class: `l-${line.level}` }, `${time} ${line.level.padEnd(8)} ${line.step_name ? `[${line.step_name}] ` : ""}${line.message}`));
  if (stick) box.scrollTop = box.scrollHeight;
}

async function loadLogs() {
  const params = new URLSearchParams({ limit: "500", order: "desc" });
  if ($("log-level").value) params.set("level", $("log-level").value);
  try {
    const data = await api("GET", `/tasks/${state.selected}/logs?${params}`);
    data.logs.reverse().forEach(appendLog);
  } catch (err) {
    $("logs").append(el("div", { class: "l-ERROR" }, err.message));
  }
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

async function execute(body) {
  try {
    openStream(state.selected); // subscribe first, so no event of the new run is missed
    const data = await api("POST", `/tasks/${state.selected}/execute`, body);
    flash("detail-msg", data.response, true);
    setTimeout(refreshDetail, 500);
  } catch (err) {
    flash("detail-msg", err.message, false);
  }
}

$("rerun").addEventListener("click", () => execute({ execution_mode: "complete" }));
$("cancel").addEventListener("click", async () => {
  try {
    flash("detail-msg", (await api("POST", `/tasks/${state.selected}/cancel`, {})).response, true);
  } catch (err) {
    flash("detail-msg", err.message, false);
  }
});
$("delete").addEventListener("click", async () => {
  if (!confirm(`Delete ${state.selected} with its files and records?`)) return;
  try {
    await api("DELETE", `/tasks/${state.selected}`);
    closeStream();
    state.selected = null;
    $("detail").hidden = true;
    $("detail-title").textContent = "Select a task";
    await loadTasks();
  } catch (err) {
    flash("detail-msg", err.message, false);
  }
});
$("upload").addEventListener("click", async () => {
  const file = $("table-file").files[0];
  if (!file) return flash("detail-msg", "choose a .txt file first", false);
  const form = new FormData();
  form.append("file", file, file.name);
  try {
    flash("detail-msg", (await api("POST", `/tasks/${state.selected}/upload-table-list`, form)).response, true);
  } catch (err) {
    flash("detail-msg", err.message, false);
  }
});

// --- live events (SSE read with fetch, so the Authorization header can be sent) ----------------

function closeStream() {
  if (state.stream) state.stream.abort();
  state.stream = null;
  $("live").textContent = "○ not live";
  $("live").className = "live muted";
}

function scheduleRefresh() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => { refreshDetail(); loadTasks(); }, 300);
}

async function openStream(taskId) {
  closeStream();
  const controller = new AbortController();
  state.stream = controller;
  try {
    const resp = await fetch(`${API}/tasks/${taskId}/stream`, { headers: { ...authHeaders(), Accept: "text/event-stream" }, signal: controller.signal });
    if (!resp.ok || !resp.body) throw new Error(`HTTP ${resp.status}`);
    $("live").textContent = "● live";
    $("live").className = "live on";
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
        handleFrame(frame);
      }
    }
  } catch (err) {
    if (err.name === "AbortError") return;
  }
  if (state.stream === controller) {
    $("live").textContent = "○ not live";
    $("live").className = "live muted";
    state.stream = null;
    scheduleRefresh();
  }
}

function handleFrame(frame) {
  let event = "message";
  const data = [];
  for (const line of frame.split("\n")) {
    if (line.startsWith("event:")) event = line.slice(6).trim();
    else if (line.startsWith("data:")) data.push(line.slice(5).trim());
  }
  if (!data.length) return;
  const payload = JSON.parse(data.join("\n"));
  if (event === "snapshot" || event === "end") return;
  if (event === "log_emitted") {
    const p = payload.payload;
    appendLog({ event_id: payload.event_id, timestamp: payload.occurred_at, level: p.level, message: p.message, step_name: p.step });
    return;
  }
  if (event === "step_progress") {
    const p = payload.payload;
    const row = [...$("steps").children].find((r) => r.children[1].textContent === p.step);
    if (row) row.children[2].replaceChildren(badge("running"), ` ${Math.round(p.percent)}%`);
    return;
  }
  if (event !== "step_heartbeat") scheduleRefresh();
}

// --- wiring -------------------------------------------------------------------------------------

$("token").value = sessionStorage.getItem(TOKEN_KEY) || "";
$("token").addEventListener("change", () => {
  sessionStorage.setItem(TOKEN_KEY, $("token").value.trim());
  $("token-msg").hidden = true;
  $("token").removeAttribute("aria-invalid");
  loadTasks();
  if (state.selected) selectTask(state.selected); // the open detail is fetched again with the new token
});
$("filter-status").addEventListener("change", () => loadTasks());
$("filter-search").addEventListener("input", () => { clearTimeout(state.searchTimer); state.searchTimer = setTimeout(loadTasks, 300); });
$("more").addEventListener("click", () => loadTasks(true));
$("log-level").addEventListener("change", () => { $("logs").replaceChildren(); state.seenLogs = new Set(); loadLogs(); });
loadTasks();
// A link to /#<task_id> opens that task (make run and dpctl print such links).
if (/^(task|manual)_[0-9_a-z]+$/.test(location.hash.slice(1))) selectTask(location.hash.slice(1));
setInterval(() => { if (!document.hidden) loadTasks(); }, 10000);

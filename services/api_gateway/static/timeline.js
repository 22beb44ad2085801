// The open task's event history (GET /tasks/{id}/events), oldest first as the event store has it, one row
// per event: time, type, step, execution and the fields that say what happened. Log lines, heartbeats and
// progress ticks are left out unless asked for (the log viewer shows the lines). Loaded when opened, paged
// with the API's cursor, and extended with newer events while the run is live.

import { $, el, fmtTime } from "./dom.js";
import { api } from "./http.js";

const PAGE = 50;
const NOISY = ["log_emitted", "step_heartbeat", "step_progress"];
const HISTORY = ["task_created", "task_started", "task_rerun_requested", "step_scheduled", "step_skipped",
  "step_retry_scheduled", "step_started", "output_registered", "step_succeeded", "step_failed", "step_cancelled",
  "task_cancel_requested", "task_finished", "task_deleted", "task_logs_purged", "task_files_cleaned"];

let taskId = null;
let cursor = null; // the next page's cursor (null: the newest event is shown)
let lastSeq = null;
let loading = false;
let again = false; // something happened while a page was loading: ask once more after it
let shownCount = 0;

const short = (text, n = 160) => (text.length > n ? `${text.slice(0, n - 1)}…` : text);

function compact(value) {
  if (value == null) return "";
  if (typeof value !== "object") return String(value);
  if (Array.isArray(value)) return value.map(compact).join(", ");
  return Object.entries(value).filter(([, v]) => v != null && typeof v !== "object").map(([k, v]) => `${k}=${v}`).join(", ");
}

// What a row says about its event: the fields people look for, by type.
export function eventDetails(type, p) {
  switch (type) {
    case "task_created": return `steps: ${compact(p.steps)}${p.created_by ? `; by ${p.created_by}` : ""}${Object.keys(p.skipped || {}).length ? `; skipped: ${Object.keys(p.skipped).join(", ")}` : ""}`;
    case "task_rerun_requested": return `${p.execution_mode}: ${compact(p.steps)}${p.force ? " (forced)" : ""}`;
    case "step_scheduled": return `attempt ${p.attempt}${p.force ? " (forced)" : ""}`;
    case "step_started": return `attempt ${p.attempt} on ${p.runner_id}`;
    case "step_retry_scheduled": return `attempt ${p.next_attempt} in ${p.delay_seconds}s: ${p.reason}`;
    case "step_heartbeat": return `from ${p.runner_id}`;
    case "step_progress": return `${Math.round(p.percent)}%${p.message ? ` ${p.message}` : ""}`;
    case "log_emitted": return `${p.level} ${p.message}`;
    case "output_registered": return `${p.file_name} (${p.file_type}, ${p.size} B)${p.is_primary ? ", primary" : ""}`;
    case "step_succeeded": return compact(p.summary);
    case "step_failed": return `${p.error}${p.code ? ` [${p.code}]` : ""}${p.retryable ? " (retryable)" : ""}`;
    case "task_finished": return `${p.status}${p.error_message ? `: ${p.error_message}` : ""}`;
    default: return compact(Object.fromEntries(Object.entries(p).filter(([k]) => !["step", "execution_id"].includes(k))));
  }
}

function row(e) {
  const p = e.payload || {};
  const bad = /failed|cancel/.test(e.type) || (e.type === "task_finished" && p.status !== "completed");
  const exec = p.execution_id ? el("span", { title: p.execution_id }, String(p.execution_id).slice(-8)) : "";
  return el("tr", { class: bad ? "ev-bad" : "" },
    el("td", { class: "muted" }, String(e.seq ?? "")),
    el("td", { title: e.occurred_at }, fmtTime(e.occurred_at)),
    el("td", { class: "ev-type" }, e.type),
    el("td", {}, p.step || ""),
    el("td", { class: "mono" }, exec),
    el("td", {}, short(eventDetails(e.type, p))));
}

function query(extra) {
  const params = new URLSearchParams({ limit: String(PAGE), ...extra });
  if (!$("timeline-all").checked) params.set("type", HISTORY.join(","));
  return params;
}

async function fetchEvents(params, replace) {
  const id = taskId;
  loading = true;
  let data;
  try {
    data = await api("GET", `/tasks/${id}/events?${params}`);
  } catch (err) {
    if (id === taskId) $("timeline-count").textContent = err.status === 401 ? "enter the API token to see the events" : err.message;
    return;
  } finally {
    loading = false;
  }
  if (id !== taskId) return;
  if (again) setTimeout(timelineChanged, 0);
  again = false;
  const rows = data.events.map(row);
  if (replace) $("timeline").replaceChildren(...rows); else $("timeline").append(...rows);
  shownCount = (replace ? 0 : shownCount) + rows.length;
  for (const e of data.events) if (e.seq != null) lastSeq = Math.max(lastSeq ?? 0, e.seq);
  cursor = data.next_cursor;
  $("timeline-more").hidden = !cursor;
  $("timeline-count").textContent = `${shownCount} event(s)${cursor ? ", more below" : ""}`;
  if (!shownCount) $("timeline").append(el("tr", {}, el("td", { colspan: "6", class: "muted" }, "no events")));
}

const isOpen = () => $("timeline-box").open;

// The first page, again (on opening the section, or when the filter changes).
function reload() {
  cursor = null;
  lastSeq = null;
  shownCount = 0;
  return fetchEvents(query({}), true);
}

// A task is opened: its history is read when the section is open.
export function showTimeline(id) {
  taskId = id;
  $("timeline").replaceChildren();
  $("timeline-count").textContent = "";
  $("timeline-more").hidden = true;
  if (isOpen()) reload();
}

// Something happened in the live run: the newer events are appended (unless older pages are still to read).
export function timelineChanged() {
  if (loading) again = true;
  if (!isOpen() || loading || cursor || !taskId) return;
  if (lastSeq == null) return reload();
  fetchEvents(query({ after: String(lastSeq) }), shownCount === 0);
}

export function initTimeline() {
  $("timeline-box").addEventListener("toggle", () => { if (isOpen() && taskId) reload(); });
  $("timeline-all").addEventListener("change", () => { if (taskId) reload(); });
  $("timeline-more").addEventListener("click", () => { if (cursor) fetchEvents(query({ cursor }), false); });
}

// The log viewer of the open task: the newest page of lines matching the filters (level, step, text and
// time: the API's own filters, kept in the URL so a link restores them), "load older" pages back with the
// API's keyset cursor, live lines are appended while "follow" keeps the end in view, and the whole log
// downloads as one text file.

import { $, el, flash } from "./dom.js";
import { DATA_PIPELINE, api, saveAs } from "./http.js";
import { param, setParams } from "./urlstate.js";

const LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"];
const LOG_PAGE = 200;

let currentTask = () => null;
let reportError = () => {};
let log = fresh();

function fresh() {
  return { seen: new Set(), older: null, total: 0, live: 0, loading: null, buffer: [], maxId: null, exact: true };
}

// datetime-local values are the browser's local time; the API wants an instant.
const instant = (local) => {
  const d = local ? new Date(local) : null;
  return d && !Number.isNaN(d.getTime()) ? d.toISOString() : "";
};

function filters() {
  return {
    level: $("log-level").value, step: $("log-step").value, q: $("log-q").value.trim(),
    since: instant($("log-since").value), until: instant($("log-until").value),
  };
}

function filterParams(params) {
  const f = filters();
  for (const k of ["level", "step", "q", "since", "until"]) if (f[k]) params.set(k, f[k]);
  return params;
}

function matches(line, f) {
  if (f.level && LEVELS.indexOf(line.level) < LEVELS.indexOf(f.level)) return false;
  if (f.step && line.step_name !== f.step) return false;
  const at = new Date(line.timestamp).getTime();
  if (f.since && at < new Date(f.since).getTime()) return false;
  if (f.until && at > new Date(f.until).getTime()) return false;
  return !(f.q && !String(line.message).toLowerCase().includes(f.q.toLowerCase()));
}

function lineNode(line) {
  const time = new Date(line.timestamp).toLocaleTimeString();
  return el("div", { class: `l-${line.level}` }, `${time} ${line.level.padEnd(8)} ${line.step_name ? `[${line.step_name}] ` : ""}${line.message}`);
}

function showCount() {
  const shown = $("logs").querySelectorAll("div[class^='l-']").length;
  const total = log.total + log.live;
  $("log-count").textContent = `${shown} of ${total}${log.exact === false ? "+" : ""} line(s)`;
  $("log-older").hidden = !log.older;
  let empty = $("logs").querySelector(".empty");
  if (!shown && !empty) {
    const f = filters();
    const filtered = f.level || f.step || f.q || f.since || f.until;
    empty = el("p", { class: "empty" }, filtered ? "No log lines match these filters." : "No log lines yet.");
    $("logs").append(empty);
  } else if (shown && empty) {
    empty.remove();
  }
}

function followEnd() {
  if ($("log-follow").checked) $("logs").scrollTop = $("logs").scrollHeight;
}

export function resetLogs() {
  log = fresh();
  $("logs").replaceChildren();
}

// A line from the live stream: buffered while a page is loading, dropped when already shown.
export function appendLog(line) {
  if (log.loading) {
    log.buffer.push(line);
    return;
  }
  if (log.seen.has(line.event_id)) return;
  log.seen.add(line.event_id);
  if (!matches(line, filters())) return;
  log.live += 1;
  $("logs").append(lineNode(line));
  showCount();
  followEnd();
}

async function fetchPage(params) {
  const taskId = currentTask();
  const mine = log;
  const loading = api("GET", `/tasks/${taskId}/logs?${params}`);
  mine.loading = loading;
  let data = null;
  try {
    data = await loading;
  } catch (err) {
    if (mine.loading === loading) reportError(err, "logs: ");
  }
  if (mine !== log || mine.loading !== loading || taskId !== currentTask()) return { stale: true };
  log.loading = null;
  const buffered = log.buffer;
  log.buffer = [];
  return { data, buffered };
}

// An end before the start is marked on the field and asked of no one: the server would answer 400. Every
// request of the log (a filter changed, a task opened, a catch-up when its stream ends, older lines)
// checks it here.
function rangeInverted() {
  const bad = Boolean($("log-since").value && $("log-until").value && $("log-since").value > $("log-until").value);
  if (bad) $("log-until").setAttribute("aria-invalid", "true"); else $("log-until").removeAttribute("aria-invalid");
  if (bad) flash("detail-msg", "logs: the end of the time range is before its start", false);
  return bad;
}

// (Re)loads the newest page for the open task; lines streamed meanwhile are shown after it.
export async function loadLogs() {
  if (rangeInverted()) return;
  const { stale, data, buffered } = await fetchPage(filterParams(new URLSearchParams({ limit: String(LOG_PAGE) })));
  if (stale) return;
  if (data) {
    log.seen = new Set(data.logs.map((l) => l.event_id));
    log.maxId = data.logs.reduce((max, l) => (l.id != null && l.id > max ? l.id : max), 0);
    log.older = data.next_cursor;
    log.total = data.total;
    log.exact = data.total_exact;
    log.live = 0;
    $("logs").replaceChildren(...data.logs.map(lineNode));
  }
  buffered.forEach(appendLog);
  showCount();
  followEnd();
}

// Lines the page has not seen yet (after a reconnection, or stored after the stream ended), appended in
// order; the older pages the user loaded stay.
export async function catchUpLogs() {
  if (log.loading) return; // the page being loaded has them
  if (rangeInverted()) return;
  if (log.maxId == null) return loadLogs();
  const params = filterParams(new URLSearchParams({ limit: "1000", order: "asc", after: String(log.maxId) }));
  const { stale, data, buffered } = await fetchPage(params);
  if (stale) return;
  if (data) {
    const unseen = data.logs.filter((l) => !log.seen.has(l.event_id));
    unseen.forEach((l) => log.seen.add(l.event_id));
    data.logs.forEach((l) => { if (l.id != null) log.maxId = Math.max(log.maxId, l.id); });
    $("logs").append(...unseen.map(lineNode));
    log.live += unseen.length;
  }
  buffered.forEach(appendLog);
  showCount();
  followEnd();
}

async function loadOlder() {
  if (!log.older || rangeInverted()) return;
  const box = $("logs");
  try {
    // The cursor says where the page starts; the filters go with it again.
    const params = filterParams(new URLSearchParams({ limit: String(LOG_PAGE), cursor: log.older }));
    const data = await api("GET", `/tasks/${currentTask()}/logs?${params}`);
    const fromBottom = box.scrollHeight - box.scrollTop;
    const unseen = data.logs.filter((l) => !log.seen.has(l.event_id));
    unseen.forEach((l) => log.seen.add(l.event_id));
    box.prepend(...unseen.map(lineNode));
    box.scrollTop = box.scrollHeight - fromBottom; // the lines being read stay in place
    log.older = data.next_cursor;
    $("log-follow").checked = false;
  } catch (err) {
    reportError(err, "logs: ");
  }
  showCount();
}

// The filters as the URL has them (on load, and on Back/Forward).
export function readLogFilters() {
  $("log-level").value = param("level");
  $("log-step").value = param("step");
  $("log-q").value = param("text");
  $("log-since").value = param("since");
  $("log-until").value = param("until");
}

function filtersChanged() {
  setParams({
    level: $("log-level").value, step: $("log-step").value, text: $("log-q").value.trim(),
    since: $("log-since").value, until: $("log-until").value,
  });
  if (currentTask()) loadLogs();
  else rangeInverted();
}

export function initLogs(hooks) {
  ({ currentTask, reportError } = hooks);
  readLogFilters();
  window.addEventListener("popstate", () => {
    const before = JSON.stringify(filters());
    readLogFilters();
    if (currentTask() && JSON.stringify(filters()) !== before) loadLogs();
  });
  for (const id of ["log-level", "log-step", "log-since", "log-until"]) $(id).addEventListener("change", filtersChanged);
  let timer = null;
  $("log-q").addEventListener("input", () => { clearTimeout(timer); timer = setTimeout(filtersChanged, 300); });
  $("log-follow").addEventListener("change", followEnd);
  $("log-older").addEventListener("click", loadOlder);
  $("log-download").addEventListener("click", async () => {
    const taskId = currentTask();
    const failed = await saveAs(`${DATA_PIPELINE}/tasks/${taskId}/logs/download`, `${taskId}_data_pipeline.log`);
    if (failed) flash("detail-msg", `log download failed (${failed})`, false);
  });
  // Scrolling up (wheel or keys) to read stops following; ticking "follow" again jumps to the end.
  $("logs").addEventListener("wheel", (ev) => { if (ev.deltaY < 0) $("log-follow").checked = false; }, { passive: true });
  $("logs").addEventListener("keydown", (ev) => { if (["ArrowUp", "PageUp", "Home"].includes(ev.key)) $("log-follow").checked = false; });
}

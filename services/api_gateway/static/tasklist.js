// The task list: filters and search in the URL (?status=&q=), pages ("more" survives the auto-refresh),
// relative times, and a multi-select with batch cancel and delete.

import { $, badge, el, fmtAgo, fmtTime } from "./dom.js";
import { api } from "./http.js";
import { param, setParams } from "./urlstate.js";

const CANCELLABLE = ["pending", "in_progress"];
let hooks = { openTask: () => {}, currentTask: () => null, afterLoad: () => {}, onDeleted: () => {} };
const list = { cursor: null, rows: 0, byId: new Map() }; // next page, rows the user has loaded, last seen rows
const chosen = new Set(); // the ticked tasks (kept across refreshes while they are listed)
const drawn = new Map(); // task id -> { sig, row }: the row element shown for it and what it shows

function listParams() {
  const params = new URLSearchParams();
  if ($("filter-status").value) params.set("status", $("filter-status").value);
  // The server's q matches a task id (or part of one), the name, the database name and the context.
  if ($("filter-search").value.trim()) params.set("q", $("filter-search").value.trim());
  return params;
}

function taskRow(t) {
  const open = () => hooks.openTask(t.task_id);
  const selected = t.task_id === hooks.currentTask();
  const name = t.task_name || t.task_id;
  const tick = el("input", {
    type: "checkbox", class: "pick-task", "aria-label": `select ${name}`, checked: chosen.has(t.task_id),
    onclick: (ev) => ev.stopPropagation(),
    onkeydown: (ev) => ev.stopPropagation(),
    onchange: (ev) => { if (ev.target.checked) chosen.add(t.task_id); else chosen.delete(t.task_id); showSelection(); },
  });
  const row = el(
    "tr",
    {
      class: `task${selected ? " sel" : ""}`, tabindex: "0", onclick: open,
      onkeydown: (ev) => { if (ev.target === row && (ev.key === "Enter" || ev.key === " ")) { ev.preventDefault(); open(); } },
    },
    el("td", { class: "pick" }, tick),
    el("td", {}, el("div", {}, name), el("div", { class: "muted" }, t.task_name ? t.task_id : t.db_name || "")),
    el("td", {}, badge(t.status)),
    el("td", { class: "pct" }, `${t.progress}%`),
    el("td", { class: "muted ago", title: fmtTime(t.created_at), "data-at": t.created_at || "" }, fmtAgo(t.created_at)),
  );
  row.dataset.id = t.task_id;
  if (selected) row.setAttribute("aria-current", "true");
  return row;
}

// The row for `t`: the one on screen when nothing it shows has changed. A refresh (every few seconds,
// and when an opened task's stream ends) then leaves those rows alone, so a click that lands while the
// list refreshes still reaches its row instead of one replaced between mouse down and up.
function rowFor(t) {
  // The selection is not in it: opening a task marks its row in place (app.js, selectTask).
  const sig = JSON.stringify([t.task_name, t.task_id, t.db_name, t.status, t.progress, t.created_at, chosen.has(t.task_id)]);
  const had = drawn.get(t.task_id);
  if (had && had.sig === sig) return had.row;
  const row = taskRow(t);
  drawn.set(t.task_id, { sig, row });
  return row;
}

// Shows `rows` in order, moving or replacing only the rows that differ from what is there.
function drawRows(body, rows) {
  rows.forEach((row, i) => {
    if (body.children[i] !== row) body.insertBefore(row, body.children[i] || null);
  });
  while (body.children.length > rows.length) body.lastElementChild.remove();
  const ids = new Set(rows.map((row) => row.dataset.id));
  for (const id of [...drawn.keys()]) if (!ids.has(id)) drawn.delete(id);
}

function saveListFilters() {
  setParams({ status: $("filter-status").value, q: $("filter-search").value.trim() });
}

function loadListFilters() {
  $("filter-status").value = param("status");
  $("filter-search").value = param("q");
}

// `append`: the next page ("more"). Otherwise the list is fetched again from the top, as many rows as the
// user has loaded (so the auto-refresh never takes back what "more" showed).
export async function loadTasks(append = false) {
  const want = append ? 20 : Math.max(20, list.rows);
  const rows = [];
  let cursor = append ? list.cursor : null;
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
  } catch (err) {
    $("total").textContent = err.status === 401 ? "enter the API token to see the tasks" : err.message;
    return;
  }
  const body = $("task-rows");
  const focused = document.activeElement?.closest?.("tr.task")?.dataset.id;
  const focusedTick = document.activeElement?.classList?.contains("pick-task");
  if (!append) list.byId.clear();
  rows.forEach((t) => list.byId.set(t.task_id, t));
  if (append) body.append(...rows.map(rowFor));
  else drawRows(body, rows.map(rowFor));
  if (focused) {
    const row = body.querySelector(`tr.task[data-id="${CSS.escape(focused)}"]`);
    (focusedTick ? row?.querySelector(".pick-task") : row)?.focus();
  }
  for (const id of [...chosen]) if (!list.byId.has(id)) chosen.delete(id);
  list.rows = body.children.length;
  list.cursor = cursor;
  $("more").hidden = !cursor;
  $("total").textContent = `${list.rows} of ${data.total}${data.total_exact === false ? "+" : ""} task(s)`;
  showSelection();
  hooks.afterLoad();
}

function showSelection() {
  const n = chosen.size;
  $("batch").hidden = n === 0;
  $("batch-count").textContent = `${n} selected`;
  const all = $("pick-all");
  const shown = list.byId.size;
  all.checked = n > 0 && n === shown;
  all.indeterminate = n > 0 && n < shown;
  const cancellable = [...chosen].filter((id) => CANCELLABLE.includes(list.byId.get(id)?.status));
  $("batch-cancel").disabled = cancellable.length === 0;
  $("batch-cancel").textContent = `Cancel ${cancellable.length} running`;
}

function batchMessage(text, good) {
  const box = $("batch-msg");
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
}

async function batchCancel() {
  const ids = [...chosen].filter((id) => CANCELLABLE.includes(list.byId.get(id)?.status));
  const failed = [];
  for (const id of ids) {
    try {
      await api("POST", `/tasks/${id}/cancel`, { reason: "cancelled from the task list" });
    } catch (err) {
      if (err.status !== 409) failed.push(`${id}: ${err.message}`); // 409: it finished meanwhile
    }
  }
  batchMessage(failed.length ? `cancel failed for ${failed.join("; ")}` : `cancel requested for ${ids.length} task(s)`, !failed.length);
  await loadTasks();
}

async function batchDelete() {
  const ids = [...chosen];
  if (!ids.length || !confirm(`Delete ${ids.length} task(s) with their files and records?`)) return;
  try {
    const data = await api("DELETE", "/tasks", { task_ids: ids, confirm: true });
    const parts = [`${data.deleted_count} deleted`];
    if (data.pending_count) parts.push(`${data.pending_count} being deleted (running: cancelled first)`);
    if (data.not_found_count) parts.push(`${data.not_found_count} not found`);
    batchMessage(parts.join(", "), true);
    ids.forEach((id) => chosen.delete(id));
    hooks.onDeleted(ids);
  } catch (err) {
    batchMessage(err.status === 401 ? "enter the API token to delete" : err.message, false);
  }
  await loadTasks();
}

export function listedTask(id) {
  return list.byId.get(id);
}

export function initTaskList(h) {
  hooks = { ...hooks, ...h };
  loadListFilters();
  window.addEventListener("popstate", () => {
    const before = [$("filter-status").value, $("filter-search").value];
    loadListFilters();
    if (before[0] !== $("filter-status").value || before[1] !== $("filter-search").value) loadTasks();
  });
  $("filter-status").addEventListener("change", () => { list.rows = 0; saveListFilters(); loadTasks(); });
  let timer = null;
  $("filter-search").addEventListener("input", () => {
    clearTimeout(timer);
    timer = setTimeout(() => { list.rows = 0; saveListFilters(); loadTasks(); }, 300);
  });
  $("more").addEventListener("click", () => loadTasks(true));
  $("pick-all").addEventListener("change", (ev) => {
    if (ev.target.checked) list.byId.forEach((_, id) => chosen.add(id)); else chosen.clear();
    $("task-rows").querySelectorAll(".pick-task").forEach((box) => { box.checked = ev.target.checked; });
    showSelection();
  });
  $("batch-clear").addEventListener("click", () => {
    chosen.clear();
    $("task-rows").querySelectorAll(".pick-task").forEach((box) => { box.checked = false; });
    showSelection();
  });
  $("batch-cancel").addEventListener("click", batchCancel);
  $("batch-delete").addEventListener("click", batchDelete);
  // Relative times move on without a request.
  setInterval(() => $("task-rows").querySelectorAll("td.ago").forEach((td) => { td.textContent = fmtAgo(td.dataset.at); }), 30000);
}

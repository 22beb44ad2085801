// The run's steps (status, attempts with their execution history, duration, warning or error, a "run"
// button each) and the overall progress, drawn from the task model; running durations tick.

import { $, badge, el, fmtDur, fmtTime } from "./dom.js";
import { executionsRow } from "./executions.js";

export const TERMINAL = ["completed", "partial_completed", "failed", "cancelled"];
export const isRunning = (t) => t && !TERMINAL.includes(t.status);

// The run's steps from the model in state.task (live events update the model, then this redraws it).
export function renderSteps(t, { openSteps, run, redraw }) {
  const running = isRunning(t);
  // The plan: why a step is not part of this run (outside the range, single mode, disabled).
  const notRun = Object.fromEntries((t.plan || []).filter((p) => !p.runs).map((p) => [p.step, p.reason]));
  // The attempts cell opens the step's execution history (kept open across redraws).
  const history = (s) => {
    const open = openSteps.has(s.step);
    return el("button", {
      class: "ghost small-btn", type: "button", "aria-expanded": String(open), "aria-controls": `execs-${s.step}`,
      "aria-label": `${s.attempts} execution(s) of ${s.step}: ${open ? "hide" : "show"} the history`,
      onclick: () => { if (open) openSteps.delete(s.step); else openSteps.add(s.step); redraw(); },
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
        el("td", {}, el("button", { class: "ghost", "aria-label": `run step ${s.step_number} ${s.step}`, onclick: () => run(s.step_number), ...(running ? { disabled: "" } : {}) }, "run")),
      ),
      ...(openSteps.has(s.step) ? [executionsRow(s, 7)] : []),
    ]),
  );
  showProgress(t);
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

export function showProgress(t) {
  const pct = overallProgress(t);
  $("progress").style.width = `${pct}%`;
  $("progress-box").setAttribute("aria-valuenow", String(pct));
  $("progress-text").textContent = `${pct}%`;
  showListProgress(t);
}

export function showListProgress(t) {
  const cell = document.querySelector(`tr.task[data-id="${CSS.escape(t.task_id)}"] .pct`);
  if (cell) cell.textContent = `${overallProgress(t)}%`;
}

// Running durations tick once a second (from started_at), for the task and its running steps.
export function tick(t) {
  if (!t || !isRunning(t)) return;
  const since = (iso) => (iso ? Math.max(0, (Date.now() - new Date(iso).getTime()) / 1000) : null);
  if (t.started_at && $("task-duration")) $("task-duration").textContent = fmtDur(since(t.started_at));
  t.steps.forEach((s) => {
    const row = $("steps").querySelector(`tr[data-step="${s.step}"]`);
    if (s.status === "running" && s.started_at && row) row.querySelector(".dur").textContent = fmtDur(since(s.started_at));
  });
}

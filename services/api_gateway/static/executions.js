// A step's execution history under its row in the steps table: every run of the step (attempts and
// re-runs), newest first, with its runner, start, end, duration and what it reported or why it failed.

import { badge, el, fmtDur, fmtTime } from "./dom.js";

function outcome(x) {
  if (x.error_message) return el("span", { class: "err" }, x.error_message);
  const r = x.result || {};
  const facts = Object.entries(r)
    .filter(([, v]) => v != null && typeof v !== "object" && v !== "")
    .map(([k, v]) => `${k} ${v}`);
  if (Array.isArray(r.tables_failed) && r.tables_failed.length) facts.unshift(`tables_failed ${r.tables_failed.length}`);
  return facts.join(", ") + (x.files_cleaned ? " (files removed by retention)" : "");
}

export function executionsRow(step, columns) {
  const runs = [...(step.executions || [])].reverse();
  const body = runs.length
    ? runs.map((x) => el("tr", {},
      el("td", {}, String(x.attempt)),
      el("td", {}, badge(x.status), x.force_executed ? " forced" : ""),
      el("td", {}, x.runner_id || "—"),
      el("td", {}, fmtTime(x.started_at)),
      el("td", {}, fmtTime(x.completed_at)),
      el("td", {}, fmtDur(x.duration_seconds)),
      el("td", {}, outcome(x))))
    : [el("tr", {}, el("td", { colspan: "7", class: "muted" }, "never run"))];
  return el("tr", { class: "execs", id: `execs-${step.step}` },
    el("td", { colspan: String(columns) },
      el("table", { class: "execs" },
        el("caption", { class: "sr-only" }, `Executions of ${step.step}`),
        el("thead", {}, el("tr", {}, ...["attempt", "status", "runner", "started", "ended", "duration", "result"].map((h) => el("th", { scope: "col" }, h)))),
        el("tbody", {}, ...body))));
}

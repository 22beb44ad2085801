// The final report (`result`) of a finished run, compact: a line per step with its counts, then the
// primary files, the run's duration and its LLM usage. Text nodes only, never HTML.

import { $, el, fmtDur } from "./dom.js";

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

// Step 3's quality pass, as dpctl prints it: what it did, then each flag found with its action.
function qualityText(q) {
  const found = Object.entries(q.flags || {}).filter(([, v]) => v.count).map(([code, v]) => `${code} ${v.count} (${v.action})`);
  return `dropped ${q.dropped ?? 0}, repaired ${q.repaired ?? 0}, kept with flags ${q.kept ?? 0}; `
    + (found.join(", ") || "no flags") + (q.applied ? "" : " (reported only: pair files unchanged)");
}

function usageText(u) {
  if (!u || !u.calls) return "no LLM calls";
  const cost = u.cost == null ? "" : `, cost ${u.cost}`;
  return `${u.calls} calls, ${u.total_tokens} tokens (${u.prompt_tokens} prompt + ${u.completion_tokens} completion)${cost}`;
}

export function renderReport(r) {
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
    if (s.quality) rows.push(["quality", qualityText(s.quality)]);
    for (const fix of s.repaired_statements || []) rows.push(["repaired", `${fix.question}: ${fix.before} → ${fix.after}`]);
  }
  const files = (r.primary_files || []).map((f) => f.file_name).join(", ");
  if (files) rows.push(["primary files", files]);
  box.replaceChildren(...rows.flatMap(([k, v]) => [el("div", {}, k), el("div", {}, v)]));
}

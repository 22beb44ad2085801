// "Is anything stuck?": the connected runners, the steps running now and the queues' depths
// (GET /api/v0/system/overview), refreshed every few seconds while the view is open.

import { $, el, fmtAgo, fmtTime } from "./dom.js";
import { api } from "./http.js";
import { registerView } from "./views.js";

const EVERY_MS = 3000;
const STALE_RUNNER_S = 30; // a runner silent this long is marked (the scheduler's zombie check is its own)
let timer = null;

const ago = (iso) => el("span", { title: fmtTime(iso) }, fmtAgo(iso));
const secondsSince = (iso) => (Date.now() - new Date(iso).getTime()) / 1000;

function table(caption, heads, rows, empty) {
  return el("table", { class: "sys" },
    el("caption", {}, caption),
    el("thead", {}, el("tr", {}, ...heads.map((h) => el("th", { scope: "col" }, h)))),
    el("tbody", {}, ...(rows.length ? rows : [el("tr", {}, el("td", { colspan: String(heads.length), class: "muted" }, empty))])));
}

async function refresh() {
  let o;
  try {
    o = await api("GET", "/api/v0/system/overview");
  } catch (err) {
    $("system-note").textContent = err.status === 401 ? "enter the API token to see the system" : err.message;
    return;
  }
  const lag = o.collector_lag_seconds;
  $("system-note").textContent = `updated ${new Date().toLocaleTimeString()}` + (lag == null ? "" : ` · collector lag ${Math.round(lag)}s`);
  const runners = (o.runners || []).map((r) => {
    const stale = r.running_steps > 0 && r.last_seen && secondsSince(r.last_seen) > STALE_RUNNER_S;
    return el("tr", { class: stale ? "warn-row" : "" },
      el("td", {}, r.runner_id), el("td", {}, r.last_seen ? ago(r.last_seen) : "—", stale ? " (silent)" : ""),
      el("td", {}, String(r.running_steps ?? 0)));
  });
  const steps = (o.running_steps || []).map((s) => {
    const quiet = s.last_heartbeat_at && secondsSince(s.last_heartbeat_at) > STALE_RUNNER_S;
    return el("tr", { class: quiet ? "warn-row" : "" },
      el("td", {}, el("a", { href: `#${s.task_id}` }, s.task_id)), el("td", {}, `${s.step} (attempt ${s.attempt ?? 1})`),
      el("td", {}, s.runner_id || "—"), el("td", {}, s.started_at ? ago(s.started_at) : "—"),
      el("td", {}, s.last_heartbeat_at ? ago(s.last_heartbeat_at) : "—", quiet ? " (no heartbeat)" : ""),
      el("td", {}, s.progress == null ? "—" : `${Math.round(s.progress)}%`));
  });
  const queues = (o.queues || []).map((q) => {
    const stuck = q.messages > 0 && !q.consumers;
    return el("tr", { class: stuck ? "warn-row" : "" },
      el("td", {}, q.name), el("td", {}, String(q.messages ?? "—")),
      el("td", {}, String(q.consumers ?? "—"), stuck ? " (nobody consumes)" : ""));
  });
  const queuesEmpty = o.queues == null ? `the broker did not answer: ${o.queues_error || "unknown reason"}` : "no queues reported";
  const more = o.running_steps_truncated ? ` (the oldest ${o.running_steps_limit} shown)` : "";
  $("system-body").replaceChildren(
    table("Runners", ["runner", "last seen", "running steps"], runners, "no runner connected"),
    table(`Running steps${more}`, ["task", "step", "runner", "started", "last heartbeat", "progress"], steps, "nothing running"),
    table("Queues", ["queue", "ready messages", "consumers"], queues, queuesEmpty),
  );
}

registerView("system", {
  label: "Runners & queues",
  onShow: () => {
    refresh();
    clearInterval(timer);
    timer = setInterval(() => { if (!document.hidden) refresh(); }, EVERY_MS);
  },
  onHide: () => { clearInterval(timer); timer = null; },
});

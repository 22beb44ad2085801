// Review before load: the screen where a person approves, rejects or edits the question/SQL pairs of a task
// awaiting review, then completes the review (step 4 loads the approved pairs) or abandons it.
// Self-contained: a "Review" button in the header (with the number of tasks awaiting review) and the
// #review=<task_id> address open it. Keys: a approve, r reject, j/k next/previous, Esc close.
// Text nodes only: nothing from the server is inserted as HTML.

const API = "/api/v0/data_pipeline";
const state = { returnTo: "", task: null, pairs: [], counts: null, themes: [], index: 0, filters: { status: "", verdict: "", repaired: false, flagged: false, theme: "" } };

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === "class") node.className = v;
    else if (k.startsWith("on")) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(c ?? ""));
  return node;
}

async function call(method, path, body) {
  const token = sessionStorage.getItem("dp_token") || "";
  const init = { method, headers: token ? { Authorization: `Bearer ${token}` } : {} };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const resp = await fetch(API + path, init);
  const envelope = await resp.json().catch(() => ({ success: false, data: { response: `HTTP ${resp.status}` } }));
  if (!envelope.success) {
    const error = new Error((envelope.data || {}).response || `HTTP ${resp.status}`);
    error.data = envelope.data || {};
    throw error;
  }
  return envelope.data;
}

// SQL on several lines: a break before the main clauses, so a long statement reads top to bottom.
export function formatSql(sql) {
  const clauses = /\s+(FROM|WHERE|GROUP BY|HAVING|ORDER BY|LIMIT|UNION ALL|UNION|(?:LEFT |RIGHT |FULL |INNER |CROSS )?JOIN)\s+/gi;
  return sql.trim().replace(/\s+/g, " ").replace(clauses, (_, word) => `\n${word.toUpperCase()} `);
}

const $ = (id) => document.getElementById(id);
const current = () => state.pairs[state.index];

const KEYS = "Keys: a approve · r reject · j/k next/previous · Esc close";

// The last message stays until the next one: a re-render after a decision shows it again.
function say(text, good) {
  state.msg = { text, good };
  const box = $("rv-msg");
  if (box) showMsg(box);
}

function showMsg(box) {
  const m = state.msg;
  box.textContent = m ? m.text : KEYS;
  box.className = !m ? "rv-keys" : m.good ? "rv-keys rv-verdict-valid" : "rv-keys rv-verdict-invalid";
}

async function load(keep) {
  const f = state.filters;
  const query = new URLSearchParams({ limit: "200" });
  if (f.status) query.set("status", f.status);
  if (f.verdict) query.set("verdict", f.verdict);
  if (f.repaired) query.set("repaired", "true");
  if (f.flagged) query.set("flagged", "true");
  if (f.theme) query.set("theme", f.theme);
  const data = await call("GET", `/tasks/${state.task}/pairs?${query}`);
  const id = keep && current() ? current().pair_id : null;
  state.pairs = data.pairs;
  state.counts = data.counts;
  state.themes = data.themes;
  state.status = data.task_status;
  const at = state.pairs.findIndex((p) => p.pair_id === id);
  state.index = at >= 0 ? at : Math.min(state.index, Math.max(state.pairs.length - 1, 0));
  render();
}

function progress() {
  const c = state.counts || { reviewed: 0, total: 0, approved: 0, rejected: 0 };
  return `${c.reviewed}/${c.total} reviewed (${c.approved} approved, ${c.rejected} rejected)`;
}

const keptFlags = (p) => p.quality && p.quality.outcome === "kept";

function renderList() {
  const list = el("ol", { "aria-label": "Pairs" });
  state.pairs.forEach((p, i) => {
    const pick = () => { state.index = i; render(); };
    list.append(el("li", {}, el("button", { type: "button", "aria-current": i === state.index ? "true" : "false", onclick: pick },
      el("span", { class: `rv-st-${p.status}` }, `${p.status} · `), el("span", { class: `rv-verdict-${p.verdict}` }, p.verdict),
      keptFlags(p) ? el("span", { class: "rv-flagged" }, " · flagged") : "", ` — ${p.question}`)));
  });
  return el("div", { class: "rv-list" }, state.pairs.length ? list : el("p", { class: "muted" }, "No pair matches the filters."));
}

function renderPair() {
  const p = current();
  if (!p) return el("div", { class: "rv-pair" }, "Nothing to review here.");
  const open = state.status === "awaiting_review";
  const question = el("textarea", { id: "rv-question", rows: "2" });
  question.value = p.question;
  const sql = el("textarea", { id: "rv-sql", rows: "6", spellcheck: "false" });
  sql.value = formatSql(p.sql);
  const box = el("div", { class: "rv-pair", "aria-live": "polite" },
    el("p", {}, el("strong", {}, `Pair ${state.index + 1} of ${state.pairs.length}`), ` · ${p.theme || "no theme"} · `,
      el("span", { class: `rv-st-${p.status}` }, p.status), p.reviewed_by ? ` by ${p.reviewed_by}` : "", p.edited ? " · edited" : ""),
    el("p", {}, "Verdict: ", el("span", { class: `rv-verdict-${p.verdict}` }, p.verdict), p.error ? ` — ${p.error}` : ""),
    el("label", { for: "rv-question" }, "Question"), question,
    el("label", { for: "rv-sql-view" }, "SQL"), el("pre", { class: "rv-sql", id: "rv-sql-view", tabindex: "0" }, formatSql(p.sql)));
  if (p.quality) {
    const heading = p.quality.outcome === "kept" ? "Step 3 kept this pair with quality flags:" : "Step 3 repaired these quality flags:";
    box.append(el("div", { class: p.quality.outcome === "kept" ? "rv-quality rv-quality-kept" : "rv-quality" },
      el("p", {}, heading),
      el("ul", {}, ...p.quality.flags.map((f) => el("li", {}, el("code", {}, f.code), ` — ${f.detail}`)))));
  }
  if (p.repaired_from) box.append(el("p", { class: "muted" }, "Repaired by step 3 from:"), el("pre", { class: "rv-sql" }, formatSql(p.repaired_from)));
  box.append(el("label", { for: "rv-sql" }, "Edit the SQL"), sql,
    el("div", { class: "actions" },
      el("button", { type: "button", onclick: () => decide("approve"), disabled: !open }, "Approve (a)"),
      el("button", { type: "button", class: "danger", onclick: () => decide("reject"), disabled: !open }, "Reject (r)"),
      el("button", { type: "button", class: "ghost", onclick: saveEdit, disabled: !open }, "Save edit"),
      el("button", { type: "button", class: "ghost", onclick: preview }, "EXPLAIN and preview")),
    el("div", { id: "rv-check" }));
  return box;
}

function render() {
  const screen = $("review-screen");
  const f = state.filters;
  const select = (id, label, options, value, key) => {
    const node = el("select", { id, onchange: (e) => { state.filters[key] = e.target.value; load(false).catch(fail); } },
      ...options.map(([v, text]) => el("option", { value: v, selected: v === value }, text)));
    return el("span", {}, el("label", { for: id }, label), " ", node);
  };
  screen.replaceChildren(
    el("div", { class: "rv-head" },
      el("h2", { id: "rv-title" }, `Review ${state.task}`),
      el("span", { class: "rv-progress", id: "rv-progress" }, progress()),
      el("span", { class: "muted" }, state.status),
      el("button", { type: "button", onclick: complete, disabled: state.status !== "awaiting_review" }, "Complete review (load approved)"),
      el("button", { type: "button", class: "danger", onclick: abandon, disabled: state.status !== "awaiting_review" }, "Abandon (load nothing)"),
      el("button", { type: "button", class: "ghost", onclick: close }, "Close")),
    el("div", { class: "rv-filters", role: "group", "aria-label": "Filters" },
      select("rv-f-status", "Status", [["", "all"], ["pending", "pending"], ["approved", "approved"], ["rejected", "rejected"]], f.status, "status"),
      select("rv-f-verdict", "Verdict", [["", "all"], ["valid", "valid"], ["invalid", "invalid"], ["unchecked", "unchecked"]], f.verdict, "verdict"),
      select("rv-f-theme", "Theme", [["", "all"], ...state.themes.map((t) => [t, t])], f.theme, "theme"),
      el("label", { for: "rv-f-repaired" }, el("input", { type: "checkbox", id: "rv-f-repaired", checked: f.repaired,
        onchange: (e) => { state.filters.repaired = e.target.checked; load(false).catch(fail); } }), "repaired only"),
      el("label", { for: "rv-f-flagged" }, el("input", { type: "checkbox", id: "rv-f-flagged", checked: f.flagged,
        onchange: (e) => { state.filters.flagged = e.target.checked; load(false).catch(fail); } }), "flagged only"),
      el("button", { type: "button", class: "ghost", onclick: approveValid, disabled: state.status !== "awaiting_review" }, "Approve all pending valid")),
    showMsgIn(el("p", { id: "rv-msg", role: "status" })),
    el("div", { class: "rv-body" }, renderList(), renderPair()));
}

const fail = (err) => say(err.message, false);

function showMsgIn(box) {
  showMsg(box);
  return box;
}

async function decide(decision) {
  const p = current();
  if (!p) return;
  try {
    const data = await call("PATCH", `/tasks/${state.task}/pairs/${p.pair_id}`, { decision });
    say(`${decision}d`, true);
    await load(true);
    if (data.pair.status !== "pending") move(1);
  } catch (err) { fail(err); }
}

async function saveEdit() {
  const p = current();
  const question = $("rv-question").value.trim();
  const sql = $("rv-sql").value.trim();
  const body = { decision: "edit" };
  if (question && question !== p.question) body.question = question;
  if (sql && sql.replace(/\s+/g, " ") !== p.sql.trim().replace(/\s+/g, " ")) body.sql = sql;
  if (!body.question && !body.sql) return say("nothing changed", false);
  try {
    await call("PATCH", `/tasks/${state.task}/pairs/${p.pair_id}`, body);
    say("edit saved: the SQL passes", true);
    await load(true);
  } catch (err) {
    const check = (err.data || {}).sql_check;
    say(check ? `the edited SQL does not pass: ${check.error}` : err.message, false);
  }
}

async function preview() {
  const p = current();
  const out = $("rv-check");
  out.replaceChildren(el("p", { class: "muted" }, "checking…"));
  try {
    const { sql_check: c } = await call("GET", `/tasks/${state.task}/pairs/${p.pair_id}/preview`);
    const parts = [el("p", { class: c.passes ? "rv-verdict-valid" : "rv-verdict-invalid" }, c.passes ? "passes" : `does not pass: ${c.error}`)];
    if (c.plan.length) parts.push(el("h3", {}, "EXPLAIN"), el("pre", { class: "rv-sql" }, c.plan.join("\n")));
    if (c.columns) {
      const head = el("tr", {}, ...c.columns.map((col) => el("th", { scope: "col" }, col)));
      const rows = c.rows.map((r) => el("tr", {}, ...r.map((v) => el("td", {}, v ?? "NULL"))));
      parts.push(el("h3", {}, `First rows (${c.rows.length})`), el("table", { class: "rv-rows" }, el("thead", {}, head), el("tbody", {}, ...rows)));
    }
    out.replaceChildren(...parts);
  } catch (err) { out.replaceChildren(el("p", { class: "rv-verdict-invalid" }, err.message)); }
}

async function approveValid() {
  try {
    const data = await call("POST", `/tasks/${state.task}/review/bulk`, { decision: "approve", filter: { status: "pending", verdict: "valid" } });
    say(`${data.decided} valid pairs approved`, true);
    await load(true);
  } catch (err) { fail(err); }
}

async function complete() {
  if (!confirm(`Complete the review? Step 4 loads the ${state.counts.approved} approved pairs; undecided pairs are not loaded.`)) return;
  try {
    const data = await call("POST", `/tasks/${state.task}/review/complete`);
    say(`review completed: ${data.approved} pairs will be loaded`, true);
    await load(true);
  } catch (err) { fail(err); }
}

async function abandon() {
  if (!confirm("Abandon the review? Nothing is loaded and the task ends cancelled.")) return;
  try {
    await call("POST", `/tasks/${state.task}/review/abandon`);
    say("review abandoned: nothing is loaded", true);
    await load(true);
  } catch (err) { fail(err); }
}

function move(delta) {
  if (!state.pairs.length) return;
  state.index = Math.min(Math.max(state.index + delta, 0), state.pairs.length - 1);
  render();
}

function onKey(e) {
  if (!$("review-screen") || e.ctrlKey || e.metaKey || e.altKey) return;
  if (e.key === "Escape") return close();
  if (/^(INPUT|TEXTAREA|SELECT)$/.test(e.target.tagName)) return;
  const action = { a: () => decide("approve"), r: () => decide("reject"), j: () => move(1), k: () => move(-1) }[e.key];
  if (action) { e.preventDefault(); action(); }
}

function openScreen(title) {
  let screen = $("review-screen");
  if (!screen) {
    screen = el("div", { id: "review-screen", role: "dialog", "aria-modal": "true", "aria-labelledby": "rv-title" });
    document.body.append(screen);
    document.addEventListener("keydown", onKey);
  }
  screen.replaceChildren(el("h2", { id: "rv-title" }, title), el("p", { id: "rv-msg", role: "status" }, ""));
  return screen;
}

export async function openReview(taskId) {
  state.task = taskId;
  state.index = 0;
  state.msg = null;
  openScreen(`Review ${taskId}`);
  $("rv-msg").textContent = "loading…";
  try { await load(false); } catch (err) { fail(err); }
}

function close() {
  const screen = $("review-screen");
  if (screen) screen.remove();
  document.removeEventListener("keydown", onKey);
  // Back to the address the screen was opened from (the task's detail, when its link opened it).
  if (location.hash.startsWith("#review=")) history.replaceState(null, "", location.pathname + location.search + state.returnTo);
}

// The hook: a header button (asking the gateway for the tasks awaiting review only when pressed, so the
// page makes no request of its own before a token is entered) and the #review=<id> address.
async function chooseTask() {
  const screen = openScreen("Tasks awaiting review");
  try {
    const data = await call("GET", "/tasks?status=awaiting_review&limit=100");
    const pick = (id) => () => { location.hash = `review=${id}`; };
    screen.append(data.tasks.length
      ? el("ul", {}, ...data.tasks.map((t) => el("li", {}, el("button", { type: "button", class: "ghost", onclick: pick(t.task_id) },
          `${t.task_id}${t.task_name ? ` — ${t.task_name}` : ""}`))))
      : el("p", {}, "No task is awaiting review."));
  } catch (err) { fail(err); }
  screen.append(el("button", { type: "button", class: "ghost", onclick: close }, "Close"));
}

function fromAddress(ev) {
  const m = /^#review=([A-Za-z0-9_]{1,32})$/.exec(location.hash);
  if (m) {
    const before = ev && ev.oldURL ? new URL(ev.oldURL).hash : "";
    state.returnTo = before.startsWith("#review=") ? state.returnTo : before;
    openReview(m[1]);
  } else if (ev && $("review-screen")) {
    close(); // Back (or another link) left the review's address
  }
}

function install() {
  const header = document.querySelector("header");
  if (!header || $("review-open")) return;
  const button = el("button", { id: "review-open", type: "button", title: "Tasks awaiting review before load", onclick: chooseTask }, "Review");
  header.append(button);
  const filter = $("filter-status");
  if (filter && ![...filter.options].some((o) => o.value === "awaiting_review")) filter.append(el("option", { value: "awaiting_review" }, "awaiting_review"));
  window.addEventListener("hashchange", fromAddress);
  fromAddress();
}

install();

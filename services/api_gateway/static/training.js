// The training-data page: what the store holds (GET /api/v0/training_data/stats: rows by kind, by the task
// that loaded them, the last load) and a search by meaning (POST /api/v0/training_data/search: a question
// → the nearest question/SQL pairs, DDL and documentation, each with the task that loaded it).

import { $, el, fmtAgo, fmtTime } from "./dom.js";
import { api } from "./http.js";
import { registerView } from "./views.js";

const TRAINING = "/api/v0/training_data";
const KINDS = { question_sql: "question/SQL pairs", ddl: "DDL", documentation: "documentation" };

const taskLink = (id) => (id ? el("a", { href: `#${id}` }, id) : el("span", { class: "muted" }, "—"));
const clip = (text, n = 1200) => (text && text.length > n ? `${text.slice(0, n - 1)}…` : text || "");

function kv(pairs) {
  return pairs.flatMap(([k, v]) => [el("div", {}, k), el("div", {}, v instanceof Node ? v : String(v))]);
}

async function loadStats() {
  let stats;
  try {
    ({ stats } = await api("GET", `${TRAINING}/stats`));
  } catch (err) {
    $("training-stats").replaceChildren(el("p", { class: "msg show bad" }, err.status === 401 ? "enter the API token to see the training data" : err.message));
    return;
  }
  const counts = Object.entries(KINDS).map(([k, label]) => `${label} ${stats.by_kind?.[k] ?? 0}`).join(" · ");
  const last = stats.last_load;
  const rows = [["rows", `${stats.total} (${counts})`], ["newest row", stats.last_row_at ? `${fmtAgo(stats.last_row_at)} (${fmtTime(stats.last_row_at)})` : "—"]];
  if (last) {
    rows.push(["last load", el("span", {}, taskLink(last.task_id), ` ${fmtTime(last.loaded_at)}; inserted ${compactCounts(last.inserted)}, already present ${compactCounts(last.already_present)}`)]);
  }
  const byTask = (stats.by_task || []).map((t) => el("tr", {},
    el("td", {}, taskLink(t.task_id)), el("td", {}, String(t.question_sql ?? 0)), el("td", {}, String(t.ddl ?? 0)), el("td", {}, String(t.documentation ?? 0))));
  $("training-stats").replaceChildren(
    el("div", { class: "kv" }, ...kv(rows)),
    byTask.length
      ? el("table", { class: "by-task" },
        el("caption", { class: "sr-only" }, "Rows by the task that loaded them"),
        el("thead", {}, el("tr", {}, el("th", {}, "loaded by task"), el("th", {}, "pairs"), el("th", {}, "DDL"), el("th", {}, "docs"))),
        el("tbody", {}, ...byTask))
      : el("p", { class: "muted" }, "Nothing loaded yet: a task's training_load step fills the store."),
  );
}

function compactCounts(c) {
  if (c == null) return "—";
  if (typeof c !== "object") return String(c);
  return Object.entries(c).map(([k, v]) => `${KINDS[k] || k} ${v}`).join(", ") || "0";
}

function result(r) {
  const body = r.kind === "question_sql"
    ? [el("p", { class: "q" }, r.question || r.content), el("pre", { class: "code", tabindex: "0" }, clip(r.sql))]
    : [el("pre", { class: "code", tabindex: "0" }, clip(r.content))];
  return el("li", { class: "hit" },
    el("div", { class: "hit-head" },
      el("span", { class: "status" }, KINDS[r.kind] || r.kind),
      el("span", { class: "muted" }, ` score ${Number(r.score).toFixed(3)}`),
      r.table_name ? el("span", { class: "muted" }, ` · table ${r.table_name}`) : "",
      el("span", { class: "muted" }, " · loaded by "), taskLink(r.source_task_id),
      r.source_file ? el("span", { class: "muted" }, ` from ${r.source_file}`) : ""),
    ...body);
}

async function search(ev) {
  ev.preventDefault();
  const question = $("training-q").value.trim();
  const err = $("training-q-err");
  err.hidden = true;
  $("training-q").removeAttribute("aria-invalid");
  if (!question) {
    err.textContent = "required: a question to look for";
    err.hidden = false;
    $("training-q").setAttribute("aria-invalid", "true");
    $("training-q").focus();
    return;
  }
  const kinds = [...document.querySelectorAll("#training-kinds input:checked")].map((i) => i.value);
  const body = { question, limit: Number($("training-limit").value) || 5 };
  if (kinds.length && kinds.length < Object.keys(KINDS).length) body.kinds = kinds;
  $("training-summary").textContent = "searching…";
  let data;
  try {
    data = await api("POST", `${TRAINING}/search`, body);
  } catch (e) {
    $("training-summary").textContent = "";
    err.textContent = e.message;
    err.hidden = false;
    return;
  }
  $("training-summary").textContent = data.total ? `${data.total} result(s), nearest first` : "No stored rows yet to compare with.";
  $("training-results").replaceChildren(...data.results.map(result));
}

let loaded = false;
registerView("training", {
  label: "Training data",
  onShow: () => {
    loadStats();
    if (!loaded) {
      loaded = true;
      $("training-search").addEventListener("submit", search);
      $("training-refresh").addEventListener("click", loadStats);
    }
  },
});

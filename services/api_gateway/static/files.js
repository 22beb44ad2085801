// The open task's files: grouped by the step that wrote them and by type, a type with many files (one per
// table) collapsed behind a toggle, download with the token, and an inline text preview of the readable
// kinds (.md .json .txt .sql .log .ddl): at most PREVIEW_BYTES, shown as text (escaped, never run).

import { $, el, flash, fmtSize } from "./dom.js";
import { api, authHeaders, askForToken, saveAs } from "./http.js";

const STEP_ORDER = ["ddl_generation", "qa_generation", "sql_validation", "training_load"];
const PREVIEWABLE = /\.(md|json|txt|sql|log|ddl)$/i;
export const PREVIEW_BYTES = 128 * 1024;
const COLLAPSE_OVER = 3; // a group of more files than this starts collapsed

let taskId = null;
let drawn = ""; // the list as last drawn: an unchanged list is not drawn again (open groups stay open)
const expanded = new Set();

const extension = (name) => (name.match(/\.([^.]+)$/)?.[1] || "").toLowerCase();

function groups(files) {
  const bySteps = new Map();
  for (const f of files) {
    const step = f.step || "";
    if (!bySteps.has(step)) bySteps.set(step, new Map());
    const type = f.file_type || extension(f.file_name) || "file";
    const byType = bySteps.get(step);
    if (!byType.has(type)) byType.set(type, []);
    byType.get(type).push(f);
  }
  const rank = (s) => (s === "" ? 99 : STEP_ORDER.includes(s) ? STEP_ORDER.indexOf(s) : 50);
  return [...bySteps.entries()].sort((a, b) => rank(a[0]) - rank(b[0]));
}

function fileRow(f, hidden, groupId) {
  const name = f.is_downloadable === false
    ? el("span", {}, f.file_name)
    : el("a", { href: "#", onclick: (ev) => { ev.preventDefault(); download(f); } }, f.file_name);
  const show = PREVIEWABLE.test(f.file_name) && f.is_downloadable !== false
    ? el("button", { class: "ghost small-btn", type: "button", "aria-label": `preview ${f.file_name}`, onclick: () => preview(f) }, "preview")
    : "";
  const row = el("tr", { class: "file", "data-group": groupId, hidden },
    el("td", {}, name, f.is_primary ? " ★" : ""),
    el("td", {}, f.file_type || ""),
    el("td", {}, fmtSize(f.size ?? 0)),
    el("td", {}, show));
  return row;
}

function render(files) {
  const rows = [];
  for (const [step, byType] of groups(files)) {
    const count = [...byType.values()].reduce((n, list) => n + list.length, 0);
    rows.push(el("tr", { class: "file-step" }, el("th", { colspan: "4", scope: "colgroup" }, `${step || "task files"} · ${count} file(s)`)));
    for (const [type, list] of byType) {
      const groupId = `${step}/${type}`;
      const collapsible = list.length > COLLAPSE_OVER;
      const open = !collapsible || expanded.has(groupId);
      if (collapsible) {
        const toggle = el("button", {
          class: "ghost small-btn", type: "button", "aria-expanded": String(open),
          onclick: () => {
            if (expanded.has(groupId)) expanded.delete(groupId); else expanded.add(groupId);
            const now = expanded.has(groupId);
            toggle.setAttribute("aria-expanded", String(now));
            toggle.textContent = `${now ? "hide" : "show"} ${list.length} ${type} files`;
            $("files").querySelectorAll("tr.file").forEach((r) => { if (r.dataset.group === groupId) r.hidden = !now; });
          },
        }, `${open ? "hide" : "show"} ${list.length} ${type} files`);
        rows.push(el("tr", { class: "file-group" }, el("td", { colspan: "4" }, toggle)));
      }
      rows.push(...list.map((f) => fileRow(f, !open, groupId)));
    }
  }
  if (!files.length) rows.push(el("tr", {}, el("td", { class: "muted", colspan: "4" }, "no files yet")));
  $("files").replaceChildren(...rows);
}

export async function loadFiles(id) {
  if (id !== taskId) {
    taskId = id;
    drawn = "";
    expanded.clear();
    closePreview();
  }
  let data;
  try {
    data = await api("GET", `/tasks/${id}/files`);
  } catch {
    return;
  }
  if (id !== taskId) return;
  const key = JSON.stringify(data.files.map((f) => [f.file_name, f.size, f.file_type, f.step, f.is_primary]));
  if (key === drawn) return;
  drawn = key;
  render(data.files);
}

async function download(f) {
  const failed = await saveAs(f.download_url, f.file_name);
  if (failed) flash("detail-msg", `download of ${f.file_name} failed (${failed})`, false);
}

function closePreview() {
  $("file-preview").hidden = true;
  $("preview-body").textContent = "";
}

async function preview(f) {
  const box = $("file-preview");
  $("preview-title").textContent = f.file_name;
  $("preview-note").textContent = "loading…";
  $("preview-body").textContent = "";
  box.hidden = false;
  const cut = f.size > PREVIEW_BYTES;
  const headers = { ...authHeaders(), ...(cut ? { Range: `bytes=0-${PREVIEW_BYTES - 1}` } : {}) };
  let resp;
  try {
    resp = await fetch(f.download_url, { headers });
  } catch (err) {
    $("preview-note").textContent = `gateway unreachable: ${err.message}`;
    return;
  }
  if (resp.status === 401) askForToken();
  if (!resp.ok) {
    $("preview-note").textContent = `preview failed (HTTP ${resp.status})`;
    return;
  }
  let bytes = new Uint8Array(await resp.arrayBuffer());
  const truncated = cut || bytes.length > PREVIEW_BYTES; // a server that ignores Range sends it all
  if (bytes.length > PREVIEW_BYTES) bytes = bytes.slice(0, PREVIEW_BYTES);
  let text = new TextDecoder("utf-8").decode(bytes);
  if (!truncated && /\.json$/i.test(f.file_name)) {
    try { text = JSON.stringify(JSON.parse(text), null, 2); } catch { /* shown as it is */ }
  }
  $("preview-body").textContent = text; // text, never markup: a file's <script> is just characters here
  $("preview-note").textContent = truncated
    ? `the first ${fmtSize(PREVIEW_BYTES)} of ${fmtSize(f.size)}; download it for the rest`
    : fmtSize(f.size);
  $("preview-body").focus();
}

export function initFiles() {
  $("preview-close").addEventListener("click", closePreview);
}

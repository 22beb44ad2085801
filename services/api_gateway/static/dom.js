// Small DOM helpers. Text only: nothing from the server is ever inserted as HTML.

export const $ = (id) => document.getElementById(id);

export function el(tag, attrs = {}, ...children) {
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

export const badge = (status) => el("span", { class: `status s-${status}` }, status);
export const fmtTime = (iso) => (iso ? new Date(iso).toLocaleString() : "—");
export const fmtClock = (iso) => (iso ? new Date(iso).toLocaleTimeString() : "—");
export const fmtDur = (s) => (s == null ? "—" : s < 90 ? `${Math.round(s)}s` : `${Math.floor(s / 60)}m ${Math.round(s % 60)}s`);
export const fmtSize = (n) => (n < 1024 ? `${n} B` : n < 1048576 ? `${(n / 1024).toFixed(1)} KB` : `${(n / 1048576).toFixed(1)} MB`);

// "3 min ago" (the exact time goes in the element's title).
export function fmtAgo(iso, now = Date.now()) {
  if (!iso) return "—";
  const s = Math.round((now - new Date(iso).getTime()) / 1000);
  if (s < 45) return "just now";
  if (s < 90 * 60) return `${Math.max(1, Math.round(s / 60))} min ago`;
  if (s < 36 * 3600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

export function flash(id, text, good) {
  const box = $(id);
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
  clearTimeout(box._t);
  box._t = setTimeout(() => (box.className = "msg"), 6000);
}

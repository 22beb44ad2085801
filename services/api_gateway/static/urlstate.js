// What the page shows lives in the URL, so a reload or a shared link shows the same: the list's and the
// log viewer's filters in the query string (in this order), the open task or view in the hash.

const ORDER = ["status", "q", "level", "step", "text", "since", "until"];

export function param(name) {
  return new URLSearchParams(location.search).get(name) || "";
}

// Sets (or, for an empty value, removes) the given parameters; the history entry is replaced, not added.
export function setParams(changes) {
  const current = new URLSearchParams(location.search);
  for (const [k, v] of Object.entries(changes)) {
    if (v) current.set(k, v); else current.delete(k);
  }
  const ordered = new URLSearchParams();
  for (const k of ORDER) if (current.has(k)) ordered.set(k, current.get(k));
  for (const [k, v] of current) if (!ORDER.includes(k)) ordered.set(k, v);
  const search = ordered.toString() ? `?${ordered}` : "";
  if (search !== location.search) history.replaceState(history.state, "", location.pathname + search + location.hash);
}

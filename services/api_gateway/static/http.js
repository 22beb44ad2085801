// The gateway's JSON API as the UI calls it. Every response is the envelope {code, success, message, data};
// a failure becomes an Error carrying the HTTP status and the envelope's data (its errors[] and reason).

export const DATA_PIPELINE = "/api/v0/data_pipeline";

// The token lives in sessionStorage (this tab only, gone when it closes), never in localStorage, which
// every tab and every later visit could read. A token an older version left in localStorage is removed.
export const TOKEN_KEY = "dp_token";
try { localStorage.removeItem(TOKEN_KEY); } catch (_) { /* storage disabled */ }

const $ = (id) => document.getElementById(id);

export function authHeaders() {
  const token = sessionStorage.getItem(TOKEN_KEY) || "";
  return token ? { Authorization: `Bearer ${token}` } : {};
}

// `path`: under /api/v0/data_pipeline, or a whole path when it starts with /api/.
export async function api(method, path, body) {
  const init = { method, headers: { ...authHeaders() } };
  if (body instanceof FormData) {
    init.body = body;
  } else if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  let resp;
  try {
    resp = await fetch(path.startsWith("/api/") ? path : DATA_PIPELINE + path, init);
  } catch (err) {
    setConn(false);
    throw new Error(`gateway unreachable: ${err.message}`);
  }
  setConn(true);
  if (resp.status === 401) askForToken();
  const envelope = await resp.json().catch(() => ({ success: false, data: { response: `HTTP ${resp.status}` } }));
  if (!envelope.success) {
    const d = envelope.data || {};
    const names = [...(d.missing_params || []), ...(d.invalid_params || [])];
    const text = d.response || `HTTP ${resp.status}`;
    const error = new Error(text + (names.length && !text.includes(names[0]) ? ` (${names.join(", ")})` : ""));
    error.status = resp.status;
    error.data = d;
    throw error;
  }
  return envelope.data;
}

export function setConn(ok) {
  $("conn").textContent = ok ? "" : "gateway unreachable";
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// A 401 means this gateway has tokens configured: say so next to the token field and put the cursor there
// (once, so a later 401 never pulls focus away from what the user is typing).
export function askForToken() {
  const had = Boolean(sessionStorage.getItem(TOKEN_KEY));
  const msg = $("token-msg");
  msg.textContent = had ? "This token was refused: enter a valid API token." : "This gateway needs an API token: enter it here.";
  msg.hidden = false;
  $("token").setAttribute("aria-invalid", "true");
  if (document.activeElement === document.body) $("token").focus();
}

// A download with the bearer token (fetch + blob rather than a plain link). Resolves with the HTTP
// status of a failure, or null.
export async function saveAs(url, fileName) {
  let resp;
  try {
    resp = await fetch(url, { headers: authHeaders() });
  } catch (err) {
    return `gateway unreachable: ${err.message}`;
  }
  if (resp.status === 401) askForToken();
  if (!resp.ok) return `HTTP ${resp.status}`;
  const href = URL.createObjectURL(await resp.blob());
  const a = document.createElement("a");
  a.href = href;
  a.download = fileName;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(href), 10000);
  return null;
}

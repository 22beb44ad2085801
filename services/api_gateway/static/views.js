// The page's views (the task list and detail, training data, runners and queues, …). A view is one
// registerView() call and one <div class="view" id="view-NAME" hidden> in index.html; it is chosen by the
// hash (#NAME); any other hash (a task id, or none) is the task view. The nav in the header lists them.

const views = new Map();
let shown = null;

// `onShow`/`onHide`: start and stop whatever the view keeps live (polling) while it is on screen.
export function registerView(name, { label, onShow = () => {}, onHide = () => {} }) {
  views.set(name, { label, onShow, onHide });
  const nav = document.getElementById("views");
  const link = document.createElement("a");
  link.href = name === "tasks" ? "#" : `#${name}`;
  link.dataset.view = name;
  link.textContent = label;
  link.addEventListener("click", (ev) => {
    ev.preventDefault();
    go(name);
  });
  if (name === "tasks") nav.prepend(link); else nav.append(link); // the task view comes first
  if (shown !== null) route();
}

export function currentView() {
  const hash = decodeURIComponent(location.hash.slice(1));
  return views.has(hash) && hash !== "tasks" ? hash : "tasks";
}

let lastTaskHash = "";

// Opens a view as a new history entry (Back returns to the previous one); the task view returns to the
// task that was open.
export function go(name) {
  const hash = name === "tasks" ? lastTaskHash : `#${name}`;
  if (location.hash !== hash) history.pushState(null, "", location.pathname + location.search + hash);
  route();
}

export function route() {
  const name = currentView();
  if (name === "tasks" && !location.hash.startsWith("#review=")) lastTaskHash = location.hash;
  for (const [other, view] of views) {
    const node = document.getElementById(`view-${other}`);
    if (node) node.hidden = other !== name;
    if (other !== name && shown === other) view.onHide();
  }
  document.querySelectorAll("#views a").forEach((a) => {
    if (a.dataset.view === name) a.setAttribute("aria-current", "page"); else a.removeAttribute("aria-current");
  });
  if (shown !== name) {
    shown = name;
    views.get(name)?.onShow();
  }
}

window.addEventListener("popstate", route);

// Incremental runs in the create form: "Changes since the last run" asks GET /database/diff for the
// connection typed in; when tables changed since the newest completed task on it, the form offers
// "run incrementally": ticking it fills the form's "Incremental from" field with that task (the create sends
// the field as incremental_from), unticking it empties the field again. Asked only on a click: a database
// never documented before answers 400, which is no error of the user's.

import { $, el } from "./dom.js";
import { api } from "./http.js";

function hint() {
  let box = $("incremental-hint");
  if (!box) {
    box = el("div", { id: "incremental-hint", class: "muted small", role: "status", "aria-live": "polite" });
    $("conn-result").after(box);
  }
  return box;
}

async function checkChanges() {
  const conn = $("f-db-connection").value.trim();
  const box = hint();
  box.replaceChildren();
  if (!conn) return;
  box.textContent = "comparing with the last run…";
  let data;
  try {
    data = await api("GET", `/database/diff?db_connection=${encodeURIComponent(conn)}&since_task=latest`);
  } catch (err) {
    box.textContent = `no incremental run possible: ${err.message}`;
    return;
  }
  const t = data.tables;
  const moved = t.changed + t.new + t.dropped;
  if (!moved) {
    box.textContent = `no table changed since task ${data.since_task}: nothing to regenerate`;
    return;
  }
  const names = [...data.changed, ...data.new, ...data.dropped].slice(0, 10).join(", ");
  box.replaceChildren(
    el("label", { class: "pick" },
      el("input", { type: "checkbox", id: "f-incremental", value: data.since_task, onchange: offerChanged }),
      ` ${moved} table(s) changed since task ${data.since_task} (${t.changed} changed, ${t.new} new, `
        + `${t.dropped} dropped: ${names}) — run incrementally? ${t.unchanged} unchanged table(s) are reused.`),
  );
}

function offerChanged(ev) {
  const field = $("f-incremental-from");
  if (ev.target.checked) field.value = ev.target.value;
  else if (field.value === ev.target.value) field.value = "";
  field.dispatchEvent(new Event("input")); // clears an error shown under the field
}

// Another connection withdraws the offer, and the task it filled in (it ran on the other database).
function withdraw() {
  const offer = $("f-incremental");
  if (offer && offer.checked && $("f-incremental-from").value === offer.value) $("f-incremental-from").value = "";
  hint().replaceChildren();
}

const button = el("button", { type: "button", class: "ghost fixed", id: "check-changes" }, "Changes since the last run");
button.addEventListener("click", checkChanges);
$("test-conn").after(button);
$("f-db-connection").addEventListener("input", withdraw);

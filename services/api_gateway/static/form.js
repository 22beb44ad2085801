// The create form: every field the API takes, required markers, the API's errors[] under their fields
// until that field changes, "Test connection" listing the tables to tick, and a table-list file sent
// with the create.

import { $, el } from "./dom.js";
import { api } from "./http.js";
import "./incremental.js";

let onCreated = async () => {};

// Errors are shown under their own field (the API's errors[] name the field and say what is wrong) and
// stay until that field is changed; the banner only sums up. Fields the form has no place for go there.
const FORM_FIELDS = ["db_connection", "table_list", "table_list_file", "table_list_path", "business_context", "task_name",
  "db_name", "single_step", "from_step", "to_step", "theme_count", "questions_per_theme", "llm_repair_rounds",
  "max_llm_tokens", "incremental_from"];
const NUMBERS = ["single_step", "from_step", "to_step", "theme_count", "questions_per_theme", "llm_repair_rounds", "max_llm_tokens"];

function fieldInput(name) {
  return $("create").elements[name];
}

function setFieldError(name, text) {
  const box = $(`err-${name}`);
  const input = fieldInput(name);
  if (!box || !input) return false;
  box.textContent = text;
  box.hidden = !text;
  if (text) input.setAttribute("aria-invalid", "true"); else input.removeAttribute("aria-invalid");
  return true;
}

function clearFieldErrors() {
  FORM_FIELDS.forEach((name) => setFieldError(name, ""));
}

// Returns the messages no field could take.
function showFieldErrors(err) {
  const d = err.data || {};
  const byField = {};
  for (const e of d.errors || []) (byField[e.field] ||= []).push(e.message);
  for (const name of d.missing_params || []) (byField[name] ||= []).push("required");
  for (const name of d.invalid_params || []) if (!byField[name]) byField[name] = [d.response || "invalid"];
  if (!Object.keys(byField).length) return [err.message];
  const rest = [];
  // The API has one table_list_file: the uploaded file or, when that field was used, the server path.
  const serverPath = fieldInput("table_list_path").value.trim();
  for (const [field, messages] of Object.entries(byField)) {
    const name = field === "table_list_file" && serverPath ? "table_list_path" : field;
    const text = [...new Set(messages)].join("; ");
    if (!setFieldError(name, text)) rest.push(`${name}: ${text}`);
  }
  return rest;
}

function showFormMessage(text, good) {
  const box = $("create-msg");
  clearTimeout(box._t);
  box.textContent = text;
  box.className = `msg show ${good ? "good" : "bad"}`;
  if (good) box._t = setTimeout(() => (box.className = "msg"), 6000);
}

for (const name of FORM_FIELDS) {
  const input = fieldInput(name);
  input?.addEventListener(input.type === "file" || input.tagName === "SELECT" ? "change" : "input", () => setFieldError(name, ""));
}

function syncStepMenu() {
  const single = $("f-execution-mode").value === "single";
  $("f-single-step").disabled = !single;
  if (!single) { $("f-single-step").value = ""; setFieldError("single_step", ""); }
  // A range is complete mode's (single mode is the range from = to already).
  for (const name of ["from_step", "to_step"]) {
    fieldInput(name).disabled = single;
    if (single) { fieldInput(name).value = ""; setFieldError(name, ""); }
  }
  $("step-hint").hidden = !(single && Number($("f-single-step").value) > 1);
}
$("f-execution-mode").addEventListener("change", syncStepMenu);
$("f-single-step").addEventListener("change", syncStepMenu);
syncStepMenu();

$("create").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const f = ev.target.elements;
  clearFieldErrors();
  const tables = f.table_list.value.split(/[\n,]/).map((s) => s.trim()).filter(Boolean);
  const file = f.table_list_file.files[0];
  const serverPath = f.table_list_path.value.trim();
  const parameters = {
    db_connection: f.db_connection.value.trim(),
    business_context: f.business_context.value.trim(),
    execution_mode: f.execution_mode.value,
    enable_sql_validation: f.enable_sql_validation.checked,
    enable_llm_repair: f.enable_llm_repair.checked,
    modify_original_file: f.modify_original_file.checked,
    enable_training_data_load: f.enable_training_data_load.checked,
    review_before_load: f.review_before_load.checked,
  };
  // Checked here too, so the obvious mistakes are marked at once (the server checks everything again).
  const local = {};
  if (!parameters.db_connection) local.db_connection = "required";
  if (!parameters.business_context) local.business_context = "required";
  if (tables.length && file) local.table_list_file = "give the tables as names or as a file, not both";
  if (serverPath && (tables.length || file)) local.table_list_path = "give the tables one way: names, a file, or a file on the server";
  if (f.from_step.value && f.to_step.value && Number(f.from_step.value) > Number(f.to_step.value)) {
    local.to_step = "the last step comes after the first one";
  }
  if (parameters.execution_mode === "single" && !f.single_step.value) local.single_step = "choose the step to run";
  if (Object.keys(local).length) {
    Object.entries(local).forEach(([name, text]) => setFieldError(name, text));
    showFormMessage("Fix the marked fields.", false);
    fieldInput(Object.keys(local)[0]).focus();
    return;
  }
  if (tables.length) parameters.table_list = tables;
  if (serverPath) parameters.table_list_file = serverPath;
  for (const name of ["task_name", "db_name", "incremental_from"]) if (f[name].value.trim()) parameters[name] = f[name].value.trim();
  for (const name of NUMBERS) if (f[name].value !== "") parameters[name] = Number(f[name].value);
  let body = { task_type: "complete_workflow", parameters };
  if (file) {
    // The file goes with the create (multipart): step 1 reads it from the new task's directory.
    body = new FormData();
    body.append("task_type", "complete_workflow");
    body.append("parameters", JSON.stringify(parameters));
    body.append("table_list_file", file, file.name);
  }
  try {
    const data = await api("POST", "/tasks", body);
    showFormMessage(`created ${data.task_id}`, true);
    // The connection, database, context and settings stay for the next task; what names one task's tables
    // or its earlier run goes.
    for (const name of ["task_name", "table_list", "table_list_file", "table_list_path", "incremental_from"]) f[name].value = "";
    $("incremental-hint")?.replaceChildren();
    await onCreated(data.task_id);
  } catch (err) {
    const rest = showFieldErrors(err);
    showFormMessage(rest.length ? rest.join("\n") : "Fix the marked fields.", false);
    const first = $("create").querySelector("[aria-invalid='true']");
    if (first) first.focus();
  }
});

// "Test connection": the tables the database offers, to tick into the list.
$("test-conn").addEventListener("click", async () => {
  const conn = $("f-db-connection").value.trim();
  setFieldError("db_connection", "");
  $("table-picker").hidden = true;
  if (!conn) return setFieldError("db_connection", "required");
  $("conn-result").textContent = "connecting…";
  let data;
  try {
    const schema = $("f-schema").value.trim();
    data = await api("POST", "/database/tables", { db_connection: conn, ...(schema ? { schema } : {}) });
  } catch (err) {
    $("conn-result").textContent = "";
    const rest = showFieldErrors(err);
    if (rest.length) setFieldError("db_connection", rest.join("; "));
    return;
  }
  const names = data.tables.map((t) => (typeof t === "string" ? t : `${t.schema}.${t.name}`));
  $("conn-result").textContent = `connection ok: ${data.total} table(s)`;
  const listed = () => new Set($("f-table-list").value.split(/[\n,]/).map((x) => x.trim()).filter(Boolean));
  const shown = names.slice(0, 300);
  $("table-picker-list").replaceChildren(
    ...shown.map((name, i) => el("label", { class: "pick" },
      el("input", { type: "checkbox", id: `pick-${i}`, value: name, ...(listed().has(name) ? { checked: "" } : {}),
        onchange: (ev) => {
          const set = listed();
          if (ev.target.checked) set.add(name); else set.delete(name);
          $("f-table-list").value = [...set].join("\n");
          setFieldError("table_list", "");
        } }),
      ` ${name}`)),
  );
  if (names.length > shown.length) $("table-picker-list").append(el("p", { class: "muted small" }, `first ${shown.length} shown`));
  $("table-picker").hidden = !names.length;
});


export function initForm(hooks) {
  ({ onCreated } = hooks);
}

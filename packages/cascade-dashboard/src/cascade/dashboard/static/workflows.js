// The "Start a workflow" section: the workflows the serving processes announce (GET
// /api/workflows: each with its params, who serves it, and whether the asker may start it),
// and for each one the asker may start, a form: a field per param (a value that parses as
// JSON is sent as that JSON, else as text, as `cascade start --param` does; an empty field
// leaves a param to its default), a reason, and Start (POST /api/workflows/{name}/start).
// The answer names the run started (a link to it). Beside each workflow, the triggers that
// start it, as each of their servers says, and for those the asker may steer, Pause (with a
// reason) or Resume: a pause on the scope /api/workflows gives (trigger:<name>, or that placed
// in its org or project) through /api/constraints, as a schedule's. Every string from the
// broker reaches the page through textContent or setAttribute only.
import { ask, control } from "./api.js";
import { $, el, fillTable, row, runButton, span } from "./dom.js";
import { select, selected } from "./live.js";
import { pauseText, steer, steerForm } from "./schedules.js";

const WORKFLOWS_EVERY = 10000; // ms between two reads of the list while the page is open

// A field's value as a param: JSON when it parses, else the text itself.
function paramValue(text) {
  try { return JSON.parse(text); } catch (error) { return text; }
}

function startWorkflow(workflow, form) {
  const params = {};
  for (const field of form.querySelectorAll("input[data-param]")) {
    if (field.value.trim() !== "") params[field.getAttribute("data-param")] = paramValue(field.value.trim());
  }
  const body = { params };
  const reason = form.querySelector("input[data-reason]").value.trim();
  if (reason) body.reason = reason;
  const url = "/api/workflows/" + encodeURIComponent(workflow.name) + "/start";
  const sending = "starting " + workflow.name + "…";
  control($("w-status"), { sending, method: "POST", url, body }, (answer) => {
    const link = runButton(answer.run_id, "link", () => { if (answer.run_id !== selected) select(answer.run_id); });
    link.setAttribute("data-run-id", answer.run_id);
    const started = "started " + workflow.name + " on " + answer.source + (answer.queued ? " (queued)" : "");
    return [started + ": run ", link];
  });
}

function workflowForm(workflow) {
  const form = el("form", null, "start-form");
  form.setAttribute("data-workflow", workflow.name);
  for (const param of workflow.params) {
    const field = el("input");
    field.size = 12;
    field.setAttribute("data-param", param.name);
    field.setAttribute("aria-label", workflow.name + " " + param.name);
    const said = param.required ? "required" : "default " + JSON.stringify(param.default);
    field.placeholder = param.name + (param.annotation ? ": " + param.annotation : "") + " (" + said + ")";
    form.appendChild(field);
  }
  const reason = el("input");
  reason.size = 20;
  reason.maxLength = 256;
  reason.placeholder = "reason";
  reason.setAttribute("data-reason", "");
  reason.setAttribute("aria-label", "reason of the start of " + workflow.name);
  form.appendChild(reason);
  const button = el("button", "Start");
  button.type = "submit";
  form.appendChild(button);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    startWorkflow(workflow, form);
  });
  return form;
}

// A trigger as one of its servers says it: what it starts on, the runs it started of the events
// it heard, waiting, dropped, paused or not (by whom, until when, why), its last event
// (docs/triggers.md).
function triggerText(t) {
  return t.name + " (" + t.kind + ": " + t.on + ") on " + t.source + ": " + t.started + " of " +
    t.events + " events" + (t.waiting ? ", " + t.waiting + " waiting" : "") +
    (t.dropped ? ", " + t.dropped + " dropped" : "") + (t.paused ? ", " + pauseText(t) : "") +
    (t.last_event ? "; last: " + t.last_event : "");
}

// The triggers that start a workflow, each on a line of its own, with Pause or Resume for those
// the asker may steer ("-": none).
function triggersCell(triggers) {
  if (!triggers.length) return "-";
  const cell = el("div");
  for (const t of triggers) {
    const line = el("div", null, "trigger");
    line.setAttribute("data-trigger", t.name);
    line.setAttribute("data-source", t.source);
    line.appendChild(span(triggerText(t), t.paused ? "paused" : ""));
    if (t.steerable) {
      const scope = t.scope || "trigger:" + t.name;
      line.appendChild(steerForm(t.name, t.paused, "trigger-form",
        (form) => steer($("w-status"), t.name, scope, t.paused, form, loadWorkflows)));
    }
    cell.appendChild(line);
  }
  return cell;
}

let workflowsSeen = null; // the list drawn: the same list is not drawn again
const forms = new Map(); // workflow -> {params, form}: a form being typed in is kept as it is

// The workflow's form: the one drawn before while its params are the same (what was typed in
// it stays), else a new one.
function formOf(workflow) {
  const params = JSON.stringify(workflow.params);
  const kept = forms.get(workflow.name);
  if (kept && kept.params === params) return kept.form;
  const form = workflowForm(workflow);
  forms.set(workflow.name, { params, form });
  return form;
}

async function loadWorkflows() {
  let answer;
  try {
    answer = await ask("GET", "/api/workflows");
  } catch (error) {
    return; // an older dashboard, or one that may not read
  }
  const key = JSON.stringify(answer.workflows);
  if (key === workflowsSeen) return;
  // a field being typed in would lose its focus (and the keys typed next) to the redraw: the
  // next read draws it
  if (document.activeElement && $("w-table").contains(document.activeElement)) return;
  workflowsSeen = key;
  $("w-none").hidden = answer.workflows.length > 0;
  $("w-table").hidden = !answer.workflows.length;
  const names = new Set(answer.workflows.map((w) => w.name));
  for (const name of forms.keys()) if (!names.has(name)) forms.delete(name);
  fillTable($("w-table"), answer.workflows.map((workflow) => {
    const servers = workflow.servers.map((s) => s.source + (s.online ? "" : " (offline)") +
      " " + s.running + "/" + s.capacity + (s.queued ? " +" + s.queued + " queued" : ""));
    const tr = row([workflow.name, workflow.doc || "-", servers.join(", "),
      triggersCell(workflow.triggers || []),
      workflow.startable ? formOf(workflow) : span("(not yours to start)", "note")]);
    tr.setAttribute("data-workflow", workflow.name);
    return tr;
  }));
}

let workflowsTimer = null;

// Read the list now (again: a new token may start other workflows; drawn again only if it
// changed), and every so often.
export function startWorkflows() {
  loadWorkflows();
  if (workflowsTimer === null) workflowsTimer = setInterval(loadWorkflows, WORKFLOWS_EVERY);
}

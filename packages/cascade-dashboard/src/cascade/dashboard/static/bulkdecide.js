// Decisions in bulk, as `cascade retry|skip|fail --held` decides: a filter over the held tasks
// (run id or prefix, task name glob, org/project, error text), kept in the address
// (/decisions?task=load_*, so a filtered list is a link), whose matches GET /api/held lists with
// their count (at most its `limit`, 500, saying so); one decision (retry, skip or fail: complete
// takes a result per task, so it stays the task's own button) with a reason, shown first as what
// it would decide (the list and its count: the gates left out of a retry, as the CLI leaves
// them, and those the asker may not decide on) and sent only on confirm, each through the
// task's own POST /api/runs/{run}/tasks/{task}/decide at the attempt listed, so every one is
// guarded and audited as a single decision is; each row then says what came of it (a refusal
// with its reason), never dropped. Every string from the broker reaches the page through
// textContent or setAttribute only.
import { ask } from "./api.js";
import { $, el, fillTable, row, span } from "./dom.js";
import { count, shortId } from "./format.js";
import { heldWhy } from "./decisions.js";
import { live } from "./live.js";
import { current, DECISION_FILTERS } from "./places.js";
import { mayRead } from "./who.js";

// The fields that hold the filters (the address's query and /api/held name them as places.js).
const FIELDS = { run_id: "bulk-run", task: "bulk-task", project: "bulk-project", error: "bulk-error" };
const DONE = { retry: "retried", skip: "skipped", fail: "failed" };
const AT_ONCE = 4; // decisions in flight at once (each waits for its engine's answer)

let matches = []; // the held tasks the filter matched, as /api/held listed them
let plan = null; // { decision, reason, tasks }: what the dry run showed, until confirmed
let asked = 0; // the latest listing asked for: an older answer is not drawn over it
let settled = false; // outcomes are on the rows (a dry run's or a decision's): kept until asked again
let heldSeen = ""; // the live held list as last seen (renderHeldMatches)

function query() {
  const params = new URLSearchParams();
  for (const name of DECISION_FILTERS) {
    const value = $(FIELDS[name]).value.trim();
    if (value) params.set(name, value);
  }
  return params;
}

function say(text, className) {
  $("bulk-status").textContent = text;
  $("bulk-status").className = className || "note";
}

function outcomeCell() {
  const cell = el("span", null, "outcome");
  cell.setAttribute("data-outcome", "");
  return cell;
}

function drawMatches(total, limit) {
  const rows = matches.map((t) => {
    const tr = row([span(shortId(t.run_id)), t.org_id + "/" + t.project_id, span(t.name, "c-HELD"),
      t.task_id, t.attempt ?? "-", heldWhy(t), outcomeCell()]);
    tr.cells[0].title = t.run_id;
    tr.setAttribute("data-run-id", t.run_id);
    tr.setAttribute("data-task-id", t.task_id);
    return tr;
  });
  fillTable($("bulk-tasks"), rows);
  $("bulk-count").textContent = count(total) + (total === 1 ? " held task matches" : " held tasks match") +
    (total > matches.length ? " (the " + count(matches.length) + " held longest listed: at most " +
      count(limit) + " are decided at once)" : "");
  $("bulk-controls").hidden = !matches.some((t) => t.decide);
}

// The matches of the filter in the fields, listed afresh (any plan shown is dropped).
export async function listMatches() {
  const mine = ++asked;
  plan = null;
  settled = false;
  $("bulk-plan").hidden = true;
  if (!(await mayRead())) return; // nobody signed in yet: nothing asked, nothing refused
  try {
    const answer = await ask("GET", "/api/held?" + query().toString());
    if (mine !== asked) return;
    matches = answer.tasks;
    drawMatches(answer.total, answer.limit);
  } catch (error) {
    if (mine === asked) say("refused: " + error.message, "error");
  }
}

function rowOf(task) {
  return [...$("bulk-tasks").tBodies[0].rows].find((tr) =>
    tr.getAttribute("data-run-id") === task.run_id && tr.getAttribute("data-task-id") === task.task_id);
}

function mark(task, text, className) {
  const tr = rowOf(task);
  const cell = tr && tr.querySelector("[data-outcome]");
  if (!cell) return;
  cell.textContent = text;
  cell.className = "outcome " + className;
}

// The dry run: what the decision would decide, and what it leaves out and why.
function showPlan() {
  asked += 1; // the plan is of the rows shown: a listing asked before it is not drawn over it
  const decision = $("bulk-decision").value;
  const reason = $("bulk-reason").value.trim();
  const tasks = [];
  let gates = 0;
  let notYours = 0;
  for (const task of matches) {
    if (!task.decide) { notYours += 1; mark(task, "left out: not yours to decide", "note"); continue; }
    if (decision === "retry" && task.awaits_approval) {
      gates += 1; mark(task, "left out: a gate has no attempt to retry", "note"); continue;
    }
    tasks.push(task);
    mark(task, "would " + decision, "would");
  }
  const left = [];
  if (gates) left.push(count(gates) + (gates === 1 ? " gate" : " gates") + " (no attempt to retry)");
  if (notYours) left.push(count(notYours) + " not yours to decide");
  $("bulk-plan-said").textContent = "would " + decision + " " + count(tasks.length) +
    (tasks.length === 1 ? " held task" : " held tasks") +
    (reason ? " (reason: " + reason + ")" : "") + (left.length ? "; left out: " + left.join(", ") : "");
  $("bulk-confirm").textContent = "Confirm: " + decision + " " + count(tasks.length);
  $("bulk-confirm").disabled = !tasks.length;
  $("bulk-plan").hidden = false;
  plan = { decision, reason, tasks };
  settled = true;
}

async function decideOne(task, decision, reason) {
  const url = "/api/runs/" + encodeURIComponent(task.run_id) + "/tasks/" +
    encodeURIComponent(task.task_id) + "/decide";
  const body = { decision, attempt: task.attempt };
  if (reason) body.reason = reason;
  try {
    await ask("POST", url, body);
    mark(task, DONE[decision], "ok");
    return true;
  } catch (error) {
    mark(task, "refused: " + error.message, "error");
    return false;
  }
}

// On confirm: each task of the plan decided, AT_ONCE at a time, each row saying its outcome.
async function confirmPlan() {
  if (!plan) return;
  const { decision, reason, tasks } = plan;
  plan = null;
  $("bulk-plan").hidden = true;
  say("sending " + decision + " of " + count(tasks.length) + "…");
  let next = 0;
  let applied = 0;
  const worker = async () => {
    while (next < tasks.length) {
      const task = tasks[next++];
      if (await decideOne(task, decision, reason)) applied += 1;
    }
  };
  await Promise.all(Array.from({ length: Math.min(AT_ONCE, tasks.length) }, worker));
  const refused = tasks.length - applied;
  say("done: " + DONE[decision] + " " + count(applied) + " of " + count(tasks.length) +
    (refused ? ", " + count(refused) + " refused (each row says why)" : ""), refused ? "error" : "note ok");
}

// The live held list moved (render.js calls this on each paint): the matches are listed again,
// unless a dry run or a decision's outcomes are on the rows (they stay until asked again).
export function renderHeldMatches() {
  const held = live.held || { tasks: [], total: 0 };
  const seen = held.total + " " + held.tasks.map((t) => t.run_id + "/" + t.task_id + "/" + t.attempt).join(" ");
  if (seen === heldSeen) return;
  heldSeen = seen;
  if (current.name === "decisions" && !settled) listMatches();
}

// The filters from the address (on showing Decisions: a link, back and forward), then listed.
export function showBulkFilters(url) {
  for (const name of DECISION_FILTERS) $(FIELDS[name]).value = url.searchParams.get(name) || "";
  say("");
  listMatches();
}

export function startBulkDecisions() {
  $("bulk-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    const search = query().toString();
    const target = location.pathname + (search ? "?" + search : "");
    if (target !== location.pathname + location.search) history.pushState(null, "", target);
    say("");
    listMatches();
  });
  $("bulk-preview").addEventListener("click", showPlan);
  $("bulk-confirm").addEventListener("click", confirmPlan);
  $("bulk-cancel").addEventListener("click", () => {
    plan = null;
    settled = false;
    $("bulk-plan").hidden = true;
    for (const task of matches) mark(task, "", "");
  });
}

// The Decisions place: the tasks that failed and are held for a decision, and the gates
// awaiting approval (live.held, from /api/state and the stream's "held" part), the longest held
// first. Whoever may decide on a task (an operator within their scopes: the server marks each
// with "decide") gets its buttons: Retry, Skip, Complete (with the JSON result typed in the
// field beside it) and Fail; on a gate, whose prompt stands where a failure's error does,
// Approve (complete: the field's value, else true), Reject (fail) and Skip, for a gate has no
// attempt to retry. The reason field goes with each; the others see the list without them. Each button asks
// POST /api/runs/{run}/tasks/{task}/decide for the held attempt shown, so that a decision
// meant for one failure never lands on the next. Every string from the broker reaches the page
// through textContent or setAttribute only.
import { control } from "./api.js";
import { $, el, fillTable, row, runButton, span } from "./dom.js";
import { count, dueAt, seconds } from "./format.js";
import { live, select } from "./live.js";

const DECISIONS = ["retry", "skip", "complete", "fail"];
// a gate's decisions, as its buttons say them
const GATE_DECISIONS = [["complete", "Approve"], ["fail", "Reject"], ["skip", "Skip"]];

// A complete's result: the JSON typed in the task's field (empty: null).
function completeResult(field) {
  const text = field.value.trim();
  if (!text) return null;
  return JSON.parse(text); // a SyntaxError is said as the refusal
}

function decide(task, decision, field, where) {
  const status = where.status;
  let body;
  try {
    body = { decision, attempt: task.attempt };
    if (decision === "complete") body.result = completeResult(field);
    const reason = where.reason.value.trim();
    if (reason) body.reason = reason;
  } catch (error) {
    status.textContent = "refused: the result is not JSON (" + error.message + ")";
    status.className = "error";
    return;
  }
  const url = "/api/runs/" + encodeURIComponent(task.run_id) + "/tasks/" +
    encodeURIComponent(task.task_id) + "/decide";
  const sending = "sending " + decision + " of " + task.name + "…";
  control(status, { sending, method: "POST", url, body }, (answer) => "done: " + answer.said);
}

// A held task's buttons; `where` says the status line its answers are said in and the reason
// field that goes with each (those of "Needs a decision" when not given).
export function heldButtons(task, where) {
  where = where || { status: $("held-status"), reason: $("held-reason") };
  const cell = el("span", null, "decide");
  const field = el("input");
  field.size = 10;
  field.placeholder = task.awaits_approval ? "value (JSON)" : "result (JSON)";
  field.setAttribute("aria-label", task.awaits_approval
    ? "the gate's value when approved, as JSON (empty: true)"
    : "the result of complete, as JSON");
  const decisions = task.awaits_approval ? GATE_DECISIONS
    : DECISIONS.map((d) => [d, d[0].toUpperCase() + d.slice(1)]);
  for (const [decision, label] of decisions) {
    const button = el("button", label);
    button.type = "button";
    button.setAttribute("data-decision", decision);
    button.addEventListener("click", () => decide(task, decision, field, where));
    cell.appendChild(button);
    if (decision === "complete") cell.appendChild(field);
  }
  return cell;
}

// Why it is held: a gate's prompt, awaiting approval; a failed task's error.
export function heldWhy(task) {
  if (!task.awaits_approval) return span(task.error, "error");
  const cell = el("span", "awaiting approval: ", "approval");
  cell.appendChild(span(task.prompt || "-", "prompt"));
  return cell;
}

export function renderHeld() {
  const held = live.held || { tasks: [], total: 0 };
  const decides = held.tasks.some((t) => t.decide);
  $("held-controls").hidden = !decides;
  const rows = held.tasks.map((t) => {
    const open = runButton(t.run_id, "link", () => select(t.run_id));
    const deadline = t.deadline == null ? "-"
      : dueAt(t.deadline, live.now) + ", then " + (t.default || "fail");
    const tr = row([open, t.org_id + "/" + t.project_id, span(t.name, "c-HELD"), t.task_id,
      t.attempt ?? "-", heldWhy(t), seconds(live.now - t.since),
      deadline, t.decide ? heldButtons(t) : "-"]);
    tr.setAttribute("data-run-id", t.run_id);
    tr.setAttribute("data-task-id", t.task_id);
    return tr;
  });
  fillTable($("held-tasks"), rows);
  const more = held.total - held.tasks.length;
  $("held-count").textContent = count(held.total) + " held" +
    (more > 0 ? " (the " + count(held.tasks.length) + " held longest shown, " + count(more) + " more)" : "");
}

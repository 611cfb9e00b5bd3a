// A run's own page (/runs/ID; a prefix of 8 hex or more is redirected by the dashboard to the
// whole id): a live run and a past one alike. Live while the live view holds it (the stream's
// open run: live.js) and it runs, or it ended and the history has not recorded its end; else as
// the history recorded it (/api/history/run): the live view keeps no ended run whole (it
// compacts ended runs and lets them go, and an online engine's summary lists its last runs
// without their tasks). A run that is both shows the live state and what the history adds (the
// reruns of it, each attempt's decision, the reruns it reused from). It shows the run's status
// (by text and colour), name, parameters, who started it and why, its lineage (each run a link
// to its page), its actions (cancel while live, decide on its held tasks, rerun with its plan
// shown first), the graph's place (#run-graph: graph.js draws it), the timeline (timeline.js),
// the tasks as a table (a map one row with its items counted by state, opened to its items a
// page at a time, so that a map of 10,000 items is never a row per item), its logs (a live
// tail, a filter) and its failures with their tracebacks. Every string from the broker reaches the page through textContent or
// setAttribute only.
import { ask, control } from "./api.js";
import { heldButtons, heldWhy } from "./decisions.js";
import { $, el, fillList, fillTable, row, safeClass, span, traceback } from "./dom.js";
import { at, clock, count, dueAt, quoted, seconds, shortId, took } from "./format.js";
import { attemptsList, historyAwaited, historyGet, historyKnown } from "./history.js";
import { connecting, live, logTask, openLive, selected, showLogsOf } from "./live.js";
import { drawLogLines } from "./logs.js";
import { goTo, noPlace, placePath } from "./places.js";
import { schedule } from "./repaint.js";
import { showRunGraph } from "./rungraph.js";
import { scheduledText } from "./schedules.js";
import { DONE, decisionsText, lineOfWork, stateCounts } from "./states.js";
import { drawTimeline, foldedCounts, iterationOf, loopOf, mapOf } from "./timeline.js";
import { mayRead } from "./who.js";

const TASK_ROWS = 100;      // rows of the tasks table per page (a map's row stands for its items)
const ITEM_ROWS = 50;       // a map's items per page, once its row is opened
const LOG_LINES_SHOWN = 500; // the last lines (that match the filter) drawn
const ITEM = /\[([0-9]+)\]$/;

// What the page holds of the run it shows, beside the live state (live.js).
const page = {
  runId: null,
  recorded: null,     // the history's first page of the run: {run, tasks, failures, maps, next}
  recordedOf: null,   // the run it was asked for (null: not asked yet)
  recordedNote: "",   // why the history has none of it
  liveStatus: null,   // the live run's liveKey when the history was last read
  items: new Map(),   // a map's id -> {tasks, next, loading}: its recorded items read so far
  opened: new Map(),  // a map's id -> the page of its items shown (its row opened)
  tasksPage: 0,
  workflows: null,    // the served workflows by name -> whether the reader may start (rerun) it
  plan: null,         // a rerun's plan, shown until started or dropped
  logs: null,         // the recorded log lines read: {lines, next}
  drawn: new Map(),   // a part's id -> the key it was drawn with (a part is redrawn when it changes)
  graphSelected: null, // the task whose box in the graph was chosen last (its log lines shown)
};
window.cascadeRunPage = { draws: 0 }; // read by the tests

// -- opening ------------------------------------------------------------------------------

// Open the page of ``runId`` (null: none) showing the log lines of ``taskId`` (null: every
// task's), without a new entry in the tab's history: the opener places.js calls each time
// /runs/ID is shown (setRunPageOpener).
export function openRunPage(runId, taskId) {
  runId = runId || null;
  taskId = runId ? taskId || null : null;
  // the first place's run is open already (live.js's openFirst), its stream asked for once
  // the page may read
  if (runId !== selected || taskId !== logTask) openLive(runId, taskId);
  showRunPage(runId);
  schedule();
}

// Go to the page of ``runId``: a new entry in the tab's history (places.js then opens it).
export function goToRun(runId) {
  goTo({ ...noPlace(), name: "run", run: runId });
}

function showRunPage(runId) {
  if (runId === page.runId) return;
  Object.assign(page, { runId, recorded: null, recordedOf: null, recordedNote: "", liveStatus: null,
    tasksPage: 0, plan: null, logs: null, graphSelected: null });
  page.items.clear();
  page.opened.clear();
  page.drawn.clear();
  $("rp-action-status").textContent = "";
  $("rp-plan").hidden = true;
  $("rp-log-filter").value = "";
  if (runId) loadWorkflows();
}

// A link to another run's page: its short id, the whole id as its title.
function runLink(runId, status) {
  const link = el("a", shortId(runId), "run-link");
  link.setAttribute("href", placePath({ ...noPlace(), run: runId }));
  link.setAttribute("data-run-id", runId);
  link.title = runId;
  link.addEventListener("click", (event) => { event.preventDefault(); goToRun(runId); });
  if (status === undefined) return link;
  const both = el("span");
  both.append(link, span(" (" + (status || "not recorded") + ")", status ? safeClass(status) : "note"));
  return both;
}

// -- reading the history and the workflows ---------------------------------------------------

async function loadRecorded(runId) {
  page.recordedOf = runId;
  try {
    const { run, next_after, maps, loops } = await historyGet("/api/history/run", { id: runId });
    if (page.runId !== runId) return;
    page.recorded = { run, tasks: run.tasks, failures: run.failures, next: next_after, maps: maps || [],
      loops: loops || [] };
    page.recordedNote = "";
    if (!isLive()) loadRecordedLogs(true);
  } catch (error) {
    if (page.runId !== runId) return;
    page.recorded = null;
    page.recordedNote = error.status === 404 ? "the history has not recorded it" : "history: " + error.message;
  }
  schedule();
}

async function loadMoreTasks() {
  const shown = page.recorded;
  if (!shown || shown.next == null) return;
  const { run, next_after } = await historyGet("/api/history/run", { id: shown.run.run_id, after: shown.next });
  if (page.recorded !== shown) return;
  shown.tasks = shown.tasks.concat(run.tasks);
  shown.failures = shown.failures.concat(run.failures);
  shown.next = next_after;
  schedule();
}

// The next page of a map's recorded items.
async function loadItems(mapId) {
  const runId = page.runId;
  const loaded = page.items.get(mapId) || { tasks: [], next: undefined, loading: false };
  if (loaded.loading || loaded.next === null) return;
  loaded.loading = true;
  page.items.set(mapId, loaded);
  try {
    const params = { id: runId, map: mapId };
    if (loaded.next !== undefined) params.after = loaded.next;
    const { run, next_after } = await historyGet("/api/history/run", params);
    loaded.tasks = loaded.tasks.concat(run.tasks);
    loaded.next = next_after;
  } finally {
    loaded.loading = false;
  }
  if (page.runId === runId) schedule();
}

async function loadRecordedLogs(fresh) {
  const runId = page.runId;
  if (fresh) page.logs = { lines: [], next: 0, missing: 0 };
  const shown = page.logs;
  if (!shown || shown.next == null) return;
  const { lines, next_after, batches } = await historyGet("/api/history/runs/" + encodeURIComponent(runId) + "/logs",
    { after: shown.next });
  if (page.logs !== shown) return;
  // batches its engine numbered that never reached the history (the first page says): their
  // lines, of any task, are known neither in number nor by task
  if (batches && batches.missing) shown.missing = batches.missing;
  shown.lines = shown.lines.concat(lines);
  shown.next = next_after;
  schedule();
}

async function loadWorkflows() {
  if (!(await mayRead())) return; // nobody signed in yet: no rerun, and no refusal asked for
  try {
    const { workflows } = await ask("GET", "/api/workflows");
    page.workflows = new Map(workflows.map((w) => [w.name, Boolean(w.startable)]));
  } catch (error) {
    page.workflows = new Map(); // an older dashboard, or one that may not read: no rerun
  }
  schedule();
}

// -- actions: cancel, rerun (its plan first) -------------------------------------------------

function reasonBody(body) {
  const reason = $("rp-reason").value.trim();
  return reason ? { ...body, reason } : body;
}

function cancelRun() {
  const runId = page.runId;
  const body = reasonBody({});
  control($("rp-action-status"), { sending: "cancelling…", method: "POST",
    url: "/api/runs/" + encodeURIComponent(runId) + "/cancel",
    body: Object.keys(body).length ? body : undefined }, (answer) => "done: " + answer.said);
}

function askPlan() {
  const runId = page.runId;
  page.plan = null;
  $("rp-plan").hidden = true;
  control($("rp-action-status"), { sending: "asking for the rerun's plan…", method: "POST",
    url: "/api/runs/" + encodeURIComponent(runId) + "/rerun", body: reasonBody({ dry_run: true }) },
  (answer) => {
    if (page.runId === runId) {
      page.plan = answer;
      drawPlan(answer);
    }
    return "the plan of a rerun of " + shortId(runId) + " on " + answer.source +
      ": nothing is started until you confirm";
  });
}

function drawPlan(plan) {
  fillTable($("rp-plan-steps"), plan.plan.map((step) => {
    const tr = row([step.task_name, span(step.action, "plan-" + safeClass(step.action)), step.why || "-",
      step.from_run ? runLink(step.from_run) : "-"]);
    tr.setAttribute("data-task-id", step.task_id);
    tr.setAttribute("data-action", step.action);
    return tr;
  }));
  const counts = {};
  for (const step of plan.plan) counts[step.action] = (counts[step.action] || 0) + 1;
  const said = ["run", "reuse", "force", "skip"].filter((a) => counts[a]).map((a) => count(counts[a]) + " to " + a);
  const more = plan.plan_count - plan.plan.length;
  $("rp-plan-said").textContent = (said.join(", ") || "nothing to do") +
    (more > 0 ? " (" + count(more) + " more not listed)" : "");
  $("rp-plan").hidden = false;
  $("rp-rerun-confirm").focus();
}

function startRerun() {
  const runId = page.runId;
  $("rp-plan").hidden = true;
  page.plan = null;
  control($("rp-action-status"), { sending: "starting the rerun…", method: "POST",
    url: "/api/runs/" + encodeURIComponent(runId) + "/rerun", body: reasonBody({}) }, (answer) => {
    schedule(); // the new run is one of the reruns of this one
    return ["started the rerun on " + answer.source + (answer.queued ? " (queued)" : "") + ": run ",
      runLink(answer.run_id)];
  });
}

export function startRunPage() {
  $("rp-cancel").addEventListener("click", cancelRun);
  $("rp-rerun").addEventListener("click", askPlan);
  $("rp-rerun-confirm").addEventListener("click", startRerun);
  $("rp-rerun-drop").addEventListener("click", () => {
    page.plan = null;
    $("rp-plan").hidden = true;
    $("rp-action-status").textContent = "the rerun was not started";
  });
  $("rp-log-filter").addEventListener("input", schedule);
  // a task's box in the graph: its log lines (the filter set to its id), the box marked; a
  // map's open button: its row of the tasks table, opened to its items
  $("run-graph").addEventListener("graph-select", (event) => {
    page.graphSelected = event.detail.taskId;
    $("rp-log-filter").value = event.detail.taskId;
    schedule();
  });
  $("run-graph").addEventListener("graph-open", (event) => {
    const mapId = event.detail.taskId;
    if (!page.opened.has(mapId)) page.opened.set(mapId, 0);
    schedule();
    const row = [...$("rp-tasks").querySelectorAll("tr[data-map]")].find((tr) => tr.getAttribute("data-map") === mapId);
    if (row) row.scrollIntoView({ block: "nearest" });
  });
  $("rp-logs-all").addEventListener("click", () => showLogsOf(null));
  $("rp-timeline").addEventListener("click", (event) => { // a task's name: its lines only
    const name = event.target.closest && event.target.closest(".tl-name[data-task-id]");
    if (!name) return;
    if (isLive()) showLogsOf(name.getAttribute("data-task-id"));
    else { $("rp-log-filter").value = name.getAttribute("data-task-name"); schedule(); } // recorded: by its name
  });
  $("rp-logs-more").addEventListener("click", () => loadRecordedLogs(false));
  $("rp-tasks-more").addEventListener("click", () => loadMoreTasks());
  $("rp-tasks-prev").addEventListener("click", () => { page.tasksPage -= 1; schedule(); });
  $("rp-tasks-next").addEventListener("click", () => { page.tasksPage += 1; schedule(); });
  $("rp-tasks").tBodies[0].addEventListener("click", (event) => {
    const target = event.target.closest && event.target.closest("[data-map-open], [data-map-page]");
    if (!target) return;
    const mapId = target.getAttribute("data-map-open") ?? target.getAttribute("data-map-id");
    if (target.hasAttribute("data-map-open")) {
      if (page.opened.has(mapId)) page.opened.delete(mapId); else page.opened.set(mapId, 0);
    } else {
      page.opened.set(mapId, Math.max(0, (page.opened.get(mapId) || 0) + Number(target.getAttribute("data-map-page"))));
    }
    schedule();
  });
}

// -- drawing ------------------------------------------------------------------------------

// Draw a part again only when what it shows changed: a part redrawn at each frame could not
// be clicked, typed in or have its traceback kept open.
function changed(part, key) {
  if (page.drawn.get(part) === key) return false;
  page.drawn.set(part, key);
  return true;
}

function fact(name, value) {
  const item = el("div", null, "fact");
  item.append(el("dt", name), el("dd"));
  item.lastChild.append(value instanceof Node ? value : document.createTextNode(String(value)));
  return item;
}

function paramsText(params) {
  return Object.entries(params || {}).map(([k, v]) => k + "=" + JSON.stringify(v)).join(", ");
}

function drawHeader(liveRun, recorded) {
  const run = liveRun || (recorded && recorded.run);
  $("rp-id").textContent = page.runId;
  const asking = historyKnown && !page.recorded && page.recordedNote === ""; // the history not answered yet
  const status = run ? run.status : connecting || asking ? "opening\u2026" : "not heard of";
  $("rp-status").textContent = status;
  $("rp-status").className = "badge " + (run ? safeClass(run.status) : "");
  $("rp-name").textContent = run && run.name != null ? run.name : "";
  $("rp-decided").textContent = run ? decisionsText(run) : "";
  $("rp-where").textContent = liveRun ? (recorded ? "live, and recorded" : "live") : recorded ? "recorded" : "";
  const note = $("rp-note");
  const said = run || connecting || asking ? "" : "This dashboard holds no run " + page.runId + " now" +
    (historyKnown === false ? " and has no history" : ", and " + page.recordedNote) +
    ": it shows here once its engine's telemetry arrives.";
  note.textContent = said;
  note.hidden = !said;
  $("rp-body").hidden = !run;
}

function drawFacts(liveRun, recorded) {
  const run = liveRun || recorded.run;
  const origin = (liveRun && liveRun.origin) || (recorded && recorded.run.origin) || {};
  const started = liveRun ? liveRun.started : recorded.run.started_at;
  const ended = liveRun ? liveRun.ended : recorded.run.ended_at;
  // a live run's duration grows: it is part of what is drawn, so a repaint redraws it
  const duration = started == null ? null
    : seconds((ended == null ? live.now || Date.now() / 1000 : ended) - started);
  const lostAt = liveRun ? liveRun.lost_at : null;
  const key = JSON.stringify([origin, run.source, started, ended, run.error, duration, lostAt]);
  if (!changed("facts", key)) return;
  const facts = [];
  if (origin.workflow) facts.push(fact("workflow", origin.workflow));
  facts.push(fact("parameters", origin.params ? paramsText(origin.params) || "none" : "not said (not a served workflow's run)"));
  if (origin.request_id || origin.issued_by) facts.push(fact("started by", origin.issued_by || "someone unnamed"));
  if (origin.reason) facts.push(fact("why", quoted(origin.reason)));
  if (origin.request_id) facts.push(fact("request", origin.request_id));
  if (origin.schedule) facts.push(fact("schedule", scheduledText(origin)));
  // a run a trigger started: its trigger, the event said, and the run it followed, linked
  if (origin.trigger) {
    const said = el("span");
    said.append(span(origin.trigger + ": " + (origin.trigger_event || "an event")));
    if (origin.followed_run) said.append(span(", after "), runLink(origin.followed_run));
    facts.push(fact("trigger", said));
  }
  facts.push(fact("engine", run.source || "-"));
  facts.push(fact("started", at(started)));
  // lost: its engine went offline (the broker's word) before the run ended; its clock stops there
  if (lostAt != null) facts.push(fact("lost", span(at(lostAt) + ": its engine " + run.source + " went offline before it ended", "Lost")));
  else facts.push(fact("ended", ended == null ? "not yet" : at(ended)));
  if (duration != null) facts.push(fact("duration", duration));
  if (run.error) facts.push(fact("error", span(run.error, "error")));
  $("rp-facts").replaceChildren(...facts);
}

// Its line: the run it reruns, the first run of the line, and the runs that rerun it (the
// history's, and those live here).
function drawLineage(liveRun, recorded) {
  const origin = (liveRun && liveRun.origin) || (recorded && recorded.run.origin) || {};
  const recordedOf = recorded && recorded.run.rerun_of;
  const rerunOf = origin.rerun_of || (recordedOf && recordedOf.run_id) || null;
  const root = origin.root_run && origin.root_run !== rerunOf ? origin.root_run : null;
  const reruns = new Map();
  const carriers = new Map(); // the reruns a server started after this run's engine died: that engine
  for (const link of (recorded && recorded.run.replaced_by) || []) {
    reruns.set(link.run_id, link.status);
    if (link.lost_engine) carriers.set(link.run_id, link.lost_engine);
  }
  for (const run of live.runs.byId.values()) {
    if (run.origin && run.origin.rerun_of === page.runId) reruns.set(run.run_id, run.status);
    if (run.origin && run.origin.carried_on_from === page.runId) carriers.set(run.run_id, run.origin.lost_engine || "its engine");
  }
  const line = (recorded && recorded.run.line) || [];
  const carried = origin.carried_on_from ? [origin.carried_on_from, origin.lost_engine || "its engine"] : null;
  // lost with its engine, and the run a server carried it on as (the live view's word)
  const carriedAs = liveRun && liveRun.carried_on_as ? [liveRun.carried_on_as, liveRun.carried_on_by || "another server"] : null;
  const key = JSON.stringify([rerunOf, recordedOf && recordedOf.status, root, [...reruns], [...carriers], carried, carriedAs, line]);
  if (!changed("lineage", key)) return;
  const parts = [];
  const work = lineOfWork(line, (runId) => runLink(runId));
  if (work) parts.push(work, el("br"));
  if (carriedAs) {
    const went = el("span", "carried on as ", "carried-on-as");
    went.append(runLink(carriedAs[0]), span(" at " + carriedAs[1]));
    parts.push(went);
  }
  if (carried) {
    const from = el("span", (parts.length ? " \u00b7 " : "") + "carries on ", "carried-on-from");
    from.appendChild(runLink(carried[0], recordedOf && recordedOf.run_id === carried[0] ? recordedOf.status : undefined));
    from.appendChild(span(", lost with " + carried[1]));
    parts.push(from);
  } else if (rerunOf) {
    const of = el("span", "rerun of ", "rerun-of");
    of.appendChild(runLink(rerunOf, recordedOf && recordedOf.run_id === rerunOf ? recordedOf.status : undefined));
    parts.push(of);
  }
  if (root) {
    const first = el("span", (parts.length ? " \u00b7 " : "") + "its line's first run ", "root-run");
    first.appendChild(runLink(root));
    parts.push(first);
  }
  if (reruns.size) {
    const by = el("span", (parts.length ? " \u00b7 " : "") + "reruns of it: ", "reruns");
    [...reruns].forEach(([runId, status], i) => {
      if (i) by.appendChild(span(", "));
      by.appendChild(runLink(runId, status));
      if (carriers.has(runId)) by.appendChild(span(" (carried on after " + carriers.get(runId) + " died)"));
    });
    parts.push(by);
  }
  if (!parts.length) parts.push(span("lineage: a first run, with no reruns", "note"));
  $("rp-lineage").replaceChildren(...parts);
}

function drawActions(liveRun, recorded) {
  const run = liveRun || recorded.run;
  const origin = run.origin || (recorded && recorded.run.origin) || {};
  const running = run.status === "Running";
  $("rp-cancel").hidden = !(liveRun && running && live.controls);
  const startable = Boolean(origin.workflow && page.workflows && page.workflows.get(origin.workflow));
  $("rp-rerun").hidden = running || !startable;
  const held = (live.held && live.held.tasks || []).some((t) => t.run_id === page.runId && t.decide);
  $("rp-actions").hidden = $("rp-cancel").hidden && $("rp-rerun").hidden && !held; // its reason goes with a decision too
}

// Its held tasks (of the live list, the longest held first), each with its buttons for
// whoever may decide on it.
function drawHeld() {
  const held = (live.held && live.held.tasks || []).filter((t) => t.run_id === page.runId);
  $("rp-held").hidden = !held.length;
  if (!changed("held", JSON.stringify(held))) return;
  const where = { status: $("rp-action-status"), reason: $("rp-reason") };
  fillTable($("rp-held-tasks"), held.map((t) => {
    const deadline = t.deadline == null ? "-" : dueAt(t.deadline, live.now) + ", then " + (t.default || "fail");
    const why = heldWhy(t);
    why.title = why.textContent; // cut to a line in the box: its whole on hover
    const tr = row([span(t.name, "c-HELD"), t.task_id, t.attempt ?? "-", why,
      clock(t.since), deadline, t.decide ? heldButtons(t, where) : "-"]);
    tr.setAttribute("data-task-id", t.task_id);
    return tr;
  }));
}

// The run's tasks, as the live view has them, else as the history does; the items of a map the
// history read so far (its rows opened) with them.
function tasksOf(liveRun, recorded) {
  if (liveRun) return [...live.tasks.values()];
  const items = [...page.items.values()].flatMap((loaded) => loaded.tasks);
  return items.length ? recorded.tasks.concat(items) : recorded.tasks;
}

function drawRunTimeline(liveRun, recorded, tasks) {
  if (liveRun) {
    drawTimeline($("rp-timeline"), tasks, { until: liveRun.ended || live.now, start: liveRun.started || live.now,
      now: live.now, run: page.runId, redraw: schedule });
    return;
  }
  const run = recorded.run;
  const end = run.ended_at == null ? Date.now() / 1000 : run.ended_at;
  drawTimeline($("rp-timeline"), tasks, { until: end, start: run.started_at, now: end, run: page.runId,
    redraw: schedule, maps: recorded.maps, loops: recorded.loops, more: loadItems });
}

// What the history says was decided on a task's holds: "skip by ops-1".
function decidedBy(task) {
  const said = [];
  for (const a of task.attempt_list || []) {
    const d = a.decided;
    if (d) said.push((DONE[d.decision] || d.decision) + (d.deadline ? " at the deadline" : " by " + (d.by || "someone unnamed")));
  }
  return said.join(", ") || "-";
}

function reuseCell(task) {
  if (task.reused_from) {
    const cell = el("span", task.cached ? "cached from " : "reused from ");
    cell.appendChild(runLink(task.reused_from));
    return cell;
  }
  return task.cached ? "cached" : "-";
}

// A map's or a loop's reuse, as a task's: its own task's ("reused from 9c1e0d2f3a4b": a rerun
// took the whole of it from that run), else its items' or iterations' ("3 reused from ...").
function mapReuse(entry) {
  if (entry.head && (entry.head.reused_from || entry.head.cached)) return reuseCell(entry.head);
  const reused = entry.items.filter((t) => t.reused_from);
  if (!reused.length) return "-";
  const from = new Set(reused.map((t) => t.reused_from));
  const cell = el("span", count(reused.length) + " " + (entry.loop ? "iterations" : "items") + " reused from ");
  if (from.size === 1) cell.appendChild(runLink(reused[0].reused_from));
  else cell.appendChild(span(count(from.size) + " runs"));
  return cell;
}

// A running task's time so far (its duration_ms, while it runs, is not one yet), else its duration.
function durationText(task) {
  const first = task.segments && task.segments[0];
  if (first && RUNNING.includes(task.state)) { // until now, or its run's end (lost: its engine's death)
    const run = heard();
    return seconds(((run && run.ended) || live.now) - first.start) + (run && run.lost_at != null ? " until lost" : " so far");
  }
  if (task.duration_ms != null && !RUNNING.includes(task.state)) return took(task.duration_ms);
  return "-";
}

const RUNNING = ["RUNNING", "RETRYING"];
const FINISHED = ["COMPLETED", "FAILED", "CANCELLED", "SKIPPED"];

// A map runs while its own task does, or, without it, while an item does or some are not started.
function mapRunning(entry) {
  if (entry.head) return RUNNING.includes(entry.head.state);
  return Boolean(entry.notStarted) || entry.items.some((t) => RUNNING.includes(t.state) || t.state === "PENDING");
}

// A map's time: while it runs, since its first start (its own task's or its first item's),
// else its own task's duration.
function mapDuration(entry) {
  if (!mapRunning(entry)) return entry.head ? durationText(entry.head) : "-";
  let start = Infinity;
  for (const task of entry.head ? [entry.head, ...entry.items] : entry.items) {
    const first = task.segments && task.segments[0];
    if (first && first.start < start) start = first.start;
  }
  return Number.isFinite(start) ? seconds(live.now - start) + " so far" : "-";
}

// A map's items: while it runs, how many of them are done ("412 of 600 items done"); a loop's
// iterations: its latest ("iteration 7 running").
function mapProgress(entry) {
  if (entry.loop) {
    const [latest, state] = entry.told ? [entry.told.latest, entry.told.latest_state]
      : entry.items.length ? [entry.items[entry.items.length - 1].task_id, entry.items[entry.items.length - 1].state] : [null, null];
    return latest ? "iteration " + iterationOf(latest) + " " + String(state).toLowerCase() : "-";
  }
  if (!mapRunning(entry)) return count(entry.total) + " items";
  const done = FINISHED.reduce((sum, state) => sum + ((entry.counts || {})[state] || 0), 0);
  return count(done) + " of " + count(entry.total) + " items done";
}

function stateCell(state) {
  return span(String(state || "?").toLowerCase(), "state c-" + safeClass(state));
}

function taskRow(task, recordedById, label) {
  const told = recordedById.get(task.task_id) || task; // the history adds each attempt's decision
  const item = ITEM.exec(task.task_id);
  const tr = row([label || task.name || task.task_name, stateCell(task.state), task.attempts ?? "-",
    durationText(task), item ? "#" + item[1] : "-", reuseCell(task), decidedBy(told)]);
  tr.setAttribute("data-task-id", task.task_id);
  tr.setAttribute("data-state", safeClass(task.state));
  return tr;
}

// The table's entries, in the order the tasks first appeared: a task, or a map standing for
// its items ({map, name, total, counts, items: those the page has, in order}), or a loop for
// its iterations so ({loop: true} too).
function tableEntries(tasks, recorded) {
  const counted = (recorded && !isLive()) ? foldedCounts(recorded.maps, recorded.loops) : new Map();
  const ids = new Set(tasks.map((t) => t.task_id));
  for (const id of counted.keys()) ids.add(id);
  const maps = new Map();
  const entries = [];
  const mapEntry = (id, name) => {
    let entry = maps.get(id);
    if (!entry) {
      const told = counted.get(id);
      entry = { map: id, name: told ? told.task_name : name, told, items: [], head: null, loop: Boolean(told && told.loop) };
      maps.set(id, entry);
      entries.push(entry);
    }
    return entry;
  };
  for (const task of tasks) { // a map (a loop) where its own task or its first item appears
    const item = mapOf(task.task_id);
    const parent = item ?? loopOf(task.task_id, ids);
    if (parent != null) {
      const entry = mapEntry(parent, task.name || task.task_name);
      entry.items.push(task);
      if (item == null) entry.loop = true;
    }
    else if (counted.has(task.task_id) || maps.has(task.task_id)) mapEntry(task.task_id, task.name || task.task_name).head = task;
    else entries.push({ task });
  }
  for (const [id, told] of counted) mapEntry(id, told.task_name); // none of it on this page
  for (const entry of maps.values()) {
    const head = entries.findIndex((e) => e.task && e.task.task_id === entry.map);
    if (head >= 0) { entry.head = entries[head].task; entries.splice(head, 1); }
    if (!entry.told) {
      entry.counts = {};
      for (const t of entry.items) entry.counts[t.state] = (entry.counts[t.state] || 0) + 1;
    } else {
      entry.counts = entry.told.counts;
    }
    // live, the items heard of so far; the map's size its engine said, when it is larger (the
    // rest not started yet: counted, never drawn)
    const said = entry.head && entry.head.items != null ? entry.head.items : 0;
    entry.total = entry.told ? entry.told.items : Math.max(entry.items.length, said);
    if (!entry.told && entry.total > entry.items.length) entry.notStarted = entry.total - entry.items.length;
    // each item's index read once, not in every comparison: a map of 10,000 is sorted each draw
    entry.items = entry.items.map((t) => [itemIndex(t), t]).sort((a, b) => a[0] - b[0]).map(([, t]) => t);
  }
  return entries;
}

// An item's index, an iteration's number.
function itemIndex(task) {
  const found = ITEM.exec(task.task_id);
  return found ? Number(found[1]) : iterationOf(task.task_id);
}

// The live view's run of the page, if it holds one (ended, it may hold little of it).
function heard() { return live.run && live.run.run_id === page.runId ? live.run : null; }

// Whether the page draws its run from the live view: while it runs, or once it ended as long as
// the history has not recorded its end.
function isLive() {
  const run = heard();
  if (!run) return false;
  const recorded = page.recorded && page.recorded.run.run_id === page.runId ? page.recorded.run : null;
  return run.status === "Running" || !recorded || recorded.status === "Running";
}

// What the history is read again when it changes: the live run's status, and whether the live
// view holds it only as its engine's summary lists it (it let the run go).
function liveKey(run) { return run.status + (run.from_summary ? " (summary)" : ""); }

function mapRows(entry, recordedById) {
  const opened = page.opened.has(entry.map);
  const members = entry.loop ? "iterations" : "items";
  const button = el("button", (opened ? "\u25be " : "\u25b8 ") + entry.name + " \u00d7" + count(entry.total) +
    (entry.loop ? " iterations" : ""), "link");
  button.type = "button";
  button.setAttribute("data-map-open", entry.map);
  button.setAttribute("aria-expanded", String(opened));
  const head = entry.head;
  const counts = stateCounts(entry.counts);
  if (entry.notStarted) counts.appendChild(span("not started " + count(entry.notStarted), "count"));
  const tr = row([button, counts, head ? head.attempts ?? "-" : "-",
    mapDuration(entry), mapProgress(entry), mapReuse(entry), "-"]);
  tr.className = "map";
  tr.setAttribute("data-map", entry.map);
  tr.setAttribute("data-count", String(entry.total));
  if (entry.loop) tr.setAttribute("data-loop", "");
  const rows = [tr];
  if (!opened) return rows;
  const pageOf = page.opened.get(entry.map);
  const first = pageOf * ITEM_ROWS;
  const loaded = page.items.get(entry.map);
  if (!isLive() && entry.told && entry.items.length < Math.min(entry.total, first + ITEM_ROWS) &&
      !(loaded && (loaded.loading || loaded.next === null))) {
    loadItems(entry.map); // the history's next page of them: drawn once it is in
  }
  const shown = entry.items.slice(first, first + ITEM_ROWS);
  for (const task of shown) {
    const item = taskRow(task, recordedById, (task.name || task.task_name) + (entry.loop ? " @" : " #") + itemIndex(task));
    item.className = "map-item";
    rows.push(item);
  }
  const pager = el("span", null, "pager");
  const back = el("button", "previous " + members);
  back.type = "button";
  back.disabled = pageOf === 0;
  back.setAttribute("data-map-page", "-1");
  back.setAttribute("data-map-id", entry.map);
  const on = el("button", "next " + members);
  on.type = "button";
  on.disabled = first + ITEM_ROWS >= (entry.told ? entry.total : entry.items.length); // live: those heard of
  on.setAttribute("data-map-page", "1");
  on.setAttribute("data-map-id", entry.map);
  const which = shown.length ? members + " " + count(first + 1) + "\u2013" + count(first + shown.length) + " of " + count(entry.total)
    : "reading " + members + "\u2026";
  pager.append(back, span(" " + which + " ", "note"), on);
  const pagerRow = row([pager]);
  pagerRow.firstChild.colSpan = 7;
  pagerRow.className = "map-pager";
  rows.push(pagerRow);
  return rows;
}

function drawTasks(liveRun, recorded, tasks) {
  const recordedById = new Map(liveRun && recorded ? recorded.tasks.map((t) => [t.task_id, t]) : []);
  let rows = tasks;
  if (!liveRun && recorded) { // a map's failed and held items are not in its pages: its failures are
    const known = new Set(tasks.map((t) => t.task_id));
    for (const entry of recorded.loops || []) known.add(entry.task_id);
    const folded = (id) => mapOf(id) != null || loopOf(id, known) != null;
    const failed = recorded.failures.filter((f) => folded(f.task_id) && !known.has(f.task_id))
      .map((f) => ({ ...f, segments: [], attempts: (f.attempt_list || []).length || "-" }));
    if (failed.length) rows = tasks.concat(failed);
  }
  const entries = tableEntries(rows, recorded);
  const pages = Math.max(1, Math.ceil(entries.length / TASK_ROWS));
  page.tasksPage = Math.min(Math.max(0, page.tasksPage), pages - 1);
  const first = page.tasksPage * TASK_ROWS;
  const shown = entries.slice(first, first + TASK_ROWS);
  fillTable($("rp-tasks"), shown.flatMap((entry) => entry.task ? [taskRow(entry.task, recordedById)]
    : mapRows(entry, recordedById)), { inPlace: true });
  $("rp-tasks-count").textContent = entries.length > TASK_ROWS
    ? "rows " + count(first + 1) + "\u2013" + count(first + shown.length) + " of " + count(entries.length) : "";
  $("rp-tasks-prev").hidden = $("rp-tasks-next").hidden = entries.length <= TASK_ROWS;
  $("rp-tasks-prev").disabled = page.tasksPage === 0;
  $("rp-tasks-next").disabled = page.tasksPage >= pages - 1;
  $("rp-tasks-more").hidden = liveRun || !recorded || recorded.next == null;
  // a run its engine's summary lists, of which nothing here knows a task: say why none shows
  const answered = historyKnown === false || (historyKnown && page.recordedNote !== "");
  const unknown = !entries.length && !recorded && liveRun && liveRun.from_summary && answered
    ? "This run's tasks are not known here: " + (historyKnown === false
      ? (historyAwaited ? "this dashboard has no history yet (it looks for it again every few seconds)"
        : "this dashboard has no history (run cascade record and give it --db)")
      : page.recordedNote) +
      ", and the live view holds the run only as its engine's summary lists it, without its tasks."
    : "";
  $("rp-tasks-unknown").textContent = unknown;
  $("rp-tasks-unknown").hidden = !unknown;
}

function lineMatches(line, filter) {
  return !filter || [line.task_name, line.level, line.logger, line.message]
    .some((text) => text != null && String(text).toLowerCase().includes(filter));
}

// Its log lines: the live tail while the live view holds it, else the history's; the filter
// keeps the lines whose task, level, logger or message has its text.
function drawLogs(liveRun) {
  const filter = $("rp-log-filter").value.trim().toLowerCase();
  const source = liveRun ? live.logs : page.logs ? page.logs.lines : [];
  $("rp-logs-of").textContent = liveRun ? (logTask ? "of " + logTask : "of every task") : "";
  $("rp-logs-all").hidden = !(liveRun && logTask);
  $("rp-logs-earlier").hidden = !(liveRun && historyKnown === false); // with one, they are filled in
  const earlier = "lines logged before the run was opened are not shown " +
    (historyAwaited ? "(no history yet: this page looks for it again every few seconds, and " +
      "shows them once `cascade record` has made it)"
      : "(no history: run cascade record and give the dashboard --db)");
  if ($("rp-logs-earlier").textContent !== earlier) $("rp-logs-earlier").textContent = earlier;
  const missing = !liveRun && page.logs ? page.logs.missing : 0;
  const key = [liveRun ? "live" : "recorded", liveRun ? live.logsChanged : source.length, filter, missing].join("\u0000");
  if (!changed("logs", key)) return;
  const box = $("rp-logs");
  const atEnd = box.scrollHeight - box.scrollTop - box.clientHeight < 8; // a tail follows the end
  const matching = source.filter((line) => lineMatches(line, filter));
  drawLogLines(box, matching.slice(-LOG_LINES_SHOWN), { clear: true });
  if (atEnd) box.scrollTop = box.scrollHeight;
  const said = [];
  if (matching.length > LOG_LINES_SHOWN) said.push("the last " + count(LOG_LINES_SHOWN) + " of " + count(matching.length) + " lines shown");
  if (!source.length) said.push(liveRun ? "no line yet" : page.logs ? "no log lines recorded" : "");
  else if (!matching.length) said.push("no line has " + quoted(filter));
  if (missing) said.push(count(missing) + (missing === 1 ? " batch" : " batches") +
    " of log lines missing, of any task (lost on the way or before a recorder listened)");
  if (liveRun) said.push("live: new lines come in as they are logged");
  $("rp-logs-note").textContent = said.filter(Boolean).join("; ");
  $("rp-logs-more").hidden = liveRun || !page.logs || page.logs.next == null;
}

// Its failures: each failed or held task with its error and traceback, and (the history's) its
// attempts, each with the decision on its hold; a task a decision ended is among them.
function drawFailures(liveRun, recorded, tasks) {
  const recordedFailures = recorded ? recorded.failures : [];
  const byId = new Map(recordedFailures.map((f) => [f.task_id, f]));
  let failures;
  if (liveRun) {
    const liveById = new Map(tasks.map((t) => [t.task_id, t]));
    failures = tasks.filter((t) => t.state === "FAILED" || t.state === "HELD").map((t) => ({ ...byId.get(t.task_id), ...t }));
    const listed = new Set(failures.map((f) => f.task_id));
    for (const f of recordedFailures) { // those a decision ended: the live view says only how
      const now = liveById.get(f.task_id);
      if (!listed.has(f.task_id) && (!now || !["RUNNING", "RETRYING", "BLOCKED", "QUEUED"].includes(now.state))) failures.push(f);
    }
  } else {
    failures = recordedFailures;
  }
  drawDecisions(failures);
  // a decision is no failure: a gate approved, rejected or skipped, or awaiting approval, is
  // among the decisions (and "Needs a decision"), a failure held then decided among both
  failures = failures.filter(failed);
  const run = liveRun || (recorded && recorded.run);
  const key = JSON.stringify([failures.map((f) => [f.task_id, f.state, f.error, (f.attempt_list || []).length]), run && run.error,
    recorded && recorded.tasks.length, recorded && recorded.next]);
  if (!changed("failures", key)) return;
  const items = failures.map((f) => {
    const li = el("li");
    li.setAttribute("data-task-id", f.task_id);
    li.appendChild(span((f.name || f.task_name) + (f.state === "HELD" ? " (held for a decision): " : ": "), "c-" + safeClass(f.state || "FAILED")));
    li.appendChild(span(f.error || "", "error"));
    if (f.attempt_list && f.attempt_list.length) li.appendChild(attemptsList(f));
    else if (f.traceback) li.appendChild(traceback(f.traceback));
    return li;
  });
  if (!items.length && run && run.error) items.push(el("li", run.error, "error"));
  // with pages of tasks still to read, "none" would speak of tasks not read yet
  const unread = !liveRun && recorded && recorded.next != null;
  fillList($("rp-failures"), items, unread ? "none among the " + count(recorded.tasks.length) + " tasks shown" : "none");
}

// Whether a task of the failures' list failed: an attempt of it did (a gate's hold, awaiting
// approval or decided, is no failure), or, without its attempts, it is failed or held.
function failed(task) {
  const attempts = task.attempt_list || [];
  if (task.awaits_approval) return false;
  if (!attempts.length) return task.state === "FAILED" || (task.state === "HELD" && !isGate(task));
  return task.state === "FAILED" || attempts.some((a) => a.error || a.state === "FAILED" || a.state === "RETRYING" ||
    (a.state === "HELD" && !(a.hold && a.hold.kind === "approval")));
}

// A gate's task (held from its start for a person's approval): its hold says so, the live
// view's (``held_by``) or the history's (each attempt's ``hold``).
function isGate(task) {
  const approval = (hold) => Boolean(hold && hold.kind === "approval");
  return Boolean(task.awaits_approval || (Array.isArray(task.held_by) && task.held_by.some(approval)) ||
    (task.attempt_list || []).some((a) => approval(a.hold)));
}

const GATE_DONE = { complete: "approved", fail: "rejected", skip: "skipped" };

// The decisions taken on the run's holds (the history's, on each decided attempt): what, on
// which task, by whom, when, why ("approve: approved by ops-1 at 10:02:11 UTC “looks right”").
function drawDecisions(tasks) {
  const items = [];
  for (const task of tasks) {
    const gate = isGate(task);
    for (const a of task.attempt_list || []) {
      const d = a.decided;
      if (!d) continue;
      const li = el("li");
      li.setAttribute("data-task-id", task.task_id);
      li.setAttribute("data-decision", String(d.decision));
      const what = (gate ? GATE_DONE : DONE)[d.decision] || String(d.decision);
      li.appendChild(span((task.name || task.task_name) + (gate ? " (gate)" : " (attempt " + a.number + " held)") + ": "));
      li.appendChild(span(what + (d.deadline ? " at the hold's deadline" : " by " + (d.by || "someone unnamed")), "decided"));
      if (d.at != null) li.appendChild(span(" at " + clock(d.at), "note"));
      if (d.reason) li.appendChild(span(" " + quoted(d.reason)));
      items.push(li);
    }
  }
  const key = JSON.stringify(items.map((li) => li.textContent));
  if (!changed("decisions", key)) return;
  fillList($("rp-decisions"), items, "none");
}

// The page drawn from what the live view and the history hold of its run (repaint.js calls
// it with the rest of the page, at most once per frame).
export function renderRunPage() {
  if (selected !== page.runId) showRunPage(selected);
  $("run-page").hidden = !page.runId;
  if (!page.runId) return;
  const held = heard();
  if (historyKnown && (page.recordedOf !== page.runId ||
      (held && page.liveStatus !== null && page.liveStatus !== liveKey(held)))) {
    loadRecorded(page.runId); // first, and again once the live run ends: what the history adds
  }
  if (held) page.liveStatus = liveKey(held);
  const liveRun = isLive() ? held : null;
  const recorded = page.recorded && page.recorded.run.run_id === page.runId ? page.recorded : null;
  drawHeader(liveRun, recorded);
  if (!liveRun && !recorded) return;
  drawFacts(liveRun, recorded);
  drawLineage(liveRun, recorded);
  drawActions(liveRun, recorded);
  drawHeld();
  const tasks = tasksOf(liveRun, recorded);
  showRunGraph($("run-graph"), { run_id: page.runId, live: Boolean(liveRun && liveRun.status === "Running") },
    tasks, schedule, { maps: liveRun ? undefined : recorded.maps, selected: page.graphSelected });
  drawRunTimeline(liveRun, recorded, tasks);
  drawTasks(liveRun, recorded, tasks);
  drawLogs(liveRun);
  drawFailures(liveRun, recorded, tasks);
  window.cascadeRunPage.draws += 1;
}

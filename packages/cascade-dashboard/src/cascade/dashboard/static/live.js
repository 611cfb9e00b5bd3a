// The live state: what the page holds of its view (a page of runs, a page of engines, the
// constraints, the open run and its tasks), kept up to date by its stream of changes
// (GET /api/stream?since=...): a snapshot first, then what changed, part by part. A part with
// "reset" replaces what the page holds of it; "remove" and "upsert" change it; "order" is the
// page's rows in the server's order. Changing page, filter or run opens a new stream; the open
// run's tasks resume from the version the page holds them through ("since"), not from scratch.
import { bearer } from "./api.js";
import { $ } from "./dom.js";
import { seconds } from "./format.js";
import { goTo, noPlace } from "./places.js";
import { schedule } from "./repaint.js";
import { showWho } from "./who.js";

// Rows per page of runs and of engines: ?rows=N in the page's address (1 to 500), else 25.
export const ROWS = Math.min(500, Math.max(1, Number(new URL(location.href).searchParams.get("rows")) || 25));

function emptyList() { return { byId: new Map(), order: [], matching: 0, total: 0, next_after: null }; }

export const live = {
  version: 0, epoch: null, now: 0, connection: null, controls: false,
  rejected: 0, oversized: 0, missed: [], refused: [], missed_total: null, refused_total: null,
  mode: "events", fleet: null, recorders: [],
  runs: emptyList(), engines: emptyList(), constraints: new Map(),
  run: null, tasks: new Map(), tasksOf: null, through: 0,
  logs: [], logsNote: null, logsChanged: 0, held: { tasks: [], total: 0 },
};
const LOG_LINES_KEPT = 2000; // the open run's last lines the page holds
export let logTask = null;   // the task whose lines the log panel shows (null: every task's)
// What the page asks to see: the cursors of the pages before this one, and the filters.
export const view = { runsAfter: [], enginesAfter: [], project: "", status: "", engine: "", name: "",
  trigger: "", engineStatus: "" };
export let selected = null;     // the opened run's id
export let connecting = false;  // a new stream is asked for and has not answered yet
window.cascadeEvents = { snapshot: 0, delta: 0 }; // read by the tests

function applyList(list, part, key) {
  if (part.reset) list.byId.clear();
  for (const id of part.remove || []) list.byId.delete(id);
  for (const item of part.upsert || []) list.byId.set(item[key], item);
  if (part.order) {
    list.order = part.order;
    const listed = new Set(part.order);
    for (const id of list.byId.keys()) if (!listed.has(id)) list.byId.delete(id);
  }
  if ("matching" in part) {
    list.matching = part.matching;
    list.total = part.total;
    list.next_after = part.next_after;
  }
}

export function applyChanges(data) {
  live.version = data.version;
  live.epoch = data.epoch;
  live.now = data.now;
  for (const name of ["connection", "controls", "rejected", "oversized", "missed", "refused",
    "missed_total", "refused_total", "silent", "silent_total", "ended_cleanly", "mode", "fleet",
    "held", "recorders"]) {
    if (name in data) live[name] = data[name];
  }
  if (data.runs) applyList(live.runs, data.runs, "run_id");
  if (data.engines) applyList(live.engines, data.engines, "source");
  const constraints = data.constraints;
  if (constraints) {
    if (constraints.reset) live.constraints.clear();
    for (const topic of constraints.remove || []) live.constraints.delete(topic);
    for (const c of constraints.upsert || []) live.constraints.set(c.topic, c);
  }
  if ("run" in data) live.run = data.run;
  if (data.logs) {
    if (data.logs.reset) live.logs = [];
    live.logs.push(...data.logs.lines);
    if (live.logs.length > LOG_LINES_KEPT) live.logs.splice(0, live.logs.length - LOG_LINES_KEPT);
    live.logsNote = data.logs;
    live.logsChanged += 1;
  }
  if (data.tasks) {
    if (data.tasks.reset) live.tasks.clear();
    for (const task of data.tasks.upsert) live.tasks.set(task.task_id, task);
    live.through = data.tasks.through;
    live.tasksOf = selected;
  }
}

function streamUrl() {
  const params = new URLSearchParams();
  const resume = selected !== null && live.tasksOf === selected && live.epoch !== null;
  params.set("since", resume ? String(live.through) : "0");
  if (resume) params.set("epoch", live.epoch);
  params.set("limit", ROWS);
  params.set("engines_limit", ROWS);
  if (selected) params.set("run", selected);
  if (selected && logTask) params.set("task", logTask);
  const after = view.runsAfter[view.runsAfter.length - 1];
  if (after) params.set("after", after);
  const enginesAfter = view.enginesAfter[view.enginesAfter.length - 1];
  if (enginesAfter) params.set("engines_after", enginesAfter);
  for (const [name, value] of [["project", view.project], ["status", view.status],
    ["engine", view.engine], ["name", view.name], ["trigger", view.trigger],
    ["engine_status", view.engineStatus]]) {
    if (value) params.set(name, value);
  }
  return "/api/stream?" + params;
}

// -- live stream -----------------------------------------------------------------------
// Read with fetch(), not EventSource: it carries the token (so the server never counts this
// page among the anonymous streams it limits), and it retries after *any* failure, a 503
// included, where EventSource gives up for good.

const RETRY_FIRST = 500;   // ms, doubled after each failure up to RETRY_CAP, each jittered
const RETRY_CAP = 15000;
let stream = null;         // the AbortController of the stream being read
let failures = 0;          // since the last state received
let retryTimer = null;
window.cascadeReconnects = 0; // read by the tests

function onEvent(block) {
  let kind = "message";
  const data = [];
  for (const line of block.split("\n")) {
    if (line.startsWith("event: ")) kind = line.slice(7);
    else if (line.startsWith("data: ")) data.push(line.slice(6));
  }
  if (kind === "snapshot" || kind === "delta") {
    applyChanges(JSON.parse(data.join("\n")));
    window.cascadeEvents[kind] += 1;
    failures = 0;
    connecting = false;
    schedule();
  } else if (kind === "tick" && live.connection) {
    const tick = JSON.parse(data.join("\n"));
    live.now = tick.now;
    live.connection = tick.connection;
    schedule();
  }
}

async function read(url, controller) {
  const response = await fetch(url, { headers: bearer(), signal: controller.signal, cache: "no-store" });
  if (response.status === 401) return "signed out"; // a team's dashboard: sign in again
  if (!response.ok || !response.body) throw new Error("HTTP " + response.status);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    const from = Math.max(0, buffer.length - 1); // an event's end may straddle two chunks
    buffer += value;
    let end = buffer.indexOf("\n\n", from);
    while (end >= 0) {
      onEvent(buffer.slice(0, end));
      buffer = buffer.slice(end + 2);
      end = buffer.indexOf("\n\n");
    }
  }
}

export function connect() {
  if (stream) stream.abort();
  clearTimeout(retryTimer);
  const controller = new AbortController();
  stream = controller;
  connecting = true;
  read(streamUrl(), controller).catch(() => null).then((ended) => {
    if (stream !== controller) return; // replaced on purpose: a new run opened, a new token
    if (ended === "signed out") { showWho(); return; } // its sign-in link, no retries
    const delay = Math.min(RETRY_CAP, RETRY_FIRST * 2 ** failures) * (0.5 + Math.random() / 2);
    failures += 1;
    const badge = $("connection");
    badge.textContent = "dashboard unreachable, retrying in " + seconds(delay / 1000);
    badge.className = "badge bad";
    retryTimer = setTimeout(() => { window.cascadeReconnects += 1; connect(); }, delay);
  });
}

// Open ``runId`` (null: none) showing the log lines of ``taskId`` (null: every task's), without
// a new entry in the tab's history (places.js makes those).
export function openLive(runId, taskId) {
  runId = runId || null;
  taskId = runId ? taskId || null : null;
  if (runId === selected && taskId === logTask && stream) return; // there already
  selected = runId;
  logTask = taskId;
  live.logs = [];
  live.logsChanged += 1;
  if (live.tasksOf !== selected) { // another run's tasks: none held of this one
    live.tasks.clear();
    live.tasksOf = null;
    live.run = null;
  }
  connect();
  schedule();
}

// The run (and task) the page opens on: its first state is drawn before any stream is read.
export function openFirst(runId, taskId) {
  selected = runId;
  logTask = taskId;
}

export function showLogsOf(taskId) {
  goTo({ ...noPlace(), name: "run", run: selected, task: taskId });
}

// A click on a run's id: its page, or back to the runs when it is the one open.
export function select(runId) {
  const next = runId === selected ? null : runId;
  goTo(next ? { ...noPlace(), name: "run", run: next } : noPlace());
}

// The runs' filters (runs.js reads them from the address): the first page of what they pick.
export function filterRuns({ status, project, engine, name, trigger }, reconnect = true) {
  if (view.status === status && view.project === project && view.engine === engine &&
    view.name === name && view.trigger === trigger) return;
  Object.assign(view, { status, project, engine, name, trigger });
  view.runsAfter.length = 0;
  view.enginesAfter.length = 0;
  if (reconnect) {
    connect();
    schedule();
  }
}

// -- paging and filters ----------------------------------------------------------------

export function startPaging() {
  const page = (cursors, list) => () => {
    if (list().next_after) { cursors.push(list().next_after); connect(); schedule(); }
  };
  const back = (cursors) => () => { cursors.pop(); connect(); schedule(); };
  $("runs-next").addEventListener("click", page(view.runsAfter, () => live.runs));
  $("runs-prev").addEventListener("click", back(view.runsAfter));
  $("engines-next").addEventListener("click", page(view.enginesAfter, () => live.engines));
  $("engines-prev").addEventListener("click", back(view.enginesAfter));
  $("ended-list").addEventListener("click", () => {  // the engines that ended cleanly, listed
    $("e-status").value = "ended";
    $("e-status").dispatchEvent(new Event("change"));
  });
  $("e-status").addEventListener("change", () => {
    view.engineStatus = $("e-status").value;
    view.enginesAfter.length = 0;
    connect();
    schedule();
  });
  // an engine by its name (its source, whole): the stream's engine filter, which Runs' address
  // sets there and nothing sets elsewhere
  $("e-filters").addEventListener("submit", (event) => {
    event.preventDefault();
    view.engine = $("e-name").value.trim();
    view.enginesAfter.length = 0;
    connect();
    schedule();
  });
}
